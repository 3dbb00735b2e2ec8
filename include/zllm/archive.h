/* zllm/archive.h - the deduplicated BitX archive (docs/FORMAT.md).  One
 * process writes an archive; archives packed from shares of a hub by several
 * processes are merged into one (zllm_archive_merge).
 *
 * An archive is a directory: catalog.sqlite (what is stored where, every
 * file's SHA-256) and packs/pack-NNNN.zpk (append-only blob records).  A repo
 * is ingested in one catalog transaction after its blobs are written and
 * synced, so an interrupted pack leaves each repo wholly stored or absent,
 * and bytes a crash left past the committed end of a pack are cut off when
 * the archive is next opened.
 *
 * Stages, in ZipLLM's order: file dedup (XXH3-128 key, SHA-256 confirms) ->
 * tensor dedup (XXH3-128 key, bytes compared) -> BitX against the base's
 * tensor of the same name, dtype and shape -> field-aligned solo planes.
 * Headers and other files are stored as zstd stream containers.
 * All calls are local.
 */
#ifndef ZLLM_ARCHIVE_H
#define ZLLM_ARCHIVE_H

#include <stdint.h>
#include <stdio.h>

#include <mpi.h>

#include "zllm/basemap.h"
#include "zllm/hash.h"
#include "zllm/hub.h"
#include "zllm/safetensors.h"

typedef struct zllm_archive zllm_archive;

/* Opens (and with `create`, makes) the archive in directory `dir`. */
int zllm_archive_open(zllm_archive **out, const char *dir, int create);
void zllm_archive_close(zllm_archive *a); /* accepts NULL */

/* The same, asking for an archive format (docs/FORMAT.md): a new archive is
 * made in it, an existing one must have it; 0 = the newest (new) or any
 * (existing).  Format 1 codes tensor planes with zstd, as zllm did before
 * format 2 (rANS), so older builds can still read what is written. */
int zllm_archive_open_format(zllm_archive **out, const char *dir, int create, int format);

/* Opens an existing archive read-only with a part cache (decoded parts a
 * fine-tune's BitX tensors need again) of ZLLM_PART_CACHE_MIB (default
 * 512) split `ways` ways: one handle per thread of a reader. */
int zllm_archive_open_readonly(zllm_archive **out, const char *dir, int ways);

/* The archive's format (1 or 2). */
int zllm_archive_format(const zllm_archive *a);

/* Threads used to code the planes of each tensor part (default 1). */
int zllm_archive_set_threads(zllm_archive *a, int threads);

/* A writer drops the pack bytes of each commit from the page cache once
 * they are on disk (fsync, then POSIX_FADV_DONTNEED): a packer streams far
 * more than it reads back, and keeping its output cached would evict the
 * hub it is reading and make every write take fresh pages.  keep = 1 keeps
 * them (an archive that is read right after, as the survey's staging
 * archives are by the merge). */
void zllm_archive_keep_written(zllm_archive *a, int keep);

/* An archive a job writes whole and makes again rather than resumes (the
 * survey's staging archives and its archive, replaced by each run): a
 * commit stays atomic but is not made durable on its own — no fsync of the
 * pack, SQLite's synchronous=OFF — which spares two fsyncs per repo;
 * zllm_archive_sync then makes everything committed durable at once (and
 * complete for a reader on another node of a shared file system).  After an
 * OS crash before that sync such an archive is not to be trusted: the job
 * is run again. */
int zllm_archive_defer_sync(zllm_archive *a);
int zllm_archive_sync(zllm_archive *a);

/* What to do with the bytes.  ZLLM is the product; the others exist so the
 * benchmark can run the baselines through the same I/O in the same run:
 *   ZIPLLM  file + tensor dedup, BitX as ZipLLM's code does it (16-bit words
 *           split as BF16 whatever the dtype), zstd -3 streams, solo tensors
 *           as zstd -3 of their raw bytes;
 *   ZIPNN   no dedup, no deltas: field-aligned byte planes (zstd -1);
 *   ZSTD    every file as zstd -3 chunks, nothing else. */
typedef enum { ZLLM_PROFILE_ZLLM, ZLLM_PROFILE_ZIPLLM, ZLLM_PROFILE_ZIPNN, ZLLM_PROFILE_ZSTD } zllm_pack_profile;

int zllm_pack_profile_parse(const char *name, zllm_pack_profile *out);

/* Whether a profile uses bases (BitX): the others only record them. */
int zllm_pack_profile_uses_bases(zllm_pack_profile p);

/* What pack's one read of each file shows an observer (the survey's scan
 * records and characterization tallies), on the bytes pack stores, in file
 * order.  file_begin comes before any bytes (h is NULL for a file stored as
 * bytes; header_error says why when it was meant to parse); tensor_part
 * gives tensor i's bytes [off, off + n) and, when the base has a tensor of
 * that name and shape in a float dtype, the base's same elements cast to
 * the tensor's dtype (else NULL); file_end closes every file_begin, with
 * the SHA-256 and XXH3-128 of the bytes read, or error set when the read
 * failed (hashes then NULL).  Files pack refuses before reading (names that
 * cannot be restored) are not shown.  Callbacks return 0, or an error that
 * stops the pack. */
typedef struct {
  void *ctx;
  int (*file_begin)(void *ctx, const char *repo, const zllm_hub_file *f, const zllm_st_header *h,
                    const char *header_error);
  int (*tensor_part)(void *ctx, size_t i, uint64_t off, const uint8_t *p, size_t n, const uint8_t *base);
  int (*tensor_end)(void *ctx, size_t i, const zllm_xxh128 *hash, int has_base);
  int (*file_end)(void *ctx, const zllm_sha256 *sha, const zllm_xxh128 *xxh, const char *error);
} zllm_pack_tap;

typedef struct {
  const zllm_hub *hub;  /* the listed hub (zllm_hub_open_local, zllm_hub_bcast; borrowed) */
  int verbose;
  zllm_pack_profile profile;
  const zllm_base_map *bases;     /* each repo's base (zllm/cluster.h, zllm_bases_choose), or NULL: none */
  const zllm_pack_tap *tap;       /* shown every file's bytes as they are read, or NULL */
  /* Packers sharing one hub (the survey's ranks): before a repo is stored,
   * claim(claim_ctx, i, &mine) says whether repo i of the listing is this
   * packer's (mine 1) or another's (0), or fails.  A repo whose base is
   * another's is packed against the base's bytes read
   * from the hub, recorded as an extern repo that zllm_archive_merge maps
   * onto the packer that stored it.  NULL: every repo is mine. */
  int (*claim)(void *claim_ctx, size_t repo, int *mine);
  void *claim_ctx;
} zllm_pack_options;

#define ZLLM_PACK_OPTIONS_INIT {NULL, 0, ZLLM_PROFILE_ZLLM, NULL, NULL, NULL, NULL}

typedef struct {
  uint64_t repos, repos_skipped, files, bytes_in, bytes_stored;
  uint64_t file_dups, tensor_dups, tensors_bitx, tensors_solo, opaque_files, problems;
} zllm_pack_stats;

/* 1 when the archive holds `repo` (what zllm_bases_options.archived asks). */
int zllm_archive_has_repo(zllm_archive *a, const char *repo);
/* Records why each of n repos got its base (or none): the catalog's
 * base_reason of repos[k] becomes why[k], where none is recorded yet (a
 * caller that packed with bases whose reasons it learns after, as the
 * survey's ranks do).  One transaction; a repo not in the archive is left. */
int zllm_archive_set_base_reasons(zllm_archive *a, char *const *repos, char *const *why, size_t n);

/* Ingests every repo of the hub not yet in the archive, bases first. */
int zllm_pack_hub(zllm_archive *a, const zllm_pack_options *o, zllm_pack_stats *stats);
/* The order zllm_pack_hub ingests the hub's repos in (bases first), with
 * the same bases; nothing is written.  The caller frees *ids (zllm_strv_free). */
int zllm_pack_order(const zllm_pack_options *o, char ***ids, size_t *n);

/* Merges the repos of `nsrc` archives (packed with the same options, each a
 * share of one hub) into `dst`, repo by repo in `order` (zllm_pack_order),
 * making the decisions one process packing the whole hub would have made:
 * a file another source already stored becomes a file dup, a tensor an
 * earlier repo already stored (hash hit, then bytes compared) a tensor dup.
 * Each source's pack file is moved in (renamed; copied across file
 * systems) as one more pack of `dst`.  A source's extern repos (bases
 * another source stores, zllm_pack_options.claim) are not copied: rows that
 * point at them point at the stored repo, whose hashes must be the ones the
 * source read.  Repos already in `dst` are left alone; each repo is one
 * transaction, and a repo that cannot be merged is left out with an error
 * (only a failure of `dst` stops the merge). */
int zllm_archive_merge(zllm_archive *dst, zllm_archive *const *src, size_t nsrc, char *const *order, size_t norder);

/* The same merge over the ranks that packed the shares, COLLECTIVE over
 * `comm`: rank r's staging archive is stages[r] (closed; every rank reads
 * any of them, so they sit on a file system every rank sees), `dst` is
 * rank 0's (empty: no repo, no blob; NULL elsewhere).  Every decision
 * zllm_archive_merge makes in visiting order is made by the owner of a
 * hash or asked of the rank that packed a repo, and every row gets its
 * final id from counts summed in visiting order; each rank writes its
 * repos' rows into shard_dir/rows-<rank>.sqlite, and rank 0 copies the
 * shards in (INSERT ... SELECT) and moves each share's pack file in, so
 * the catalog holds the rows zllm_archive_merge would write.  On failure
 * *fallback is 1 on every rank when nothing was written yet (the shares
 * are as they were: merge them with zllm_archive_merge, which leaves out
 * a repo it cannot merge where this call fails as a whole), else 0. */
int zllm_archive_merge_ranks(zllm_archive *dst, char *const *stages, const char *shard_dir, char *const *order,
                             size_t norder, int *fallback, MPI_Comm comm);

/* Restore flags.  By default a directory under outdir that is a symlink is
 * not followed (an error naming it); this follows it, as tar's
 * --keep-directory-symlink does. */
#define ZLLM_RESTORE_KEEP_DIR_SYMLINKS 1

/* Writes one repo's files (or one file) under outdir/<repo>/, each checked
 * against its recorded SHA-256 before it gets its final name.  Directories
 * are opened without following symlinks, temporary files get unpredictable
 * O_EXCL|O_NOFOLLOW names.  A file that cannot be restored (a name the path
 * rule refuses, a SHA-256 mismatch) is named on stderr and the others are
 * still written; the call then fails, counting them. */
int zllm_restore_repo(zllm_archive *a, const char *repo, const char *file, const char *outdir, int flags);
int zllm_restore_all(zllm_archive *a, const char *outdir, int flags);
/* The same, files spread over `threads` threads, each with its own handle on
 * the archive in directory `dir`. */
int zllm_restore_all_threads(const char *dir, const char *outdir, int threads, int flags);

/* What each stage of a restore or verify cost, summed over its threads, in
 * seconds: the read path's profile (zllm restore --stats). */
typedef struct {
  double wall;
  double decode;   /* blocks decoded: planes, base parts, merge and XOR */
  double planes;   /* of which the entropy decode of planes and blobs */
  double merge;    /* of which merging planes (the XOR with the base fused in) */
  double put;      /* writing the files */
  double hash;     /* SHA-256, on the hash thread */
  double wait_slot, wait_hash; /* decoders waiting for a free buffer; the hash thread for a block */
  uint64_t bytes, blocks;
  int workers;
} zllm_read_stats;

typedef struct {
  const char *repo; /* NULL: every repo */
  const char *file; /* NULL: every file of the repo */
  const char *outdir;
  int threads;      /* decode threads (a hash thread runs beside them) */
  int flags;        /* ZLLM_RESTORE_* */
} zllm_restore_opts;

/* Restores the files o names from the archive in `dir`: decoded in blocks
 * by o->threads threads, the blocks of one big file spread over all of
 * them, while one more thread checks each file's SHA-256 in order; a file
 * gets its final name only when it matched.  *stats (when given) says where
 * the time went.  Failing files are named on stderr and counted, as above. */
int zllm_restore(const char *dir, const zllm_restore_opts *o, zllm_read_stats *stats);

/* The raw bytes of one tensor. */
int zllm_cat_tensor(zllm_archive *a, const char *repo, const char *tensor, FILE *out);

/* What a server lists: the repos in ingest order (revision: the commit
 * recorded at ingest, or NULL) and a repo's files by path (files skipped at
 * ingest have no bytes and are left out).  Free with the _free calls. */
typedef struct {
  int64_t id;
  char *name;
  char *revision;
} zllm_archive_repo;

typedef struct {
  int64_t id;
  char *path;
  uint64_t size;
  uint8_t sha256[32];
} zllm_archive_file;

int zllm_archive_repos(zllm_archive *a, zllm_archive_repo **out, size_t *n);
void zllm_archive_repos_free(zllm_archive_repo *v, size_t n);
/* One repo by name (ZLLM_ENOTFOUND when not held); the caller frees
 * out->name and out->revision. */
int zllm_archive_repo_find(zllm_archive *a, const char *name, zllm_archive_repo *out);
int zllm_archive_files(zllm_archive *a, const char *repo, zllm_archive_file **out, size_t *n);
void zllm_archive_files_free(zllm_archive_file *v, size_t n);

/* One file read at any offset without restoring it (pack/reader.c): only
 * the segment (header, tensor part of 32 MiB, opaque piece of 64 MiB) under
 * the offset is decoded, and kept for the next read.  Reads in order from
 * byte 0 hash the bytes as they go; the last segment is checked against the
 * recorded SHA-256 before any of it is returned, so a mismatch is an error
 * (ZLLM_EFORMAT) where the file would have ended.  A tensor decoded from
 * its first part to its last is checked against its recorded XXH3-128 key
 * the same way (a Range read covering it whole).  The archive handle is
 * borrowed and must outlive the reader; one thread at a time. */
typedef struct zllm_file_reader zllm_file_reader;

int zllm_file_reader_open(zllm_file_reader **out, zllm_archive *a, const char *repo, const char *path);
void zllm_file_reader_close(zllm_file_reader *r); /* accepts NULL */
uint64_t zllm_file_reader_size(const zllm_file_reader *r);
/* Up to n bytes at `off` into dst: how many (0 at the end), or an error. */
int64_t zllm_file_reader_read(zllm_file_reader *r, uint64_t off, void *dst, size_t n);
/* 1 once every byte was read in order and matched the SHA-256. */
int zllm_file_reader_verified(const zllm_file_reader *r);
/* The caller reads the whole file in order (a download without a Range):
 * the SHA-256, checked before the last window, proves every byte, so the
 * tensors read in order are not also checked by key (3% of a download). */
void zllm_file_reader_whole(zllm_file_reader *r);
/* The caller reads here and there (a tensor at a time, as safe_open in the
 * Python package does): a reader from the slice store decodes no slices
 * ahead of its reads, which would be decoded for nothing. */
void zllm_file_reader_random(zllm_file_reader *r);
/* The file's safetensors header, read through the reader (only the windows
 * under it are decoded) and checked by the strict reader's every rule
 * (zllm/safetensors.h), messages naming repo/path.  Free with
 * zllm_st_header_free. */
int zllm_file_reader_st_header(zllm_file_reader *r, zllm_st_header **out);

/* The slice store (pack/slices.c): readers whose bytes are decoded in
 * slices of at most 4 MiB, each once, shared by every reader in the
 * process (a second download of a file, or the fine-tunes of one base,
 * read the slices already decoded), by `threads` decode threads that work
 * ahead of each reader, within `memory` bytes: seven eighths for slices, a
 * sixteenth for parts decoded whole, the rest for the decoders' buffers.  A reader is
 * admitted only while every admitted reader's slices fit: else
 * ZLLM_ELIMIT, and nothing was taken (try again when one closes).  A reader
 * from the store is read by one thread at a time, with the handle it was
 * opened with (whose part cache becomes the store's); close the readers
 * and those handles before the store. */
typedef struct zllm_slice_store zllm_slice_store;
typedef struct {
  uint64_t decoded, decoded_bytes; /* slices decoded */
  uint64_t hits;      /* slices asked for that were already decoded */
  uint64_t waits;     /* asked for while another thread decoded them */
  uint64_t refused;   /* readers not admitted */
  size_t bytes, peak_bytes; /* decoded slices held, now and at most */
  int readers, max_readers;
  /* the stages, in thread-seconds: decoding slices (whichever thread; a
   * base's slice decoded for a fine-tune counts once), and the readers'
   * SHA-256 of the bytes they read in order (on their own threads) */
  double decode_seconds, hash_seconds;
  uint64_t hashed_bytes;
} zllm_slice_store_stats;
int zllm_slice_store_open(zllm_slice_store **out, const char *dir, size_t memory, int threads);
void zllm_slice_store_close(zllm_slice_store *s); /* accepts NULL */
int zllm_slice_store_reader(zllm_slice_store *s, zllm_archive *a, const char *repo, const char *path,
                            zllm_file_reader **out);
void zllm_slice_store_stats_get(zllm_slice_store *s, zllm_slice_store_stats *st);

/* Checks every blob's checksum and every file's SHA-256; problems are
 * printed to `report`.  Returns 0 when everything verifies. */
int zllm_archive_verify(zllm_archive *a, FILE *report);

/* Repos, files and tensors with original and stored bytes and methods. */
int zllm_archive_ls(zllm_archive *a, const char *repo, FILE *out);

/* How tensor `idx` (file order) of a repo's file is stored: method "dup",
 * "bitx", "solo", or "file-dup" when the whole file is a dup, "opaque" when
 * the file was stored as bytes; *stored its bytes in the packs (0 for dups).
 * ZLLM_ENOTFOUND when the archive has no such file. */
int zllm_archive_tensor_info(zllm_archive *a, const char *repo, const char *path, size_t idx, char method[16],
                             uint64_t *stored);

/* One repo as the catalog holds it: its files' stored bytes, and its
 * position in the order repos were ingested (0 first: the catalog numbers
 * repos as it commits them, and a merge commits in zllm_pack_order).
 * ZLLM_ENOTFOUND when the archive lacks it. */
int zllm_archive_repo_info(zllm_archive *a, const char *repo, uint64_t *stored, int64_t *position);

/* Bytes by stage, as the catalog holds them: [0] original (every file),
 * [1] after file dedup (file dups removed), [2] after tensor dedup (tensor
 * dups in the remaining files removed), [3] stored (BitX and solo coding,
 * headers and other files as stored).  The last is zllm ls's total. */
int zllm_archive_stages(zllm_archive *a, uint64_t stages[4]);
/* The same as a TSV table: stage, bytes, share of the original. */
int zllm_archive_print_stages(zllm_archive *a, FILE *out);

#endif
