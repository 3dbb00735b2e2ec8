/* zllm/json.h - strict JSON loading (jansson) for untrusted input.  Local. */
#ifndef ZLLM_JSON_H
#define ZLLM_JSON_H

#include <stddef.h>

#include <jansson.h>

/* Parses `len` bytes as one JSON value: duplicate object keys, embedded NULs
 * and trailing garbage are errors; more than `max` bytes is ZLLM_ELIMIT.
 * On failure the message is "<name>: <rule>: <detail>" and *out is NULL;
 * on success the caller owns *out (json_decref). */
int zllm_json_load(json_t **out, const char *name, const char *rule, const char *text, size_t len,
                   size_t max);

/* strdup of a JSON string value, or NULL when `v` is not a string. */
char *zllm_json_strdup(const json_t *v);

/* Copies an array of strings (or a single string) into a malloc'd vector of
 * malloc'd strings; non-string items are an error.  *n_out gets the count. */
int zllm_json_string_list(char ***out, size_t *n_out, const json_t *v, const char *name,
                          const char *field);

void zllm_strv_free(char **v, size_t n);
/* The index of `s` in `v` (sorted by strcmp), or -1; s may be NULL. */
long zllm_strv_find_sorted(char *const *v, size_t n, const char *s);

#endif
