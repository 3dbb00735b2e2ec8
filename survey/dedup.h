/* Private to survey/: hash-level duplicates counted by the owners of the
 * hashes (report.c).  Each rank sends the hashes of its own files and
 * tensors to the rank owning each hash (XXH3-64 of it, modulo the ranks);
 * an owner sorts what it got and decides for its hashes what one process
 * would over the whole hub: the first copy in hub order is kept, the others
 * are duplicates.  Sums are taken over the ranks; no rank holds another's
 * records.  Every call is COLLECTIVE. */
#ifndef ZLLM_SURVEY_DEDUP_H
#define ZLLM_SURVEY_DEDUP_H

#include <stddef.h>
#include <stdint.h>

#include <mpi.h>

#include "zllm/buf.h"

/* A file's SHA-256 (64 bytes a record: 2.5% of a scan record). */
typedef struct {
  uint8_t hash[32];
  uint8_t weight;   /* a weight file (safetensors or opaque weights) */
  uint8_t readable; /* 0: the file could not be read, hash zero */
  int32_t from;     /* the rank that sent it */
  uint64_t file, repo, bytes;
} sv_file_hash;

/* A tensor's XXH3-128 and its place: file, then order in the file. */
typedef struct {
  uint8_t hash[16];
  int32_t from;
  uint64_t file, order, bytes;
} sv_tensor_hash;

typedef struct sv_holders sv_holders; /* an owner's (SHA-256, repo) list of weight files */

/* This rank's hash records, already sorted out by the rank owning each
 * hash (one buffer per rank: no second copy to send them). */
typedef struct {
  zllm_buf *to;
  int nranks;
} sv_outbox;

int sv_outbox_init(sv_outbox *o, MPI_Comm comm);
int sv_outbox_file(sv_outbox *o, const sv_file_hash *h);
int sv_outbox_tensor(sv_outbox *o, const sv_tensor_hash *h);
void sv_outbox_free(sv_outbox *o);

/* File dedup over the file records in `mine` (sent and emptied): *dups
 * gets this rank's files that are not their hash's first copy (sorted;
 * unreadable files never are), *kept and *ndup_files the whole hub's bytes
 * after file dedup and its duplicate files; *h the weight files' holders
 * this rank owns (for sv_dedup_repos). */
int sv_dedup_files(sv_outbox *mine, uint64_t **dups, size_t *ndups, uint64_t *kept, uint64_t *ndup_files,
                   sv_holders **h, MPI_Comm comm);
/* Tensor dedup over the tensors of files that are first copies (`mine`,
 * sent and emptied): *kept the bytes of each hash's first tensor, *ndups
 * the others, over the hub. */
int sv_dedup_tensors(sv_outbox *mine, uint64_t *kept, uint64_t *ndups, MPI_Comm comm);

/* A repo of this rank and the SHA-256s of its weight files, in file order. */
typedef struct {
  uint64_t repo;
  uint8_t (*sha)[32];
  size_t nsha;
  int unreadable; /* one of them could not be read */
} sv_repo_weights;

/* Re-uploads: for each repo, the first earlier repo (hub order) holding
 * every one of its weight files (none when one of them could not be read);
 * *holder[k] the index of that repo for repos[k], or UINT64_MAX. */
int sv_dedup_repos(const sv_repo_weights *repos, size_t n, const sv_holders *h, uint64_t **holder, MPI_Comm comm);

void sv_holders_free(sv_holders *h); /* accepts NULL */

#endif
