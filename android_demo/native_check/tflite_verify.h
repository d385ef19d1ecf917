/*
 * A bounds-checking verifier for the parts of a TFLite flatbuffer that LiteRT's
 * C loader reads before (or without) checking them itself.
 *
 * LiteRtCreateModelFromFile/FromBuffer in ai-edge-litert 2.3.0 do not run the
 * flatbuffers verifier: a truncated or corrupted file can make them read out
 * of bounds and crash (SIGSEGV/SIGBUS) or, depending on the machine's memory
 * layout, return a status. Whether a corrupt file crashes is luck, so
 * native_check never hands LiteRT bytes this verifier has not accepted.
 */
#ifndef EDGE_SDK_NATIVE_CHECK_TFLITE_VERIFY_H_
#define EDGE_SDK_NATIVE_CHECK_TFLITE_VERIFY_H_

#include <stddef.h>
#include <stdint.h>

/*
 * Verify `size` bytes at `data` (which must be 4-byte aligned, as malloc gives)
 * as a TFLite model. Returns 1 when every checked structure lies inside the
 * buffer and every index points at something that exists; returns 0 and writes
 * one line saying what is wrong and where into `why` otherwise.
 *
 * Checked: size and the "TFL3" identifier; the root table, its vtable and
 * every field of the Model, OperatorCode, SubGraph, Tensor, Operator, Buffer,
 * Metadata, SignatureDef, TensorMap and QuantizationParameters tables (each
 * table's vtable in range, each field inside its table, each vector and
 * string inside the file, strings NUL-terminated); at least one subgraph;
 * tensor buffer indices, subgraph/operator tensor indices, operator opcode
 * indices, signature subgraph and tensor indices, metadata buffer indices,
 * and external buffer (offset, size) ranges. Union tables (builtin options,
 * quantization details) and sparsity parameters are checked as tables only
 * (vtable and field bounds), not field by field.
 */
int tflite_verify(const uint8_t* data, size_t size, char* why, size_t why_len);

#endif  /* EDGE_SDK_NATIVE_CHECK_TFLITE_VERIFY_H_ */
