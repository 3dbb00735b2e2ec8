/* zllm/path.h - path and repo-id rules for untrusted names.  Local calls. */
#ifndef ZLLM_PATH_H
#define ZLLM_PATH_H

#include <stdbool.h>

/* "a" + "/" + "b", malloc'd; NULL on out-of-memory (message set). */
char *zllm_path_join(const char *a, const char *b);

/* A file path inside a repo as a hub names it: relative, '/'-separated,
 * no empty, "." or ".." component, no backslash, no control character,
 * well-formed UTF-8 (no overlong form, surrogate or stray byte), at most
 * 1024 bytes, each component at most 255.  The one rule for a name at
 * ingest, at crawl and at restore: a name that passes can be written back.  0 or ZLLM_EUNSAFE with a message naming `what`. */
int zllm_path_check_relative(const char *path, const char *what);

/* A Hub repo id: "name" or "org/name" with [A-Za-z0-9._-] in each part,
 * no "--" or "..", not starting or ending with '-' or '.', at most 96 bytes
 * per part.  0 or ZLLM_EUNSAFE. */
int zllm_repo_id_check(const char *id);

/* True when `resolved` is `root_real` or below it; both must be realpath(3)
 * results (resolve once, then compare: no second look at the file system). */
bool zllm_path_is_within(const char *root_real, const char *resolved);

#endif
