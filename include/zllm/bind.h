/* zllm/bind.h - what a binding from another language calls beside the
 * public API (the Python package in python/ loads libzllm.so with ctypes).
 *
 * A binding maps some of the public structs (zllm_archive_repo,
 * zllm_archive_file, zllm_st_header, zllm_st_tensor) field by field; it asks
 * the library their sizes first and refuses a library it does not match,
 * rather than read memory wrongly.  All calls are local.
 */
#ifndef ZLLM_BIND_H
#define ZLLM_BIND_H

#include <stddef.h>

/* The library's version ("0.1.0"). */
const char *zllm_bind_version(void);

/* sizeof the public struct named (without "struct"); 0 for a name this
 * list does not hold. */
size_t zllm_bind_sizeof(const char *type);

/* A dtype's safetensors name ("BF16") and element size; NULL and 0 for a
 * value out of range. */
const char *zllm_bind_dtype_name(int dtype);
int zllm_bind_dtype_size(int dtype);

#endif
