/* SHA-256 (FIPS 180-4), enough to check a model file against its manifest. */
#ifndef EDGE_SDK_NATIVE_CHECK_SHA256_H_
#define EDGE_SDK_NATIVE_CHECK_SHA256_H_

#include <stddef.h>

/* Writes the 64 lowercase hex digits of SHA-256(data) and a NUL into hex[65]. */
void sha256_hex(const unsigned char* data, size_t len, char hex[65]);

#endif /* EDGE_SDK_NATIVE_CHECK_SHA256_H_ */
