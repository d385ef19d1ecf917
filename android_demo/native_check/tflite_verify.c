/*
 * Bounds-checking verifier for TFLite flatbuffers (see tflite_verify.h).
 *
 * Written from the flatbuffers binary format and LiteRT's schema.fbs field
 * order (the vtable offsets below are those of ai_edge_litert's generated
 * schema_py_generated.py for 2.3.0): a table starts with a signed offset back
 * to its vtable; the vtable holds its own size, the table's size and one
 * 16-bit offset per field (0 = absent); offset fields hold an unsigned 32-bit
 * offset forward to a table, vector or string; vectors and strings start with
 * a 32-bit element count, strings end with a NUL. All arithmetic is done in
 * 64 bits so a hostile offset cannot wrap around.
 */
#include "tflite_verify.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The flatbuffers verifier's own default cap: bounds the work a hostile file can ask for. */
#define MAX_TABLES 1000000u

typedef struct {
  const uint8_t* buf;
  uint64_t len;
  uint32_t tables;
  char* why;
  size_t why_len;
} Verifier;

typedef struct {
  uint64_t pos;    /* where the table starts */
  uint64_t vtable; /* where its vtable starts */
  uint16_t vsize;  /* vtable size in bytes */
  uint16_t tsize;  /* table size in bytes */
} Table;

typedef struct {
  uint64_t start; /* first element (just after the count); 0 when the field is absent */
  uint32_t count;
} Vector;

static int bad(Verifier* v, const char* format, ...) {
  va_list args;
  va_start(args, format);
  vsnprintf(v->why, v->why_len, format, args);
  va_end(args);
  return 0;
}

static uint16_t rd16(const Verifier* v, uint64_t at) {
  return (uint16_t)(v->buf[at] | (v->buf[at + 1] << 8));
}

static uint32_t rd32(const Verifier* v, uint64_t at) {
  return (uint32_t)v->buf[at] | ((uint32_t)v->buf[at + 1] << 8) | ((uint32_t)v->buf[at + 2] << 16) |
         ((uint32_t)v->buf[at + 3] << 24);
}

static uint64_t rd64(const Verifier* v, uint64_t at) {
  return (uint64_t)rd32(v, at) | ((uint64_t)rd32(v, at + 4) << 32);
}

/* A table at `pos`: its vtable and its own extent must lie inside the buffer. */
static int table_at(Verifier* v, uint64_t pos, const char* what, Table* t) {
  if (++v->tables > MAX_TABLES)
    return bad(v, "more than %u tables (at %s); refusing a file that asks for that much work", MAX_TABLES, what);
  if (pos % 4 != 0 || pos + 4 > v->len)
    return bad(v, "%s: table offset %llu is %s", what, (unsigned long long)pos,
               pos + 4 > v->len ? "past the end of the file" : "not 4-byte aligned");
  int64_t vtable = (int64_t)pos - (int64_t)(int32_t)rd32(v, pos);
  if (vtable < 0 || vtable % 2 != 0 || (uint64_t)vtable + 4 > v->len)
    return bad(v, "%s: the vtable of the table at offset %llu points outside the file", what,
               (unsigned long long)pos);
  t->pos = pos;
  t->vtable = (uint64_t)vtable;
  t->vsize = rd16(v, t->vtable);
  t->tsize = rd16(v, t->vtable + 2);
  if (t->vsize < 4 || t->vsize % 2 != 0 || t->vtable + t->vsize > v->len)
    return bad(v, "%s: vtable at offset %llu declares %u bytes, which do not fit in the file", what,
               (unsigned long long)t->vtable, t->vsize);
  if (t->tsize < 4 || pos + t->tsize > v->len)
    return bad(v, "%s: table at offset %llu declares %u bytes, which run past the end of the %llu-byte file", what,
               (unsigned long long)pos, t->tsize, (unsigned long long)v->len);
  return 1;
}

/* Position of the field at vtable offset `vo` (0 when absent); it must fit inside its table. */
static int field(Verifier* v, const Table* t, unsigned vo, unsigned size, const char* what, uint64_t* at) {
  *at = 0;
  if (vo + 2u > t->vsize) return 1; /* an older writer's shorter vtable: the field is absent */
  uint16_t offset = rd16(v, t->vtable + vo);
  if (offset == 0) return 1;
  if ((unsigned)offset + size > t->tsize)
    return bad(v, "%s: field at table offset %u (%u bytes) lies outside its %u-byte table", what, offset, size,
               t->tsize);
  *at = t->pos + offset;
  return 1;
}

/* A scalar field we do not need the value of: only its bounds. */
static int scalar_fits(Verifier* v, const Table* t, unsigned vo, unsigned size, const char* what) {
  uint64_t at;
  return field(v, t, vo, size, what, &at);
}

static int scalar_u32(Verifier* v, const Table* t, unsigned vo, const char* what, uint32_t* out) {
  uint64_t at;
  *out = 0;
  if (!field(v, t, vo, 4, what, &at)) return 0;
  if (at) *out = rd32(v, at);
  return 1;
}

static int scalar_u64(Verifier* v, const Table* t, unsigned vo, const char* what, uint64_t* out) {
  uint64_t at;
  *out = 0;
  if (!field(v, t, vo, 8, what, &at)) return 0;
  if (at) *out = rd64(v, at);
  return 1;
}

/* Follow the unsigned offset stored at `at`; the target must leave room for a 4-byte header. */
static int follow(Verifier* v, uint64_t at, const char* what, uint64_t* target) {
  uint32_t offset = rd32(v, at);
  *target = at + offset;
  if (offset == 0 || *target + 4 > v->len)
    return bad(v, "%s: offset %u at byte %llu points outside the %llu-byte file", what, offset,
               (unsigned long long)at, (unsigned long long)v->len);
  return 1;
}

static int vector_field(Verifier* v, const Table* t, unsigned vo, unsigned elem_size, const char* what,
                        Vector* out) {
  uint64_t at, target;
  out->start = 0;
  out->count = 0;
  if (!field(v, t, vo, 4, what, &at)) return 0;
  if (!at) return 1;
  if (!follow(v, at, what, &target)) return 0;
  if (target % 4 != 0) return bad(v, "%s: vector at offset %llu is not 4-byte aligned", what, (unsigned long long)target);
  uint32_t count = rd32(v, target);
  if (target + 4 + (uint64_t)count * elem_size > v->len)
    return bad(v, "%s: %u elements of %u bytes at offset %llu run past the end of the %llu-byte file", what, count,
               elem_size, (unsigned long long)target, (unsigned long long)v->len);
  out->start = target + 4;
  out->count = count;
  return 1;
}

static int string_field(Verifier* v, const Table* t, unsigned vo, const char* what) {
  Vector s;
  if (!vector_field(v, t, vo, 1, what, &s)) return 0;
  if (s.start && (s.start + s.count >= v->len || v->buf[s.start + s.count] != 0))
    return bad(v, "%s: string of %u bytes at offset %llu is not NUL-terminated inside the file", what, s.count,
               (unsigned long long)s.start);
  return 1;
}

static int table_field(Verifier* v, const Table* t, unsigned vo, const char* what, Table* out, int* present) {
  uint64_t at, target;
  *present = 0;
  if (!field(v, t, vo, 4, what, &at)) return 0;
  if (!at) return 1;
  if (!follow(v, at, what, &target) || !table_at(v, target, what, out)) return 0;
  *present = 1;
  return 1;
}

/* Element `k` of a vector of tables. */
static int table_element(Verifier* v, const Vector* vec, uint32_t k, const char* what, Table* out) {
  uint64_t target;
  return follow(v, vec->start + 4ull * k, what, &target) && table_at(v, target, what, out);
}

/* Every element of an [int] vector must be an index in [lowest, limit). */
static int indices_in_range(Verifier* v, const Vector* vec, int32_t lowest, uint32_t limit, const char* what,
                            const char* of) {
  for (uint32_t k = 0; k < vec->count; ++k) {
    int32_t index = (int32_t)rd32(v, vec->start + 4ull * k);
    if (index < lowest || (index >= 0 && (uint32_t)index >= limit))
      return bad(v, "%s[%u] = %d is not one of the %u %s", what, k, index, limit, of);
  }
  return 1;
}

/* A table whose fields depend on a union type (builtin options, quantization details): bounds only. */
static int opaque_table(Verifier* v, const Table* t, unsigned vo, const char* what) {
  Table inner;
  int present;
  return table_field(v, t, vo, what, &inner, &present);
}

/* Data that lives after the flatbuffer (models over 2 GB): offset 0/1 mean "not used". */
static int external_range(Verifier* v, uint64_t offset, uint64_t size, const char* what) {
  if (offset > 1 && (offset > v->len || size > v->len - offset))
    return bad(v, "%s: data at offset %llu, %llu bytes, lies outside the %llu-byte file", what,
               (unsigned long long)offset, (unsigned long long)size, (unsigned long long)v->len);
  return 1;
}

static int verify_tensor(Verifier* v, const Table* t, uint32_t n_buffers, const char* what) {
  char where[256];
  Vector vec;
  Table quant;
  int present;
  uint32_t buffer;
  snprintf(where, sizeof where, "%s shape", what);
  if (!vector_field(v, t, 4, 4, where, &vec)) return 0;
  snprintf(where, sizeof where, "%s buffer", what);
  if (!scalar_fits(v, t, 6, 1, what) || !scalar_u32(v, t, 8, where, &buffer)) return 0;
  if (buffer >= n_buffers)
    return bad(v, "%s: buffer index %u is not one of the %u buffers", what, buffer, n_buffers);
  snprintf(where, sizeof where, "%s name", what);
  if (!string_field(v, t, 10, where)) return 0;
  snprintf(where, sizeof where, "%s quantization", what);
  if (!table_field(v, t, 12, where, &quant, &present)) return 0;
  if (present) {
    static const unsigned vectors[] = {4, 6, 8, 10};
    static const unsigned sizes[] = {4, 4, 4, 8};
    for (unsigned i = 0; i < 4; ++i)
      if (!vector_field(v, &quant, vectors[i], sizes[i], where, &vec)) return 0;
    if (!scalar_fits(v, &quant, 12, 1, where) || !opaque_table(v, &quant, 14, where) ||
        !scalar_fits(v, &quant, 16, 4, where))
      return 0;
  }
  snprintf(where, sizeof where, "%s", what);
  if (!scalar_fits(v, t, 14, 1, where) || !opaque_table(v, t, 16, where)) return 0;
  snprintf(where, sizeof where, "%s shape_signature", what);
  if (!vector_field(v, t, 18, 4, where, &vec)) return 0;
  snprintf(where, sizeof where, "%s variant_tensors", what);
  if (!scalar_fits(v, t, 20, 1, where) || !vector_field(v, t, 22, 4, where, &vec)) return 0;
  for (uint32_t k = 0; k < vec.count; ++k) {
    Table inner;
    if (!table_element(v, &vec, k, where, &inner)) return 0;
  }
  return scalar_fits(v, t, 24, 4, what);
}

static int verify_operator(Verifier* v, const Table* t, uint32_t n_opcodes, uint32_t n_tensors, const char* what) {
  char where[256];
  Vector vec;
  uint32_t opcode;
  uint64_t offset, size;
  if (!scalar_u32(v, t, 4, what, &opcode)) return 0;
  if (opcode >= n_opcodes) return bad(v, "%s: opcode_index %u is not one of the %u operator codes", what, opcode, n_opcodes);
  static const unsigned index_vectors[] = {6, 8, 20};
  static const char* names[] = {"inputs", "outputs", "intermediates"};
  for (unsigned i = 0; i < 3; ++i) {
    snprintf(where, sizeof where, "%s %s", what, names[i]);
    if (!vector_field(v, t, index_vectors[i], 4, where, &vec) ||
        !indices_in_range(v, &vec, -1, n_tensors, where, "tensors of its subgraph"))
      return 0;
  }
  snprintf(where, sizeof where, "%s builtin_options", what);
  if (!scalar_fits(v, t, 10, 1, where) || !opaque_table(v, t, 12, where)) return 0;
  snprintf(where, sizeof where, "%s custom_options", what);
  if (!vector_field(v, t, 14, 1, where, &vec) || !scalar_fits(v, t, 16, 1, where)) return 0;
  snprintf(where, sizeof where, "%s mutating_variable_inputs", what);
  if (!vector_field(v, t, 18, 1, where, &vec)) return 0;
  snprintf(where, sizeof where, "%s large custom options", what);
  if (!scalar_u64(v, t, 22, where, &offset) || !scalar_u64(v, t, 24, where, &size) ||
      !external_range(v, offset, size, where))
    return 0;
  snprintf(where, sizeof where, "%s builtin_options_2", what);
  return scalar_fits(v, t, 26, 1, where) && opaque_table(v, t, 28, where) &&
         scalar_fits(v, t, 30, 4, what);
}

static int verify_subgraph(Verifier* v, const Table* t, uint32_t n_buffers, uint32_t n_opcodes, uint32_t index,
                           uint32_t* n_tensors) {
  char what[64], where[128];
  Vector tensors, vec, operators;
  snprintf(what, sizeof what, "subgraph %u", index);
  snprintf(where, sizeof where, "%s tensors", what);
  if (!vector_field(v, t, 4, 4, where, &tensors)) return 0;
  for (uint32_t k = 0; k < tensors.count; ++k) {
    Table tensor;
    snprintf(where, sizeof where, "%s tensor %u", what, k);
    if (!table_element(v, &tensors, k, where, &tensor) || !verify_tensor(v, &tensor, n_buffers, where)) return 0;
  }
  *n_tensors = tensors.count;
  static const unsigned io[] = {6, 8};
  static const char* io_names[] = {"inputs", "outputs"};
  for (unsigned i = 0; i < 2; ++i) {
    snprintf(where, sizeof where, "%s %s", what, io_names[i]);
    if (!vector_field(v, t, io[i], 4, where, &vec) ||
        !indices_in_range(v, &vec, 0, tensors.count, where, "tensors of the subgraph"))
      return 0;
  }
  snprintf(where, sizeof where, "%s operators", what);
  if (!vector_field(v, t, 10, 4, where, &operators)) return 0;
  for (uint32_t k = 0; k < operators.count; ++k) {
    Table op;
    snprintf(where, sizeof where, "%s operator %u", what, k);
    if (!table_element(v, &operators, k, where, &op) || !verify_operator(v, &op, n_opcodes, tensors.count, where))
      return 0;
  }
  snprintf(where, sizeof where, "%s name", what);
  return string_field(v, t, 12, where) && scalar_fits(v, t, 14, 4, what);
}

/* Number of tensors of subgraph `index` (already verified). */
static uint32_t tensor_count(Verifier* v, const Vector* subgraphs, uint32_t index) {
  Table sg;
  Vector tensors;
  if (!table_element(v, subgraphs, index, "subgraph", &sg) || !vector_field(v, &sg, 4, 4, "tensors", &tensors))
    return 0;
  return tensors.count;
}

static int verify_signature(Verifier* v, const Table* t, const Vector* subgraphs, uint32_t index) {
  char what[64], where[128];
  uint32_t subgraph;
  snprintf(what, sizeof what, "signature_def %u", index);
  snprintf(where, sizeof where, "%s signature_key", what);
  if (!string_field(v, t, 8, where) || !scalar_u32(v, t, 12, what, &subgraph)) return 0;
  if (subgraph >= subgraphs->count)
    return bad(v, "%s: subgraph_index %u is not one of the %u subgraphs", what, subgraph, subgraphs->count);
  uint32_t n_tensors = tensor_count(v, subgraphs, subgraph);
  static const unsigned maps[] = {4, 6};
  static const char* map_names[] = {"inputs", "outputs"};
  for (unsigned i = 0; i < 2; ++i) {
    Vector vec;
    snprintf(where, sizeof where, "%s %s", what, map_names[i]);
    if (!vector_field(v, t, maps[i], 4, where, &vec)) return 0;
    for (uint32_t k = 0; k < vec.count; ++k) {
      Table map;
      uint32_t tensor;
      snprintf(where, sizeof where, "%s %s[%u]", what, map_names[i], k);
      if (!table_element(v, &vec, k, where, &map) || !string_field(v, &map, 4, where) ||
          !scalar_u32(v, &map, 6, where, &tensor))
        return 0;
      if (tensor >= n_tensors)
        return bad(v, "%s: tensor_index %u is not one of the %u tensors of subgraph %u", where, tensor, n_tensors,
                   subgraph);
    }
  }
  return 1;
}

int tflite_verify(const uint8_t* data, size_t size, char* why, size_t why_len) {
  Verifier v = {data, (uint64_t)size, 0, why, why_len};
  char where[128];
  if (size == 0) return bad(&v, "the file is empty (0 bytes); expected a TFLite flatbuffer");
  if (size < 8)
    return bad(&v, "the file is %zu bytes; a TFLite flatbuffer has at least 8 (root offset, then 'TFL3')", size);
  if (memcmp(data + 4, "TFL3", 4) != 0) {
    char seen[40];
    size_t pos = 0;
    for (int i = 4; i < 8; ++i)
      pos += (size_t)snprintf(seen + pos, sizeof seen - pos, (data[i] >= 0x20 && data[i] < 0x7f) ? "%c" : "\\x%02x",
                              data[i]);
    return bad(&v, "expected the file identifier 'TFL3' at bytes 4..8, got '%s'", seen);
  }
  Table model;
  if (!table_at(&v, rd32(&v, 0), "the root Model table", &model)) return 0;
  if (!scalar_fits(&v, &model, 4, 4, "Model version")) return 0;

  Vector opcodes, buffers, subgraphs, vec;
  if (!vector_field(&v, &model, 6, 4, "operator_codes", &opcodes)) return 0;
  for (uint32_t k = 0; k < opcodes.count; ++k) {
    Table code;
    snprintf(where, sizeof where, "operator_code %u", k);
    if (!table_element(&v, &opcodes, k, where, &code) || !scalar_fits(&v, &code, 4, 1, where) ||
        !string_field(&v, &code, 6, where) || !scalar_fits(&v, &code, 8, 4, where) ||
        !scalar_fits(&v, &code, 10, 4, where))
      return 0;
  }

  if (!vector_field(&v, &model, 12, 4, "buffers", &buffers)) return 0;
  for (uint32_t k = 0; k < buffers.count; ++k) {
    Table buffer;
    uint64_t offset, length;
    snprintf(where, sizeof where, "buffer %u", k);
    if (!table_element(&v, &buffers, k, where, &buffer) || !vector_field(&v, &buffer, 4, 1, where, &vec) ||
        !scalar_u64(&v, &buffer, 6, where, &offset) || !scalar_u64(&v, &buffer, 8, where, &length) ||
        !external_range(&v, offset, length, where))
      return 0;
  }

  if (!vector_field(&v, &model, 8, 4, "subgraphs", &subgraphs)) return 0;
  if (subgraphs.count == 0)
    return bad(&v, "the model has no subgraphs; expected at least one (a corrupt or truncated file)");
  for (uint32_t k = 0; k < subgraphs.count; ++k) {
    Table sg;
    uint32_t n_tensors;
    snprintf(where, sizeof where, "subgraph %u", k);
    if (!table_element(&v, &subgraphs, k, where, &sg) ||
        !verify_subgraph(&v, &sg, buffers.count, opcodes.count, k, &n_tensors))
      return 0;
  }

  if (!string_field(&v, &model, 10, "description")) return 0;
  if (!vector_field(&v, &model, 14, 4, "metadata_buffer", &vec) ||
      !indices_in_range(&v, &vec, 0, buffers.count, "metadata_buffer", "buffers"))
    return 0;
  if (!vector_field(&v, &model, 16, 4, "metadata", &vec)) return 0;
  for (uint32_t k = 0; k < vec.count; ++k) {
    Table meta;
    uint32_t buffer;
    snprintf(where, sizeof where, "metadata %u", k);
    if (!table_element(&v, &vec, k, where, &meta) || !string_field(&v, &meta, 4, where) ||
        !scalar_u32(&v, &meta, 6, where, &buffer))
      return 0;
    if (buffer >= buffers.count)
      return bad(&v, "%s: buffer index %u is not one of the %u buffers", where, buffer, buffers.count);
  }
  if (!vector_field(&v, &model, 18, 4, "signature_defs", &vec)) return 0;
  for (uint32_t k = 0; k < vec.count; ++k) {
    Table sig;
    snprintf(where, sizeof where, "signature_def %u", k);
    if (!table_element(&v, &vec, k, where, &sig) || !verify_signature(&v, &sig, &subgraphs, k)) return 0;
  }
  static const unsigned external[] = {20, 22};
  static const char* external_names[] = {"external_buffer_groups", "external_buffers"};
  for (unsigned i = 0; i < 2; ++i) {
    if (!vector_field(&v, &model, external[i], 4, external_names[i], &vec)) return 0;
    for (uint32_t k = 0; k < vec.count; ++k) {
      Table inner;
      snprintf(where, sizeof where, "%s %u", external_names[i], k);
      if (!table_element(&v, &vec, k, where, &inner)) return 0;
    }
  }
  return 1;
}
