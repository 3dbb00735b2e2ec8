/* Private to pack/: the archive handle, blob I/O and tensor decoding. */
#ifndef ZLLM_PACK_ARCHIVE_INTERNAL_H
#define ZLLM_PACK_ARCHIVE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>
#include <time.h>

#include "zllm/archive.h"
#include "zllm/buf.h"
#include "zllm/codec.h"
#include "zllm/dtype.h"
#include "zllm/hash.h"

/* Archive formats this build reads; it writes ZLLM_ARCHIVE_FORMAT_NEWEST in
 * a new archive (or the one asked for) and keeps an archive's own format
 * when it adds to it, so a format-1 archive stays readable by older builds.
 *   1  tensor planes coded with zstd
 *   2  tensor planes coded with rANS (chunk codec ZLLM_CHUNK_RANS0) */
#define ZLLM_ARCHIVE_FORMAT_OLDEST 1
#define ZLLM_ARCHIVE_FORMAT_NEWEST 2
#define ZLLM_BLOB_MAGIC 0x31424c5au      /* "ZLB1" */
#define ZLLM_PART_MAGIC 0x31504c5au      /* "ZLP1": a tensor part (docs/FORMAT.md) */
#define ZLLM_PART_BYTES ((uint64_t)32 << 20) /* tensors are coded in parts of this many bytes */
#define ZLLM_PIECE_BYTES ((size_t)64 << 20) /* opaque files are stored in pieces of this size */
/* The largest blob zllm writes is a header's stream (8 + 100,000,000 bytes
 * and its chunk framing); no catalog row may claim more. */
#define ZLLM_BLOB_MAX ((uint64_t)128 << 20)
#define ZLLM_MAX_CHAIN 8                   /* BitX bases deeper than this are not used */
#define ZLLM_MAX_PACKS 4096                /* pack files one archive may name */
#define AR_EXTERN "extern"                /* method of a staging archive's rows for a base another share stores (extern.h) */

#define AR_STMT_CACHE 48 /* distinct SQL texts a handle keeps prepared */

/* Decoded parts kept for the tensors that need them again (pack/cache.c). */
typedef struct ar_cache ar_cache;
#define AR_CACHE_DEFAULT_MIB 512 /* ZLLM_PART_CACHE_MIB overrides; 0 turns it off */
int ar_cache_new(ar_cache **out, size_t budget);
void ar_cache_free(ar_cache *c); /* accepts NULL */
/* The part's bytes, pinned (never evicted) until ar_cache_release, or NULL.
 * Any thread: every call takes the cache's lock. */
const uint8_t *ar_cache_get(ar_cache *c, int64_t id, uint64_t part, size_t *len);
void ar_cache_release(ar_cache *c, int64_t id, uint64_t part);
/* Keeps a copy, evicting the least recently used that no one holds; a
 * failure only forgets. */
void ar_cache_put(ar_cache *c, int64_t id, uint64_t part, const uint8_t *bytes, size_t len);
void ar_cache_share(ar_cache *c, int ways); /* the budget split `ways` ways */
/* Gives a read-only handle a cache of ZLLM_PART_CACHE_MIB (default
 * AR_CACHE_DEFAULT_MIB) split `ways` ways; 0 MiB: none. */
int ar_cache_enable(zllm_archive *a, int ways);
/* A cache of ZLLM_PART_CACHE_MIB (default AR_CACHE_DEFAULT_MIB), or NULL
 * for 0; an unreadable value is an error naming it. */
int ar_cache_from_env(ar_cache **out);
/* Makes `shared` the handle's cache (its own, if any, is freed): several
 * handles decoding on several threads then decode a base part once.  The
 * handle does not free it. */
void ar_cache_attach(zllm_archive *a, ar_cache *shared);
void ar_cache_stats(ar_cache *c, uint64_t *hits, uint64_t *misses);

struct zllm_archive {
  char *dir;
  sqlite3 *db;
  int format;              /* the catalog's, ZLLM_ARCHIVE_FORMAT_OLDEST..NEWEST */
  ar_cache *cache;         /* read-only handles: parts decoded for another tensor (or NULL) */
  int cache_borrowed;      /* cache is shared (ar_cache_attach): not this handle's to free */
  int writer;              /* opened to write (create) */
  struct {                 /* prepared statements kept between uses (ar_prepare / ar_finalize) */
    sqlite3_stmt *st;
    int busy;
  } stmts[AR_STMT_CACHE];
  int nstmts;
  int pack_fd;
  int64_t pack_id;
  uint64_t pack_len;       /* bytes written, committed or not */
  uint64_t committed_len;  /* bytes the catalog knows about */
  zllm_codec *codec;
  int hash_bits;           /* tests force collisions with ZLLM_TEST_HASH_BITS */
  int broken;              /* set when the archive itself failed (write, SQL), not the input */
  uint8_t *pool[32];       /* free part-sized buffers: reused, so no 32 MiB mmap per tensor */
  int npool;
  int pool_max;            /* how many it keeps (0: all 32; a slice store's handles keep few) */
  zllm_buf enc, blob;      /* reused encode output and blob read buffers (a slice's chunks too) */
  zllm_buf cast;           /* a slice's base cast to its fine-tune's dtype */
  int threads;             /* planes of a part are coded by this many threads */
  int keep_written;        /* keep committed pack bytes in the page cache (a staging archive read next) */
  int defer_sync;          /* commits not synced one by one (zllm_archive_defer_sync) */
  uint64_t dropped_to;     /* pack bytes below this (whole pages) have left the page cache */
  zllm_codec *pcodec[ZLLM_BITX_MAX_PLANES]; /* one per plane, for threaded coding */
  zllm_buf pbuf[ZLLM_BITX_MAX_PLANES];
  struct {                 /* other pack files the catalog names, opened for reading on first use */
    int64_t id;
    int fd;
    uint64_t len;          /* their committed length: nothing past it is trusted */
  } other[ZLLM_MAX_PACKS];
  int nother;
  /* An extern tensor (pack/extern.h) has no bytes here: a merge reading a
   * staging archive decodes it from where it is stored; anyone else gets an
   * error. */
  int (*extern_part)(void *ctx, int64_t id, uint64_t part, uint8_t *dst, int depth);
  void *extern_ctx;
  double t_planes, t_merge; /* seconds this handle spent decoding planes and blobs, and merging planes */
  /* A slice store's handle: a BitX slice's base bytes are the store's slice
   * of the base (decoded once for every fine-tune), not a whole base part. */
  const struct ar_window_source *base_src;
  void *base_ctx;
};

/* Fault injection for tests: is ZLLM_TEST_KILL_AT this point? */
int ar_test_kill_at(const char *point);

/* Seconds on a monotonic clock: what the read path's stage timings add up. */
static inline double ar_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A buffer of ZLLM_PART_BYTES from the pool (NULL on out-of-memory, with a
 * message); give it back with ar_buf_put (accepts NULL). */
uint8_t *ar_buf_get(zllm_archive *a);
void ar_buf_put(zllm_archive *a, uint8_t *b);

/* SQL helpers: 0 or ZLLM_ERROR with SQLite's message. */
int ar_exec(zllm_archive *a, const char *sql);
/* Drops (on 0) or builds (on 1) the catalog's secondary indexes (files by
 * key, tensors by key and by file): a bulk copy into an empty catalog
 * builds each once at the end, one sort instead of an insert per row. */
int ar_secondary_indexes(zllm_archive *a, int on);
/* A statement for `sql`: one kept from an earlier use of the same text
 * (reset, bindings cleared) when there is one not in use, else a new one.
 * Give it back with ar_finalize, never sqlite3_finalize: parsing the same
 * statements again for every tensor was a third of packing many small
 * tensors. */
int ar_prepare(zllm_archive *a, sqlite3_stmt **st, const char *sql);
/* Keeps a statement from ar_prepare for the next use (or finalizes one that
 * is not kept); accepts NULL. */
void ar_finalize(zllm_archive *a, sqlite3_stmt *st);
int ar_sql_error(zllm_archive *a, const char *what);
/* Steps a statement that returns no rows, then finalizes it (an error names `what`). */
int ar_step_done(zllm_archive *a, sqlite3_stmt *st, const char *what);

/* Checked column reads: a catalog may come from elsewhere, so a NULL or a
 * value of another type where the schema promises one is ZLLM_EFORMAT
 * naming the column, never a crash or a silent default.  Strings and blobs
 * are borrowed until the next step of `st`. */
int ar_col_int(zllm_archive *a, sqlite3_stmt *st, int col, int64_t *v);
int ar_col_int_or_null(zllm_archive *a, sqlite3_stmt *st, int col, int64_t *v); /* NULL -> 0 */
int ar_col_text(zllm_archive *a, sqlite3_stmt *st, int col, const char **v);
int ar_col_text_or_null(zllm_archive *a, sqlite3_stmt *st, int col, const char **v); /* NULL -> NULL */
/* A blob of exactly `len` bytes (len 0: any length, *n set when n given). */
int ar_col_blob(zllm_archive *a, sqlite3_stmt *st, int col, size_t len, const void **v);

int ar_begin(zllm_archive *a);
int ar_commit(zllm_archive *a);   /* syncs the pack, then commits the catalog */
void ar_rollback(zllm_archive *a); /* and cuts the pack back to the committed end */

/* Appends a blob record; *id is its catalog row. */
int ar_blob_write(zllm_archive *a, const void *data, size_t len, int64_t *id);
/* Reads and checks a blob (caller frees *data). */
int ar_blob_read(zllm_archive *a, int64_t id, uint8_t **data, size_t *len);
/* Codes `len` bytes as a stream container blob (skip_noise: see zllm/codec.h). */
int ar_stream_write(zllm_archive *a, const uint8_t *src, size_t len, int level, int skip_noise, int64_t *id,
                    uint64_t *stored);
/* A tensor part: the stream containers of its `np` planes in one blob.
 * `coder` codes the planes; an archive of format 1 gets zstd whatever it
 * says, so it stays readable by the builds that wrote it. */
int ar_part_write(zllm_archive *a, uint8_t *const *planes, int np, size_t plane_len, int level, int skip_noise,
                  zllm_stream_coder coder, int64_t *id, uint64_t *stored);
int ar_part_read(zllm_archive *a, int64_t id, int np, size_t plane_len, uint8_t *const *planes);
/* A blob read by range (serve's slices): where it is in its pack, found and
 * its record checked by ar_blob_open; ar_blob_pread reads n bytes at off
 * (within the blob).  The descriptor is the handle's: valid while it is open. */
typedef struct {
  int64_t id;
  int fd;
  uint64_t off, len;
} ar_blob_ref;
int ar_blob_open(zllm_archive *a, int64_t id, ar_blob_ref *ref);
int ar_blob_pread(zllm_archive *a, const ar_blob_ref *ref, uint64_t off, uint64_t n, uint8_t *dst);
/* The planes of a part blob (magic, plane count, each plane's container
 * length, the containers): *np, and each plane's offset and length (room
 * for ZLLM_BITX_MAX_PLANES).  NULL when it holds together, else what is
 * wrong (*bad: the plane at fault, or -1). */
const char *ar_part_layout(const uint8_t *b, size_t n, int *np, size_t *offs, size_t *lens, int *bad);
/* Decodes a stream container blob into dst (exactly dst_len bytes). */
int ar_stream_read(zllm_archive *a, int64_t id, uint8_t *dst, size_t dst_len);

/* The dedup key of a hash: its first 16 bytes, or only hash_bits of them
 * when a test forces collisions. */
void ar_hash_key(const zllm_archive *a, const uint8_t *hash, uint8_t key[16]);

/* How a tensor's bytes become planes: the dtype's fields (zllm), 16-bit
 * words split as BF16 whatever the dtype (ZipLLM's code), or one plane. */
typedef enum { AR_LAYOUT_FIELD, AR_LAYOUT_U16, AR_LAYOUT_BYTES } ar_layout;

const char *ar_layout_name(ar_layout l);
int ar_layout_parse(const char *name, ar_layout *l);
/* The dtype the planes are cut by: the tensor's own for FIELD, BF16 for U16
 * (U8 when the length is odd), U8 for BYTES. */
zllm_dtype ar_view_dtype(zllm_dtype dt, ar_layout l, uint64_t len);

static inline uint64_t ar_nparts(uint64_t len)
{
  return len ? (len + ZLLM_PART_BYTES - 1) / ZLLM_PART_BYTES : 1;
}

static inline size_t ar_part_len(uint64_t len, uint64_t part)
{
  uint64_t first = part * ZLLM_PART_BYTES;
  return first >= len ? 0 : (size_t)(len - first < ZLLM_PART_BYTES ? len - first : ZLLM_PART_BYTES);
}

typedef struct {
  int64_t id;
  zllm_dtype dtype;
  uint64_t nelem;
  uint64_t len;
  ar_layout layout;
  char method[8]; /* "dup", "bitx", "solo" */
  int64_t dup_of, base;
  int depth;
} ar_tensor;

int ar_tensor_get(zllm_archive *a, int64_t id, ar_tensor *t);
/* The dup and base hops below tensor `id`, walked from the catalog alone
 * (a cycle or a chain past the limit is refused); *first: its own row. */
int ar_tensor_chain(zllm_archive *a, int64_t id, ar_tensor *first);
/* The blob of part `part` of tensor `id`. */
int ar_part_blob(zllm_archive *a, int64_t id, uint64_t part, int64_t *blob);
/* Slices (pack/slice.c): bytes [lo, lo + n) of part `part` of tensor `id`,
 * or of the header or piece blob `blob` (of raw_len bytes), decoded alone
 * from the chunks that hold them when chunks cut them (else from the whole
 * part, kept in the part cache).  Only what the reader hands out is
 * decoded, and only the base's part is held whole (in the cache). */
int ar_tensor_decode_slice(zllm_archive *a, int64_t id, uint64_t part, uint64_t lo, size_t n, uint8_t *dst);
int ar_blob_decode_slice(zllm_archive *a, int64_t blob, uint64_t raw_len, uint64_t lo, size_t n, uint8_t *dst);

/* The file reader (pack/reader.c) for a file whose catalog row the caller
 * already read (restore, verify): `name` names it in messages.  It reads
 * the whole file, which the SHA-256 proves, so tensors are not also
 * checked by key (a forced-collision test archive keeps cut keys). */
int ar_reader_open_id(zllm_file_reader **out, zllm_archive *a, int64_t id, const char *name, uint64_t size,
                      const uint8_t sha256[32]);

/* A window of a file as a reader sees it: part `part` of tensor `id` (or
 * the header or piece blob `id`, of seg_len bytes), bytes [lo, lo + len) of
 * it; file_off: where they are in the file. */
typedef struct {
  int blob;
  int64_t id;
  uint64_t part, lo, seg_len;
  size_t len;
  uint64_t file_off;
} ar_window;
/* Decodes a window (a slice when it is one) with handle a. */
int ar_window_decode(zllm_archive *a, const ar_window *w, uint8_t *dst);

/* Where a reader's windows can come from instead of its own decode (the
 * slice store, pack/slices.c): get holds a window's bytes until put (it may
 * wait for another thread decoding the same; h: the reader's handle, for a
 * decode on its own thread); ahead says a window will be wanted soon;
 * done: the reader closes (with what its SHA-256 took). */
typedef struct ar_window_source {
  int (*get)(void *ctx, zllm_archive *h, const ar_window *w, const uint8_t **bytes);
  void (*put)(void *ctx, const ar_window *w);
  void (*ahead)(void *ctx, const ar_window *w);
  void (*done)(void *ctx, double hash_seconds, uint64_t hashed); /* the reader's SHA-256 work */
} ar_window_source;
#define AR_READER_AHEAD 3 /* windows hinted past the one being read */
#define ZLLM_SLICE_BYTES ((size_t)4 << 20) /* a slice store's windows */
/* Windows of at most `slice` bytes from src from now on (not for the pipeline's blocks). */
void ar_reader_use_source(zllm_file_reader *r, uint64_t slice, const ar_window_source *src, void *ctx);

/* A block: a run of whole windows (a tensor part, a header, a piece) that
 * are consecutive in the file, what the read pipeline decodes at once. */
typedef struct {
  uint64_t off, len; /* its bytes in the file */
  size_t seg;        /* its first window: segment */
  uint64_t part;     /* and part */
  size_t nwin;       /* how many windows */
} ar_block;
/* The next block of the file, in order, of at most `cap` bytes (a window
 * larger than cap is a block alone): 1 and *b, or 0 when all are taken.
 * An empty file has one empty block, so its end is seen like any other. */
int ar_reader_take_block(zllm_file_reader *r, uint64_t cap, ar_block *b);
/* Decodes block b into dst (b->len bytes) with handle a, which may be
 * another thread's: only the reader's layout is read. */
int ar_reader_decode_block(const zllm_file_reader *r, zllm_archive *a, const ar_block *b, uint8_t *dst);
/* The next n bytes of the file, in order, into its SHA-256; after the last
 * one the digest is compared with the recorded one (ZLLM_EFORMAT naming the
 * file when it differs; zllm_file_reader_verified says it matched). */
int ar_reader_hash(zllm_file_reader *r, const uint8_t *p, size_t n);

/* The read pipeline (pack/pipeline.c): files cut into blocks, decoded by
 * `workers` threads (each with its own read-only handle) into a ring of
 * buffers, while one more thread hashes the blocks of each file in order.
 * A restore is then bound by the slower of decoding (with writing) and
 * hashing, not their sum. */
typedef struct {
  int64_t id;            /* the file's catalog row */
  const char *name;      /* repo/path, for messages */
  uint64_t size;
  const uint8_t *sha256; /* recorded at ingest */
  const char *error;     /* the row itself is bad: the file fails with this (or NULL) */
} ar_pipe_file;

typedef struct {
  /* Before the file's first block is decoded, on the worker that opened
   * it (h: that worker's handle): make the destination ready.  < 0 fails
   * the file (its end still comes). */
  int (*begin)(void *ctx, size_t file, zllm_archive *h);
  /* A decoded block, or a piece of one.  Unordered: any order, by the hash
   * thread piece by piece right after hashing each (still in the cache), or
   * by the worker that decoded it when the hash thread falls behind; the
   * file's end comes after all of them (restore writes at the offset; a
   * mismatch then removes the file).  Ordered: on the
   * hash thread, in file order, after it is hashed, and the file's last
   * block only once the whole file matched its SHA-256 (a stream then never
   * sends a wrong file with a clean end).  NULL: none (verify). */
  int (*put)(void *ctx, size_t file, uint64_t off, const uint8_t *p, size_t n);
  /* The file's end, on the hash thread: rc 0 when every byte was decoded,
   * put and matched the recorded SHA-256, else the failure (its message in
   * zllm_error_last()). */
  void (*end)(void *ctx, size_t file, int rc);
  int ordered;
} ar_pipe_sink;

typedef zllm_read_stats ar_pipe_stats;

/* Runs files [0, n) of the archive in `dir` through the pipeline; 0 when
 * it ran (files that failed are reported through sink->end), < 0 when the
 * run itself could not go on (out of memory, the archive would not open). */
int ar_pipe_run(const char *dir, const ar_pipe_file *files, size_t n, int workers, const ar_pipe_sink *sink,
                void *ctx, ar_pipe_stats *stats);

/* Catalog rows (pack/rows.c), the one way ingest and merge write them.
 * Ids of 0 and NULL strings are stored as SQL NULL. */
typedef struct {
  int64_t repo;
  const char *path;
  uint64_t size;
  const uint8_t *sha256; /* 32 bytes */
  const uint8_t *key;    /* 16 bytes */
  const char *method;    /* "safetensors", "opaque", "dup", "skipped" */
  int64_t dup_of, header_blob;
  uint64_t stored;
  const char *note;
} ar_file_row;

typedef struct {
  int64_t file, idx;
  const char *name, *dtype, *shape;
  uint64_t nelem, len;
  const uint8_t *key;    /* 16 bytes */
  const char *method;    /* "dup", "bitx", "solo" */
  const char *layout;    /* ar_layout_name */
  int64_t dup_of, base, depth;
  uint64_t stored;
  const char *note;
} ar_tensor_row;

int ar_insert_repo(zllm_archive *a, const char *name, const char *revision, const char *base, const char *why,
                   int64_t *id);
int ar_insert_file(zllm_archive *a, const ar_file_row *r, int64_t *id);
int ar_insert_tensor(zllm_archive *a, const ar_tensor_row *r, int64_t *id);
int ar_insert_part(zllm_archive *a, int64_t tensor, uint64_t part, int64_t blob);
int ar_insert_piece(zllm_archive *a, int64_t file, uint64_t seq, uint64_t len, int64_t blob);

/* Duplicate lookups, the one rule for ingest and merge.  A failed lookup
 * is an error, never "no duplicate".
 * A file: the first earlier row (not skipped, not `self`) with this key
 * whose SHA-256 is `sha` (a key collision is never merged); *dup is the row
 * that holds the bytes, or 0. */
int ar_find_file_dup(zllm_archive *a, const uint8_t key[16], const uint8_t sha[32], int64_t self, int64_t *dup);
/* A tensor: rows holding bytes with this key, length and dtype, each
 * confirmed by `same` (the caller compares the bytes); *dup is the first
 * confirmed (with its chain depth), or 0. */
typedef int (*ar_same_fn)(void *ctx, int64_t cand, int *same);
int ar_find_tensor_dup(zllm_archive *a, const uint8_t key[16], uint64_t len, const char *dtype, ar_same_fn same,
                       void *ctx, int64_t *dup, int64_t *depth);
/* Shared by the two merges (merge.c, merge_ranks.c).  A repo's row in a
 * staging archive, not an extern one (a copy of a base another share
 * stores), or 0. */
int64_t ar_merge_repo_row(zllm_archive *a, const char *name);
/* The largest id of `table` (0 when empty); nothing is done when *rc is
 * already an error, and a failure is left in *rc. */
int64_t ar_merge_max_id(zllm_archive *a, const char *table, int *rc);
/* A share's pack file under its new name in the destination's packs/ (dir):
 * renamed (the staging archives sit beside it) and the directory synced,
 * copied only across file systems. */
int ar_merge_move_pack(const char *from, const char *to, const char *dir);
/* The row for what an extern row `sid` of staging archive `a` names (a
 * tensor, or a file when `tensor` is 0: repo, path, tensor index) in the
 * archive pick(ctx, repo) gives (the destination, or the share that stored
 * the repo), a file dup's tensors being its original's; *out 0 when `sid`
 * is not an extern row.  Its hashes must be the ones the share read, or
 * the bytes it packed against are not the bytes stored (ZLLM_ECHANGED). */
typedef int (*ar_merge_pick)(void *ctx, const char *repo, zllm_archive **out);
int ar_merge_extern_row(zllm_archive *a, int64_t sid, int tensor, ar_merge_pick pick, void *ctx,
                        zllm_archive **where, int64_t *out);
/* Decodes bytes [part * ZLLM_PART_BYTES, ...) of a tensor into dst. */
int ar_tensor_decode_part(zllm_archive *a, int64_t id, uint64_t part, uint8_t *dst, int depth);

/* Casts (zllm_dtype_castable): a base stored in another float dtype predicts
 * a tensor through the cast training code would do; the XOR then holds only
 * what the cast does not explain.  Elements [first, first + n) of tensor
 * `base`, converted to dtype `to`. */
int ar_base_as(zllm_archive *a, const ar_tensor *base, zllm_dtype to, uint64_t first, size_t n, uint8_t *dst,
               int depth);

#endif
