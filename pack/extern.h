/* pack/extern.h - extern repos: a base another packer stores.
 *
 * When packers share one hub (the survey's ranks), a fine-tune may be
 * packed by one rank while its base is packed by another.  The fine-tune's
 * packer does not wait for the other's output: it reads the base from the
 * hub itself and records it in its own catalog as rows without bytes (repo,
 * files and tensors with method "extern": hashes, names, shapes), so that
 * BitX and dedup find the base exactly as they would find a stored one.
 * Every file's SHA-256 and XXH3-128, every tensor's key and one XXH3-128 per
 * part are taken on the bytes read; a later read of a part must give the
 * same sum.  zllm_archive_merge (merge.c) maps the rows onto the repo as
 * its own packer stored it, after comparing the keys, and never copies them.
 * Internal to pack/. */
#ifndef ZLLM_PACK_EXTERN_H
#define ZLLM_PACK_EXTERN_H

#include "pack/archive_internal.h"
#include "zllm/hub.h"

typedef struct ar_extern ar_extern;

/* Where tensor bytes read whole may go (the base cache of ingest.c): room
 * says whether a tensor of len bytes is wanted, keep takes the bytes
 * (malloc'd; keep owns them, also when it fails).  Entries are keyed by row
 * id, and a rolled-back row's id is given to the next row: what was kept
 * for rows that are rolled back is dropped again (mark, then drop back to
 * it), or a later row would find another tensor's bytes under its id. */
typedef struct {
  void *ctx;
  int (*room)(void *ctx, uint64_t len);
  int (*keep)(void *ctx, int64_t id, size_t repo, const zllm_st_tensor *t, uint8_t *bytes);
  size_t (*mark)(void *ctx);
  void (*drop)(void *ctx, size_t mark);
} ar_extern_cache;

int ar_extern_new(ar_extern **out, const zllm_hub *hub);
void ar_extern_free(ar_extern *x); /* accepts NULL */

/* Records hub repo `repo` in `a` as an extern repo (one transaction).  A
 * file that cannot be read is left out with a warning, as pack would skip
 * it; a failure of the archive is an error. */
int ar_extern_repo(ar_extern *x, zllm_archive *a, size_t repo, const ar_extern_cache *cache);

/* Part `part` of extern tensor `id` in its own dtype (what
 * ar_tensor_decode_part gives for a stored tensor), read from the hub again
 * and checked against the part's sum: the archive's extern_part hook during
 * a pack, when the base cache does not hold the tensor. */
int ar_extern_part(const ar_extern *x, zllm_archive *a, int64_t id, uint64_t part, uint8_t *dst);

#endif
