/*
 * native_check: run a .tflite model through LiteRT's C API (libLiteRt.so from
 * the ai-edge-litert wheel) on raw input bytes and compare the raw output
 * bytes with what the Python runtime produced.
 *
 *   native_check [--json] [--out OUT.bin] [--manifest M.json | --no-verify] [--timeout S]
 *                MODEL.tflite INPUT.bin [EXPECTED.bin]
 *
 * (--unsafe-skip-flatbuffer-check hands unverified bytes to LiteRT: it exists only so
 * fuzz_native.py can measure how LiteRT itself copes with bad files.)
 *
 * INPUT.bin holds N samples back to back, each exactly one batch-1 input
 * tensor as stored (int8 for a fully quantized model). Each sample is run on
 * its own (a dynamic batch dimension is set to 1) and the raw output bytes
 * are concatenated. With EXPECTED.bin they must match byte for byte.
 *
 * Exit codes follow the edge-sdk CLI: 0 match (or ran, when nothing to
 * compare), 1 mismatch, 2 could not run. A file refused before LiteRT sees it
 * is reported with native_check's own status ("file_io", "manifest_mismatch",
 * "invalid_flatbuffer"); a model LiteRT refuses with LiteRT's status code and
 * name ("status_code", "kLiteRtStatus..."); never a crash.
 *
 * Why the guards before LiteRT sees the bytes: LiteRtCreateModelFromFile and
 * FromBuffer in ai-edge-litert 2.3.0 do not verify the flatbuffer. On a
 * truncated file, or with corrupt bytes in a model's header, they read out of
 * bounds: depending on the machine's memory layout that crashes (SIGSEGV/SIGBUS),
 * hangs, or happens to return a status. Corruption inside weight buffers runs
 * silently with wrong outputs. So the model file is read once, and on those
 * very bytes (1) its sha256 is checked against its edge-sdk manifest
 * (model.json beside it, or --manifest), (2) tflite_verify.c checks that the
 * flatbuffer's tables, vectors, strings and indices lie inside the file, and
 * only then (3) LiteRT loads the same bytes (LiteRtCreateModelFromBuffer) in a
 * child process, so a crash or hang that slips past the verifier (union option
 * tables are checked for bounds only) becomes an error report with exit code 2
 * instead of taking the caller down.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "litert_c_api.h"
#include "sha256.h"
#include "tflite_verify.h"

#define EXIT_MATCH 0
#define EXIT_MISMATCH 1
#define EXIT_CANNOT_RUN 2

static int g_json = 0;

static const char* status_name(LiteRtStatus status) {
  switch (status) {
    case kLiteRtStatusOk: return "kLiteRtStatusOk";
    case kLiteRtStatusErrorInvalidArgument: return "kLiteRtStatusErrorInvalidArgument";
    case kLiteRtStatusErrorMemoryAllocationFailure: return "kLiteRtStatusErrorMemoryAllocationFailure";
    case kLiteRtStatusErrorRuntimeFailure: return "kLiteRtStatusErrorRuntimeFailure";
    case kLiteRtStatusErrorMissingInputTensor: return "kLiteRtStatusErrorMissingInputTensor";
    case kLiteRtStatusErrorUnsupported: return "kLiteRtStatusErrorUnsupported";
    case kLiteRtStatusErrorNotFound: return "kLiteRtStatusErrorNotFound";
    case kLiteRtStatusErrorTimeoutExpired: return "kLiteRtStatusErrorTimeoutExpired";
    case kLiteRtStatusErrorWrongVersion: return "kLiteRtStatusErrorWrongVersion";
    case kLiteRtStatusErrorUnknown: return "kLiteRtStatusErrorUnknown";
    case kLiteRtStatusErrorAlreadyExists: return "kLiteRtStatusErrorAlreadyExists";
    case kLiteRtStatusCancelled: return "kLiteRtStatusCancelled";
    case kLiteRtStatusErrorFileIO: return "kLiteRtStatusErrorFileIO";
    case kLiteRtStatusErrorInvalidFlatbuffer: return "kLiteRtStatusErrorInvalidFlatbuffer";
    case kLiteRtStatusErrorDynamicLoading: return "kLiteRtStatusErrorDynamicLoading";
    case kLiteRtStatusErrorSerialization: return "kLiteRtStatusErrorSerialization";
    case kLiteRtStatusErrorCompilation: return "kLiteRtStatusErrorCompilation";
    case kLiteRtStatusErrorIndexOOB: return "kLiteRtStatusErrorIndexOOB";
    case kLiteRtStatusErrorInvalidIrType: return "kLiteRtStatusErrorInvalidIrType";
    case kLiteRtStatusErrorInvalidGraphInvariant: return "kLiteRtStatusErrorInvalidGraphInvariant";
    case kLiteRtStatusErrorGraphModification: return "kLiteRtStatusErrorGraphModification";
    case kLiteRtStatusErrorInvalidToolConfig: return "kLiteRtStatusErrorInvalidToolConfig";
    case kLiteRtStatusLegalizeNoMatch: return "kLiteRtStatusLegalizeNoMatch";
    case kLiteRtStatusErrorInvalidLegalization: return "kLiteRtStatusErrorInvalidLegalization";
    case kLiteRtStatusPatternNoMatch: return "kLiteRtStatusPatternNoMatch";
    case kLiteRtStatusInvalidTransformation: return "kLiteRtStatusInvalidTransformation";
    case kLiteRtStatusErrorUnsupportedRuntimeVersion: return "kLiteRtStatusErrorUnsupportedRuntimeVersion";
    case kLiteRtStatusErrorUnsupportedCompilerVersion: return "kLiteRtStatusErrorUnsupportedCompilerVersion";
    case kLiteRtStatusErrorIncompatibleByteCodeVersion: return "kLiteRtStatusErrorIncompatibleByteCodeVersion";
    case kLiteRtStatusErrorUnsupportedOpShapeInferer: return "kLiteRtStatusErrorUnsupportedOpShapeInferer";
    case kLiteRtStatusErrorShapeInferenceFailed: return "kLiteRtStatusErrorShapeInferenceFailed";
  }
  return "unknown LiteRtStatus";
}

static const char* dtype_name(LiteRtElementType type, size_t* size) {
  switch (type) {
    case kLiteRtElementTypeFloat32: *size = 4; return "float32";
    case kLiteRtElementTypeInt32: *size = 4; return "int32";
    case kLiteRtElementTypeUInt8: *size = 1; return "uint8";
    case kLiteRtElementTypeInt64: *size = 8; return "int64";
    case kLiteRtElementTypeBool: *size = 1; return "bool";
    case kLiteRtElementTypeInt16: *size = 2; return "int16";
    case kLiteRtElementTypeInt8: *size = 1; return "int8";
    case kLiteRtElementTypeFloat16: *size = 2; return "float16";
    default: *size = 0; return "unsupported";
  }
}

static void json_string(FILE* out, const char* text) {
  fputc('"', out);
  for (const unsigned char* p = (const unsigned char*)text; *p; ++p) {
    if (*p == '"' || *p == '\\') {
      fprintf(out, "\\%c", *p);
    } else if (*p < 0x20 || *p >= 0x80) {
      /* Bytes of a corrupt file's tensor names need not be UTF-8; keep the JSON valid. */
      fprintf(out, "\\u%04x", *p);
    } else {
      fputc(*p, out);
    }
  }
  fputc('"', out);
}

static int report_failure(int status, const char* own_status, const char* message) {
  if (g_json) {
    printf("{\"ok\": false, \"error\": ");
    json_string(stdout, message);
    if (status >= 0) {
      printf(", \"status_code\": %d, \"status\": \"%s\"", status, status_name((LiteRtStatus)status));
    } else if (own_status) {
      printf(", \"status\": \"%s\"", own_status);
    }
    printf("}\n");
  }
  if (status >= 0) {
    fprintf(stderr, "error: %s: LiteRT status %d (%s)\n", message, status, status_name((LiteRtStatus)status));
  } else {
    fprintf(stderr, "error: %s\n", message);
  }
  return EXIT_CANNOT_RUN;
}

/* Report an error that stops the check; exit code 2. status < 0 means "not a LiteRT call". */
static int fail(int status, const char* format, ...) {
  char message[1024];
  va_list args;
  va_start(args, format);
  vsnprintf(message, sizeof message, format, args);
  va_end(args);
  return report_failure(status, NULL, message);
}

/* Refuse the model before LiteRT sees it, with native_check's own status name; exit code 2. */
static int refuse(const char* own_status, const char* format, ...) {
  char message[1024];
  va_list args;
  va_start(args, format);
  vsnprintf(message, sizeof message, format, args);
  va_end(args);
  return report_failure(-1, own_status, message);
}

static unsigned char* read_file(const char* path, size_t* size, char* why, size_t why_len) {
  FILE* f = fopen(path, "rb");
  if (!f) {
    snprintf(why, why_len, "cannot open %s: %s", path, strerror(errno));
    return NULL;
  }
  unsigned char* data = NULL;
  size_t used = 0, cap = 0;
  for (;;) {
    if (used == cap) {
      cap = cap ? cap * 2 : 65536;
      unsigned char* grown = realloc(data, cap);
      if (!grown) {
        free(data);
        fclose(f);
        snprintf(why, why_len, "out of memory reading %s", path);
        return NULL;
      }
      data = grown;
    }
    size_t got = fread(data + used, 1, cap - used, f);
    used += got;
    if (got == 0) break;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(data);
    snprintf(why, why_len, "error reading %s", path);
    return NULL;
  }
  *size = used;
  return data;
}

static void format_shape(const LiteRtLayout* layout, char* out, size_t len) {
  size_t pos = (size_t)snprintf(out, len, "[");
  for (unsigned i = 0; i < layout->rank && pos < len; ++i) {
    pos += (size_t)snprintf(out + pos, len - pos, "%s%d", i ? "," : "", layout->dimensions[i]);
  }
  if (pos < len) snprintf(out + pos, len - pos, "]");
}

static size_t element_count(const LiteRtLayout* layout) {
  size_t n = 1;
  for (unsigned i = 0; i < layout->rank; ++i) n *= (size_t)layout->dimensions[i];
  return n;
}

static void usage(FILE* out) {
  fprintf(out,
          "usage: native_check [--json] [--out OUT.bin] [--manifest M.json | --no-verify] [--timeout S]\n"
          "                    MODEL.tflite INPUT.bin [EXPECTED.bin]\n"
          "Runs MODEL with LiteRT's C API (libLiteRt.so, ai-edge-litert %s) on each batch-1\n"
          "sample in INPUT.bin and compares the raw output bytes with EXPECTED.bin.\n"
          "MODEL's sha256 is checked first against its manifest (MODEL with .json, or --manifest),\n"
          "then its flatbuffer structure; LiteRT only ever sees bytes that passed both.\n"
          "Exit codes: 0 match, 1 mismatch, 2 could not run.\n",
          EDGE_SDK_LITERT_WHEEL_VERSION);
}

/* Everything the run owns, released in one place. */
typedef struct {
  LiteRtEnvironment env;
  LiteRtModel model;
  LiteRtOptions options;
  LiteRtCompiledModel compiled;
  LiteRtTensorBuffer input_buffer;
  LiteRtTensorBuffer output_buffer;
  unsigned char* input_bytes;
  unsigned char* expected_bytes;
  unsigned char* output_bytes;
} Resources;

static void release(Resources* r) {
  if (r->input_buffer) LiteRtDestroyTensorBuffer(r->input_buffer);
  if (r->output_buffer) LiteRtDestroyTensorBuffer(r->output_buffer);
  if (r->compiled) LiteRtDestroyCompiledModel(r->compiled);
  if (r->options) LiteRtDestroyOptions(r->options);
  if (r->model) LiteRtDestroyModel(r->model);
  if (r->env) LiteRtDestroyEnvironment(r->env);
  free(r->input_bytes);
  free(r->expected_bytes);
  free(r->output_bytes);
}

static LiteRtStatus create_buffer(Resources* r, LiteRtTensorBufferRequirements req,
                                  const LiteRtRankedTensorType* type, LiteRtTensorBuffer* buffer) {
  LiteRtTensorBufferType buffer_type;
  size_t size;
  LiteRtStatus s = LiteRtGetTensorBufferRequirementsSupportedTensorBufferType(req, 0, &buffer_type);
  if (s == kLiteRtStatusOk) s = LiteRtGetTensorBufferRequirementsBufferSize(req, &size);
  if (s == kLiteRtStatusOk) s = LiteRtCreateManagedTensorBuffer(r->env, buffer_type, type, size, buffer);
  return s;
}

static int run(Resources* r, const char* model_path, const unsigned char* model_bytes, size_t model_size,
               const char* input_path, const char* expected_path, const char* out_path) {
  char why[512];
  LiteRtStatus s;
  LiteRtEnvOption no_options;
  memset(&no_options, 0, sizeof no_options);

  if ((s = LiteRtCreateEnvironment(0, &no_options, &r->env)) != kLiteRtStatusOk)
    return fail(s, "LiteRtCreateEnvironment failed");
  if ((s = LiteRtCreateModelFromBuffer(r->env, model_bytes, model_size, &r->model)) != kLiteRtStatusOk)
    return fail(s, "could not load model %s (LiteRtCreateModelFromBuffer)", model_path);

  LiteRtParamIndex num_signatures = 0;
  if ((s = LiteRtGetNumModelSignatures(r->model, &num_signatures)) != kLiteRtStatusOk)
    return fail(s, "could not read the signatures of %s", model_path);
  if (num_signatures < 1) return fail(-1, "model %s has no signature; expected at least one", model_path);
  LiteRtSignature signature;
  const char* signature_key = "";
  if ((s = LiteRtGetModelSignature(r->model, 0, &signature)) != kLiteRtStatusOk)
    return fail(s, "could not read signature 0 of %s", model_path);
  LiteRtGetSignatureKey(signature, &signature_key);

  LiteRtParamIndex num_inputs = 0, num_outputs = 0;
  if ((s = LiteRtGetNumSignatureInputs(signature, &num_inputs)) != kLiteRtStatusOk ||
      (s = LiteRtGetNumSignatureOutputs(signature, &num_outputs)) != kLiteRtStatusOk)
    return fail(s, "could not count the inputs/outputs of signature %s", signature_key);
  if (num_inputs != 1 || num_outputs != 1)
    return fail(-1, "expected a model with 1 input and 1 output, got %zu input(s) and %zu output(s)",
                num_inputs, num_outputs);

  LiteRtTensor input_tensor, output_tensor;
  LiteRtTensorTypeId type_id;
  LiteRtRankedTensorType input_type, output_type;
  const char* input_name = "";
  const char* output_name = "";
  if ((s = LiteRtGetSignatureInputTensorByIndex(signature, 0, &input_tensor)) != kLiteRtStatusOk ||
      (s = LiteRtGetSignatureOutputTensorByIndex(signature, 0, &output_tensor)) != kLiteRtStatusOk)
    return fail(s, "could not read the signature's tensors");
  LiteRtGetTensorName(input_tensor, &input_name);
  LiteRtGetTensorName(output_tensor, &output_name);
  if ((s = LiteRtGetTensorTypeId(input_tensor, &type_id)) != kLiteRtStatusOk)
    return fail(s, "could not read the type of input %s", input_name);
  if (type_id != kLiteRtRankedTensorType) return fail(-1, "input %s has no fixed rank; expected a ranked tensor", input_name);
  if ((s = LiteRtGetRankedTensorType(input_tensor, &input_type)) != kLiteRtStatusOk ||
      (s = LiteRtGetRankedTensorType(output_tensor, &output_type)) != kLiteRtStatusOk)
    return fail(s, "could not read the tensor types");

  size_t in_elem_size, out_elem_size;
  const char* in_dtype = dtype_name(input_type.element_type, &in_elem_size);
  const char* out_dtype = dtype_name(output_type.element_type, &out_elem_size);
  if (!in_elem_size || !out_elem_size)
    return fail(-1, "unsupported element type (input %d, output %d)", input_type.element_type,
                output_type.element_type);

  /* A dynamic batch dimension must be fixed to 1 before buffers are created. */
  int dims[LITERT_TENSOR_MAX_RANK];
  int resized = 0;
  for (unsigned i = 0; i < input_type.layout.rank; ++i) {
    dims[i] = input_type.layout.dimensions[i];
    if (dims[i] < 0) {
      if (i != 0) return fail(-1, "input %s has dynamic dimension %u; only the batch dimension may be dynamic", input_name, i);
      dims[i] = 1;
      resized = 1;
    }
    input_type.layout.dimensions[i] = dims[i];
  }

  if ((s = LiteRtCreateOptions(&r->options)) != kLiteRtStatusOk) return fail(s, "LiteRtCreateOptions failed");
  if ((s = LiteRtSetOptionsHardwareAccelerators(r->options, kLiteRtHwAcceleratorCpu)) != kLiteRtStatusOk)
    return fail(s, "could not select the CPU accelerator");
  if ((s = LiteRtCreateCompiledModel(r->env, r->model, r->options, &r->compiled)) != kLiteRtStatusOk)
    return fail(s, "could not compile model %s for the CPU (LiteRtCreateCompiledModel)", model_path);
  if (resized && (s = LiteRtCompiledModelResizeInputTensor(r->compiled, 0, 0, dims, input_type.layout.rank)) != kLiteRtStatusOk)
    return fail(s, "could not set the batch dimension of input %s to 1", input_name);

  LiteRtLayout out_layout;
  if ((s = LiteRtGetCompiledModelOutputTensorLayouts(r->compiled, 0, 1, &out_layout, true)) != kLiteRtStatusOk)
    return fail(s, "could not read the output layout");
  for (unsigned i = 0; i < out_layout.rank; ++i)
    if (out_layout.dimensions[i] < 0) return fail(-1, "output %s still has a dynamic dimension after resizing", output_name);
  output_type.layout = out_layout;

  size_t sample_in_bytes = element_count(&input_type.layout) * in_elem_size;
  size_t sample_out_bytes = element_count(&out_layout) * out_elem_size;

  LiteRtTensorBufferRequirements req;
  if ((s = LiteRtGetCompiledModelInputBufferRequirements(r->compiled, 0, 0, &req)) != kLiteRtStatusOk ||
      (s = create_buffer(r, req, &input_type, &r->input_buffer)) != kLiteRtStatusOk)
    return fail(s, "could not create the input buffer");
  if ((s = LiteRtGetCompiledModelOutputBufferRequirements(r->compiled, 0, 0, &req)) != kLiteRtStatusOk ||
      (s = create_buffer(r, req, &output_type, &r->output_buffer)) != kLiteRtStatusOk)
    return fail(s, "could not create the output buffer");

  size_t input_size = 0, expected_size = 0;
  if (!(r->input_bytes = read_file(input_path, &input_size, why, sizeof why))) return fail(-1, "%s", why);
  if (input_size == 0 || input_size % sample_in_bytes != 0)
    return fail(-1, "input file %s: expected a multiple of %zu bytes (one %s sample), got %zu bytes",
                input_path, sample_in_bytes, in_dtype, input_size);
  size_t samples = input_size / sample_in_bytes;
  if (expected_path) {
    if (!(r->expected_bytes = read_file(expected_path, &expected_size, why, sizeof why))) return fail(-1, "%s", why);
    if (expected_size != samples * sample_out_bytes)
      return fail(-1, "expected-output file %s: expected %zu bytes (%zu samples x %zu), got %zu bytes",
                  expected_path, samples * sample_out_bytes, samples, sample_out_bytes, expected_size);
  }
  if (!(r->output_bytes = malloc(samples * sample_out_bytes))) return fail(-1, "out of memory");

  for (size_t n = 0; n < samples; ++n) {
    void* host;
    if ((s = LiteRtLockTensorBuffer(r->input_buffer, &host, kLiteRtTensorBufferLockModeWrite)) != kLiteRtStatusOk)
      return fail(s, "could not lock the input buffer");
    memcpy(host, r->input_bytes + n * sample_in_bytes, sample_in_bytes);
    LiteRtUnlockTensorBuffer(r->input_buffer);
    if ((s = LiteRtRunCompiledModel(r->compiled, 0, 1, &r->input_buffer, 1, &r->output_buffer)) != kLiteRtStatusOk)
      return fail(s, "running sample %zu failed (LiteRtRunCompiledModel)", n);
    if ((s = LiteRtLockTensorBuffer(r->output_buffer, &host, kLiteRtTensorBufferLockModeRead)) != kLiteRtStatusOk)
      return fail(s, "could not lock the output buffer");
    memcpy(r->output_bytes + n * sample_out_bytes, host, sample_out_bytes);
    LiteRtUnlockTensorBuffer(r->output_buffer);
  }

  if (out_path) {
    FILE* f = fopen(out_path, "wb");
    if (!f || fwrite(r->output_bytes, 1, samples * sample_out_bytes, f) != samples * sample_out_bytes) {
      if (f) fclose(f);
      return fail(-1, "cannot write %s: %s", out_path, strerror(errno));
    }
    if (fclose(f) != 0) return fail(-1, "cannot write %s: %s", out_path, strerror(errno));
  }

  size_t mismatched = 0, first_sample = 0, first_byte = 0;
  int first_expected = 0, first_got = 0;
  if (expected_path) {
    for (size_t n = 0; n < samples; ++n) {
      const unsigned char* got = r->output_bytes + n * sample_out_bytes;
      const unsigned char* want = r->expected_bytes + n * sample_out_bytes;
      if (memcmp(got, want, sample_out_bytes) == 0) continue;
      if (mismatched++ == 0) {
        first_sample = n;
        for (first_byte = 0; got[first_byte] == want[first_byte]; ++first_byte) {}
        first_expected = want[first_byte];
        first_got = got[first_byte];
      }
    }
  }

  char in_shape[128], out_shape[128];
  format_shape(&input_type.layout, in_shape, sizeof in_shape);
  format_shape(&out_layout, out_shape, sizeof out_shape);
  const char* verdict = !expected_path ? "ran" : (mismatched ? "mismatch" : "match");
  if (g_json) {
    printf("{\"ok\": %s, \"result\": \"%s\", \"model\": ", mismatched ? "false" : "true", verdict);
    json_string(stdout, model_path);
    printf(", \"signature\": ");
    json_string(stdout, signature_key);
    printf(", \"input\": {\"name\": ");
    json_string(stdout, input_name);
    printf(", \"dtype\": \"%s\", \"shape\": %s}, \"output\": {\"name\": ", in_dtype, in_shape);
    json_string(stdout, output_name);
    printf(", \"dtype\": \"%s\", \"shape\": %s}, \"samples\": %zu, \"compared\": %s, \"mismatched_samples\": %zu",
           out_dtype, out_shape, samples, expected_path ? "true" : "false", mismatched);
    if (mismatched)
      printf(", \"first_mismatch\": {\"sample\": %zu, \"byte\": %zu, \"expected\": %d, \"got\": %d}", first_sample,
             first_byte, first_expected, first_got);
    printf("}\n");
  } else {
    printf("model      %s (signature '%s')\n", model_path, signature_key);
    printf("input      %s %s%s\n", input_name, in_dtype, in_shape);
    printf("output     %s %s%s\n", output_name, out_dtype, out_shape);
    printf("samples    %zu\n", samples);
    if (expected_path) {
      printf("result     %s: %zu of %zu samples differ from %s\n", verdict, mismatched, samples, expected_path);
      if (mismatched)
        printf("first diff sample %zu, byte %zu: expected 0x%02x, got 0x%02x\n", first_sample, first_byte,
               first_expected, first_got);
    }
  }
  return mismatched ? EXIT_MISMATCH : EXIT_MATCH;
}

/* Find "sha256": "<64 hex>" in a manifest. A full JSON parser is not worth it for one key:
 * the quote before the key keeps "parent_sha256" from matching. */
static int manifest_sha256(const char* text, char out[65]) {
  const char* p = strstr(text, "\"sha256\"");
  if (!p) return 0;
  p += strlen("\"sha256\"");
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') ++p;
  if (*p++ != ':') return 0;
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') ++p;
  if (*p++ != '"') return 0;
  for (int i = 0; i < 64; ++i) {
    char c = p[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return 0;
    out[i] = (c >= 'A' && c <= 'F') ? (char)(c - 'A' + 'a') : c;
  }
  out[64] = '\0';
  return p[64] == '"';
}

/* The manifest edge-sdk writes beside a model: dir/model.tflite -> dir/model.json. */
static char* sibling_manifest(const char* model_path) {
  size_t len = strlen(model_path);
  char* out = malloc(len + 6);
  if (!out) return NULL;
  memcpy(out, model_path, len + 1);
  char* slash = strrchr(out, '/');
  char* dot = strrchr(out, '.');
  if (dot && (!slash || dot > slash)) *dot = '\0';
  strcat(out, ".json");
  return out;
}

/* 0 when the model bytes match their manifest (or there is none to check), else prints why and returns 2. */
static int check_manifest(const char* model_path, const unsigned char* model, size_t model_size,
                          const char* manifest_path, int explicit_manifest) {
  char why[512], want[65], got[65];
  size_t manifest_size = 0;
  FILE* probe = fopen(manifest_path, "rb");
  if (!probe) {
    if (explicit_manifest) return refuse("file_io", "manifest %s: cannot open: %s", manifest_path, strerror(errno));
    fprintf(stderr, "note: no manifest at %s; the model's sha256 is not checked\n", manifest_path);
    return 0;
  }
  fclose(probe);
  unsigned char* manifest = read_file(manifest_path, &manifest_size, why, sizeof why);
  if (!manifest) return refuse("file_io", "%s", why);
  char* text = realloc(manifest, manifest_size + 1);
  if (!text) {
    free(manifest);
    return fail(-1, "out of memory");
  }
  text[manifest_size] = '\0';
  int found = manifest_sha256(text, want);
  free(text);
  if (!found)
    return refuse("manifest_unusable", "manifest %s: expected a \"sha256\" field with 64 hex digits, found none",
                  manifest_path);
  sha256_hex(model, model_size, got);
  if (strcmp(want, got) != 0)
    return refuse("manifest_mismatch", "model %s does not match its manifest %s: expected sha256 %s, got %s (the file "
                  "is corrupt or was replaced; LiteRT was not run on it)", model_path, manifest_path, want, got);
  return 0;
}

/* Run the check in a child so a LiteRT crash or hang on a bad file is reported, not inherited. */
static int run_isolated(const char* model_path, const unsigned char* model_bytes, size_t model_size,
                        const char* input_path, const char* expected_path, const char* out_path, double timeout_s) {
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) return fail(-1, "fork failed: %s", strerror(errno));
  if (pid == 0) {
    Resources resources;
    memset(&resources, 0, sizeof resources);
    int code = run(&resources, model_path, model_bytes, model_size, input_path, expected_path, out_path);
    release(&resources);
    fflush(stdout);
    fflush(stderr);
    _exit(code);
  }
  struct timespec start, now, pause = {0, 5 * 1000 * 1000};
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    int status;
    pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) {
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        return refuse("litert_crashed", "LiteRT crashed with signal %d (%s) on model %s; the file is corrupt or "
                      "not a model LiteRT %s can run, and LiteRT returned no status code", sig, strsignal(sig),
                      model_path, EDGE_SDK_LITERT_WHEEL_VERSION);
      }
      return fail(-1, "the LiteRT child process ended abnormally");
    }
    if (done < 0 && errno != EINTR) return fail(-1, "waitpid failed: %s", strerror(errno));
    clock_gettime(CLOCK_MONOTONIC, &now);
    double elapsed = (double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) / 1e9;
    if (elapsed > timeout_s) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return refuse("litert_timeout", "LiteRT did not finish within %.0f s on model %s (killed); the file is "
                    "probably corrupt", timeout_s, model_path);
    }
    nanosleep(&pause, NULL);
  }
}

int main(int argc, char** argv) {
  const char* out_path = NULL;
  const char* manifest_path = NULL;
  const char* positional[3] = {NULL, NULL, NULL};
  int count = 0, verify = 1, check_flatbuffer = 1;
  double timeout_s = 120.0;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--json") == 0) {
      g_json = 1;
    } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
      out_path = argv[++i];
    } else if (strcmp(argv[i], "--manifest") == 0 && i + 1 < argc) {
      manifest_path = argv[++i];
    } else if (strcmp(argv[i], "--no-verify") == 0) {
      verify = 0;
    } else if (strcmp(argv[i], "--unsafe-skip-flatbuffer-check") == 0) {
      check_flatbuffer = 0;  /* only to measure how LiteRT itself copes with bad files (fuzz_native.py) */
    } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
      char* end;
      timeout_s = strtod(argv[++i], &end);
      if (*end != '\0' || timeout_s <= 0) return fail(-1, "--timeout: expected a positive number of seconds, got %s", argv[i]);
    } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      usage(stdout);
      return EXIT_MATCH;
    } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
      usage(stderr);
      return fail(-1, "unknown option or missing value: %s", argv[i]);
    } else if (count < 3) {
      positional[count++] = argv[i];
    } else {
      usage(stderr);
      return fail(-1, "expected at most 3 paths, got more");
    }
  }
  if (count < 2) {
    usage(stderr);
    return fail(-1, "expected MODEL.tflite and INPUT.bin, got %d path(s)", count);
  }
  /* Read once: the sha256, the verifier and LiteRT all see exactly these bytes. */
  char why[512];
  size_t model_size = 0;
  unsigned char* model = read_file(positional[0], &model_size, why, sizeof why);
  if (!model) return refuse("file_io", "%s", why);
  int code = 0;
  if (verify) {
    char* sibling = manifest_path ? NULL : sibling_manifest(positional[0]);
    if (!manifest_path && !sibling) {
      free(model);
      return fail(-1, "out of memory");
    }
    code = check_manifest(positional[0], model, model_size, manifest_path ? manifest_path : sibling,
                          manifest_path != NULL);
    free(sibling);
  }
  if (code == 0 && check_flatbuffer && !tflite_verify(model, model_size, why, sizeof why))
    code = refuse("invalid_flatbuffer", "model %s (%zu bytes) is not a valid TFLite flatbuffer: %s; LiteRT was not "
                  "run on it", positional[0], model_size, why);
  if (code == 0)
    code = run_isolated(positional[0], model, model_size, positional[1], positional[2], out_path, timeout_s);
  free(model);
  return code;
}
