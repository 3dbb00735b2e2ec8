/* Private to crawl/: what the sources and the listed hub share. */
#ifndef ZLLM_CRAWL_SOURCE_INTERNAL_H
#define ZLLM_CRAWL_SOURCE_INTERNAL_H

#include "zllm/buf.h"
#include "zllm/hub.h"

/* One repo's line of a snapshot's .zllm/metadata.jsonl: the crawl writes it
 * from one API response, which it caps at this size too (crawl.c). */
#define ZLLM_METADATA_LINE_MAX ((size_t)64 << 20)

/* The local source's open (the rules of zllm_source_open_file). */
int zllm_local_file_open(const zllm_hub_file *f, const char *repo_id, int *fd_out);

/* A local source on `root` that lists nothing itself: a listed hub received
 * from another rank reads and opens its files through it. */
int zllm_source_attach_local(zllm_source **out, const char *root);

/* The second half of zllm_repo_load: config, card and shard index parsed
 * from the listed files (a bad one is a problem line; only ENOMEM fails). */
int zllm_repo_load_meta(zllm_source *src, zllm_repo *repo);
void zllm_repo_sort_files(zllm_repo *repo);

/* A split listing (crawl/hub_split.c): the lister of entries [lo, hi) of
 * a local source that scanned the root gets them (id, directory, layout,
 * the crawl's revision and date), appended to a source that lists nothing
 * itself; then it can list those repos. */
int zllm_source_local_put_entries(zllm_source *src, size_t lo, size_t hi, zllm_buf *b);
int zllm_source_local_take_entries(zllm_source *src, const char *data, size_t len);

/* A repo's listing as one rank sends it to another (files, identities, the
 * listing's problems; the small files are parsed again where it lands). */
int zllm_hub_encode_repo(zllm_buf *b, const zllm_repo *r);
int zllm_hub_decode_repo(zllm_reader *r, zllm_repo *repo);
/* The per-repo summary every rank holds (zllm_hub.info), from a loaded repo. */
int zllm_hub_info_of(zllm_hub_info *info, const zllm_repo *r);
/* The split hub's side of zllm_hub_get / zllm_hub_put / zllm_hub_free. */
int zllm_hub_store_get(const zllm_hub *h, size_t i, const zllm_repo **out);
void zllm_hub_store_put(const zllm_hub *h, size_t i);
void zllm_hub_store_free(struct zllm_hub_store *st); /* accepts NULL */

#endif
