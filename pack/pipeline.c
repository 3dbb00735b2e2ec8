/* The read pipeline: restore and verify decode files in blocks on worker
 * threads while one more thread hashes them, so a file costs the slower of
 * decoding and SHA-256, not their sum (one core hashes at ~1.45 GB/s with
 * the SHA extensions, about the rate rANS decodes at: in series they halve
 * each other).
 *
 * Files are opened in the given order, each by the worker that comes to
 * it; its blocks (pack/reader.c: whole windows, up to a part's bytes) are
 * claimed in file order, the earliest open file first, so every worker
 * helps with one big file and small files go one per worker.  A worker
 * takes a buffer from the ring before it claims a block, and a claim gets
 * the next sequence number: the hash thread takes blocks in that order,
 * which is each file's order, and the block it waits for always has a
 * buffer and a worker, so the ring cannot deadlock. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pack/archive_internal.h"
#include "zllm/error.h"

#define BLOCK_BYTES ZLLM_PART_BYTES
/* The hash thread hashes and writes a block in pieces this long, each
 * written while it is still in the core's cache from its hash (measured on
 * a 3.2 GB hub: the kernel's copy into the page cache ran at ~950 MB/s so,
 * ~350 MB/s from a cold 32 MiB block). */
#define HASH_PIECE ((uint64_t)256 << 10)

enum { SLOT_FREE, SLOT_BUSY, SLOT_READY };
enum { F_WAITING, F_OPENING, F_OPEN, F_TAKEN };

typedef struct {
  uint8_t *buf;
  size_t cap;
  int state;
  uint64_t seq;
  size_t file;
  uint64_t off, len;
  int last, skip; /* the file's last block; a block of a failed file, not decoded */
  int put_late;   /* an unordered put left to the hash thread, which was idle */
  int rc;
  char *err;      /* the decode's or put's message when rc < 0 */
} slot;

typedef struct {
  zllm_file_reader *r; /* NULL when the file failed before it was laid out */
  int state, failed, ended;
  char *err;           /* the first failure's message */
} pfile;

typedef struct {
  const char *dir;
  const ar_pipe_file *files;
  size_t n;
  const ar_pipe_sink *sink;
  void *ctx;
  int workers;
  pthread_mutex_t mu;
  pthread_cond_t work; /* a buffer freed or a file opened: workers look again */
  pthread_cond_t hash; /* a block decoded: the hash thread looks again */
  slot *slots;
  int nslots;
  pfile *pf;
  size_t next_file;  /* the next file to open */
  size_t first_open; /* every block of the files below it is claimed */
  uint64_t next_seq, hash_seq;
  size_t ended;
  zllm_archive *handles[256]; /* the workers': kept open until every thread is done, since a
                               * reader names its file through the handle that opened it */
  ar_cache *cache;   /* the decoded parts all workers share (a family's base decoded once), or NULL */
  int abort_rc;      /* the run cannot go on (out of memory, no handle) */
  char abort_msg[512];
  ar_pipe_stats st;
} pipe_run;

typedef struct {
  pipe_run *p;
  int id;
} worker_arg;

static void set_abort(pipe_run *p, int rc)
{
  if (p->abort_rc == 0) {
    p->abort_rc = rc;
    snprintf(p->abort_msg, sizeof p->abort_msg, "%s", zllm_error_last());
  }
  pthread_cond_broadcast(&p->work);
  pthread_cond_broadcast(&p->hash);
}

/* Keeps the first failure of file f (under the lock). */
static void fail_file(pipe_run *p, size_t f, const char *why)
{
  pfile *pf = &p->pf[f];
  if (!pf->failed) {
    pf->failed = 1;
    pf->err = strdup(why && *why ? why : "failed");
  }
}

/* Lays file f out and lets the sink ready its destination, with the
 * worker's handle, outside the lock; then (under it) the file is open. */
static void open_file(pipe_run *p, zllm_archive *h, size_t f)
{
  const ar_pipe_file *pf = &p->files[f];
  zllm_file_reader *r = NULL;
  int rc = pf->error ? zllm_error_set(ZLLM_EFORMAT, "%s", pf->error)
                     : ar_reader_open_id(&r, h, pf->id, pf->name, pf->size, pf->sha256);
  rc = rc ? rc : p->sink->begin ? p->sink->begin(p->ctx, f, h) : 0;
  pthread_mutex_lock(&p->mu);
  if (rc < 0) {
    zllm_file_reader_close(r);
    r = NULL;
    fail_file(p, f, zllm_error_last());
    if (rc == ZLLM_ENOMEM)
      set_abort(p, rc);
  }
  p->pf[f].r = r;
  p->pf[f].state = F_OPEN;
  pthread_cond_broadcast(&p->work);
}

static slot *free_slot(pipe_run *p)
{
  for (int i = 0; i < p->nslots; i++)
    if (p->slots[i].state == SLOT_FREE)
      return &p->slots[i];
  return NULL;
}

/* Under the lock: the next block for this worker, in *s (with *b), or 0
 * when no work is left.  Opening a file drops the lock for the while. */
static int claim(pipe_run *p, zllm_archive *h, double *waited, slot **out, ar_block *b)
{
  for (;;) {
    slot *s = p->abort_rc ? NULL : free_slot(p);
    size_t f = p->first_open;
    while (f < p->next_file && p->pf[f].state != F_OPEN)
      f++;
    int opening = 0;
    for (size_t g = p->first_open; g < p->next_file; g++)
      opening |= p->pf[g].state == F_OPENING;
    if (p->abort_rc || (f == p->next_file && p->next_file == p->n && !opening))
      return 0;
    if (s && f < p->next_file) {
      pfile *pf = &p->pf[f];
      /* a file that failed (at open, or a block of it) takes no more
       * blocks: one empty block carries its end */
      if (pf->failed || !ar_reader_take_block(pf->r, BLOCK_BYTES, b))
        memset(b, 0, sizeof *b);
      int last = pf->failed || b->off + b->len == p->files[f].size;
      if (last)
        pf->state = F_TAKEN;
      while (p->first_open < p->next_file && p->pf[p->first_open].state == F_TAKEN)
        p->first_open++;
      *s = (slot){s->buf, s->cap, SLOT_BUSY, p->next_seq++, f, b->off, b->len, last, pf->failed, 0, 0, NULL};
      *out = s;
      return 1;
    }
    if (s && p->next_file < p->n) {
      size_t g = p->next_file++;
      p->pf[g].state = F_OPENING;
      pthread_mutex_unlock(&p->mu);
      open_file(p, h, g); /* returns with the lock held */
      continue;
    }
    double t0 = ar_now();
    pthread_cond_wait(&p->work, &p->mu);
    *waited += ar_now() - t0;
  }
}

/* Decodes a claimed block, outside the lock. */
static int decode_block(pipe_run *p, zllm_archive *h, slot *s, const ar_block *b, double *dec)
{
  if (s->skip || s->len == 0)
    return 0;
  if (s->cap < s->len) {
    free(s->buf);
    s->cap = 0;
    if (!(s->buf = malloc(s->len > BLOCK_BYTES ? s->len : BLOCK_BYTES)))
      return zllm_error_set(ZLLM_ENOMEM, "out of memory for a %llu-byte block", (unsigned long long)s->len);
    s->cap = s->len > BLOCK_BYTES ? s->len : BLOCK_BYTES;
  }
  double t0 = ar_now();
  int rc = ar_reader_decode_block(p->pf[s->file].r, h, b, s->buf);
  *dec += ar_now() - t0;
  return rc;
}

/* Who writes a decoded block of an unordered sink: the hash thread, which
 * writes each piece right after hashing it, while it is still in the cache
 * (writing a cold 32 MiB block from another thread cost ~1.5x the kernel
 * time, and two writers of one file contend for its lock); a worker only
 * when the hash thread falls behind by two blocks.  Under the lock. */
static int put_here(pipe_run *p, const slot *s)
{
  int backlog = 0;
  for (int i = 0; i < p->nslots; i++)
    backlog += p->slots[i].state == SLOT_READY;
  return p->sink->put && !p->sink->ordered && !s->skip && s->len && backlog >= 2;
}

static void *worker_main(void *arg)
{
  worker_arg *w = arg;
  pipe_run *p = w->p;
  zllm_archive *h = NULL;
  double dec = 0, put = 0, waited = 0;
  uint64_t bytes = 0, blocks = 0;
  int rc = zllm_archive_open(&h, p->dir, 0);
  if (rc == 0)
    ar_cache_attach(h, p->cache);
  pthread_mutex_lock(&p->mu);
  p->handles[w->id] = h;
  if (rc < 0)
    set_abort(p, rc);
  slot *s = NULL;
  ar_block b;
  while (rc == 0 && claim(p, h, &waited, &s, &b)) {
    pthread_mutex_unlock(&p->mu);
    int brc = decode_block(p, h, s, &b, &dec);
    pthread_mutex_lock(&p->mu);
    if (brc == 0 && put_here(p, s)) {
      pthread_mutex_unlock(&p->mu);
      double t0 = ar_now();
      brc = p->sink->put(p->ctx, s->file, s->off, s->buf, s->len);
      put += ar_now() - t0;
      pthread_mutex_lock(&p->mu);
    } else {
      s->put_late = brc == 0 && p->sink->put && !p->sink->ordered && !s->skip && s->len;
    }
    s->rc = brc;
    s->err = brc < 0 ? strdup(zllm_error_last()) : NULL;
    if (brc < 0)
      fail_file(p, s->file, s->err);
    s->state = SLOT_READY;
    bytes += s->len;
    blocks++;
    if (brc == ZLLM_ENOMEM)
      set_abort(p, brc);
    pthread_cond_signal(&p->hash);
  }
  p->st.decode += dec;
  p->st.put += put;
  p->st.wait_slot += waited;
  p->st.bytes += bytes;
  p->st.blocks += blocks;
  if (h) {
    p->st.planes += h->t_planes;
    p->st.merge += h->t_merge;
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

static slot *ready_slot(pipe_run *p)
{
  for (int i = 0; i < p->nslots; i++)
    if (p->slots[i].state == SLOT_READY && p->slots[i].seq == p->hash_seq)
      return &p->slots[i];
  return NULL;
}

/* The file's end: proven, or the first failure (err), to the sink. */
static void end_file(pipe_run *p, size_t f, const char *err, int abort_rc)
{
  pfile *pf = &p->pf[f];
  int rc = 0;
  if (err)
    rc = zllm_error_set(ZLLM_EFORMAT, "%s", err);
  else if (abort_rc)
    rc = zllm_error_set(abort_rc, "%s: not finished: %s", p->files[f].name, p->abort_msg);
  else if (!zllm_file_reader_verified(pf->r))
    rc = zllm_error_set(ZLLM_EFORMAT, "%s: SHA-256 MISMATCH: the restored bytes are not the ingested file",
                        p->files[f].name);
  p->sink->end(p->ctx, f, rc);
  zllm_file_reader_close(pf->r);
  pf->r = NULL;
  pf->ended = 1;
}

/* Hashes block s of its file in order, outside the lock (s is the hash
 * thread's until it frees it); `failed`: the file had failed when the block
 * came.  An unordered put left to this thread goes piece by piece after
 * each piece's hash; an ordered sink gets the block after its hash, the
 * last one only once the file matched.  A failure here is the file's. */
static int hash_block(pipe_run *p, slot *s, int failed, double *hashed, double *put)
{
  pfile *pf = &p->pf[s->file];
  int rc = 0;
  for (uint64_t at = 0; !failed && rc == 0 && at < s->len; at += HASH_PIECE) {
    size_t n = s->len - at < HASH_PIECE ? (size_t)(s->len - at) : HASH_PIECE;
    double t0 = ar_now();
    rc = ar_reader_hash(pf->r, s->buf + at, n);
    double t1 = ar_now();
    *hashed += t1 - t0;
    if (rc == 0 && s->put_late) {
      rc = p->sink->put(p->ctx, s->file, s->off + at, s->buf + at, n);
      *put += ar_now() - t1;
    }
  }
  if (!failed && rc == 0 && p->sink->put && p->sink->ordered && s->len) {
    double t0 = ar_now();
    rc = p->sink->put(p->ctx, s->file, s->off, s->buf, s->len);
    *put += ar_now() - t0;
  }
  return rc;
}

/* Under the lock: block s was hashed (hrc) and its file may end. */
static void finish_block(pipe_run *p, slot *s, int hrc)
{
  pfile *pf = &p->pf[s->file];
  if (hrc < 0)
    fail_file(p, s->file, zllm_error_last());
  if (s->last) {
    /* every block of the file came before its last: its failure is final */
    int failed = pf->failed;
    char *err = failed && pf->err ? strdup(pf->err) : NULL;
    pthread_mutex_unlock(&p->mu);
    end_file(p, s->file, failed && !err ? "out of memory" : err, 0);
    free(err);
    pthread_mutex_lock(&p->mu);
    p->ended++;
  }
}

static void *hasher_main(void *arg)
{
  pipe_run *p = arg;
  double hashed = 0, waited = 0, put = 0;
  pthread_mutex_lock(&p->mu);
  while (p->ended < p->n && !p->abort_rc) {
    slot *s = ready_slot(p);
    if (!s) {
      double t0 = ar_now();
      pthread_cond_wait(&p->hash, &p->mu);
      waited += ar_now() - t0;
      continue;
    }
    int failed = p->pf[s->file].failed;
    pthread_mutex_unlock(&p->mu);
    int hrc = hash_block(p, s, failed, &hashed, &put);
    pthread_mutex_lock(&p->mu);
    finish_block(p, s, hrc);
    free(s->err);
    s->err = NULL;
    s->state = SLOT_FREE;
    p->hash_seq++;
    pthread_cond_broadcast(&p->work);
  }
  p->st.hash += hashed;
  p->st.put += put;
  p->st.wait_hash += waited;
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

/* After an abort: every file opened and not ended ends with the abort's
 * error, so its sink can take back what it made. */
static void end_unfinished(pipe_run *p)
{
  for (size_t f = 0; f < p->next_file; f++)
    if (!p->pf[f].ended && p->pf[f].state != F_WAITING)
      end_file(p, f, p->pf[f].err, p->abort_rc ? p->abort_rc : ZLLM_ERROR);
}

int ar_pipe_run(const char *dir, const ar_pipe_file *files, size_t n, int workers, const ar_pipe_sink *sink,
                void *ctx, ar_pipe_stats *stats)
{
  pipe_run p = {.dir = dir, .files = files, .n = n, .sink = sink, .ctx = ctx};
  p.workers = workers < 1 ? 1 : workers > 256 ? 256 : workers;
  p.nslots = p.workers + 2; /* each worker's block, the one being hashed, one spare (more measured slower) */
  pthread_t tids[257];
  worker_arg args[256];
  int started = 0, rc = 0;
  double t0 = ar_now();
  p.slots = calloc((size_t)p.nslots, sizeof *p.slots);
  p.pf = calloc(n ? n : 1, sizeof *p.pf);
  if (!p.slots || !p.pf)
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  rc = rc ? rc : ar_cache_from_env(&p.cache);
  pthread_mutex_init(&p.mu, NULL);
  pthread_cond_init(&p.work, NULL);
  pthread_cond_init(&p.hash, NULL);
  if (rc == 0 && pthread_create(&tids[0], NULL, hasher_main, &p) == 0)
    started = 1;
  else if (rc == 0)
    rc = zllm_error_set(ZLLM_ERROR, "cannot start the hash thread");
  for (int w = 0; rc == 0 && w < p.workers; w++) {
    args[w] = (worker_arg){&p, w};
    if (pthread_create(&tids[started], NULL, worker_main, &args[w]) != 0) {
      pthread_mutex_lock(&p.mu);
      set_abort(&p, zllm_error_set(ZLLM_ERROR, "cannot start a decode thread"));
      pthread_mutex_unlock(&p.mu);
      break;
    }
    started++;
  }
  for (int t = 0; t < started; t++)
    pthread_join(tids[t], NULL);
  if (rc == 0 && started < p.workers + 1 && !p.abort_rc)
    p.abort_rc = ZLLM_ERROR;
  if (rc == 0 && p.abort_rc) {
    end_unfinished(&p);
    rc = zllm_error_set(p.abort_rc, "%s", p.abort_msg[0] ? p.abort_msg : "the read pipeline stopped");
  }
  for (int w = 0; w < 256; w++)
    zllm_archive_close(p.handles[w]);
  ar_cache_free(p.cache);
  p.st.wall = ar_now() - t0;
  p.st.workers = p.workers;
  if (stats)
    *stats = p.st;
  for (int i = 0; p.slots && i < p.nslots; i++) {
    free(p.slots[i].buf);
    free(p.slots[i].err);
  }
  for (size_t f = 0; p.pf && f < n; f++)
    free(p.pf[f].err);
  free(p.slots);
  free(p.pf);
  pthread_cond_destroy(&p.work);
  pthread_cond_destroy(&p.hash);
  pthread_mutex_destroy(&p.mu);
  return rc;
}
