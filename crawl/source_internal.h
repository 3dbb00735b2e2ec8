/* Private to crawl/: what the sources and the listed hub share. */
#ifndef ZLLM_CRAWL_SOURCE_INTERNAL_H
#define ZLLM_CRAWL_SOURCE_INTERNAL_H

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

#endif
