/* The slice store (zllm/archive.h, zllm_slice_store_*): decoded slices of
 * files shared by every reader in a process, in a memory budget.
 *
 * `zllm serve` used to give each download its own reader decoding whole
 * 32 MiB parts on its connection's thread (16 downloads held 1.5 GB).
 * Readers from the store instead ask it for slices of at most
 * ZLLM_SLICE_BYTES (pack/slice.c decodes one alone):
 *  - a slice is decoded once, whoever asks: a second reader of the same
 *    file, or a fine-tune's slice needing its base's same bytes, waits for
 *    the decode in flight and shares the result (one decode, many readers);
 *  - a reader holds the slice it is reading and the AR_READER_AHEAD after
 *    it, which `threads` decode threads decode meanwhile, so a download is
 *    bound by the slower of decoding and sending, not their sum; the reader
 *    that needs a slice first decodes it itself rather than wait;
 *  - slices no reader holds stay within the budget: those read by a
 *    download go first, a base's (read again by each fine-tune) last, least
 *    recently used first within each; a reader is admitted only while
 *    every admitted reader's slices fit (ZLLM_ELIMIT otherwise: serve
 *    answers 503 and Retry-After).
 * Each decode thread has its own read-only handle; the handles share one
 * part cache (a sixteenth of the memory) for whatever is decoded whole. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "pack/archive_internal.h"
#include "zllm/error.h"

enum { E_QUEUED, E_DECODING, E_READY, E_FAILED };
static __thread int nested; /* decodes in progress on this thread */
#define SPARES 16

typedef struct sentry {
  ar_window w;       /* its key: blob, id, part, lo, len (and what to decode) */
  uint8_t *bytes;
  int state;
  int pins;          /* readers (and decodes of fine-tunes) holding it */
  uint64_t used;
  char *err;
  struct sentry *next, *prev; /* the entries; the queue */
  struct sentry *qnext;
  int queued;
  int base;          /* a fine-tune's decode asked for it: kept before the others */
} sentry;

struct zllm_slice_store {
  char *dir;
  pthread_mutex_t mu;
  pthread_cond_t done; /* a decode finished */
  pthread_cond_t work; /* a slice queued, or stop */
  sentry *head;        /* every entry */
  sentry *qhead, *qtail;
  size_t bytes, budget, peak;
  int readers, max_readers;
  uint64_t clock;
  int stop, nthreads;
  pthread_t tids[64];
  zllm_archive *handles[64];
  ar_cache *parts;
  /* freed slices' buffers, for the next decodes: a fresh 4 MiB buffer is a
   * mapping whose every page faults and is zeroed (5% of a download) */
  uint8_t *spare[SPARES];
  int nspare;
  zllm_slice_store_stats st;
};

/* One reader's hold on the store: the slices it hinted (pinned for it). */
typedef struct {
  zllm_slice_store *s;
  ar_window ahead[AR_READER_AHEAD + 1];
  int nahead;
} ticket;

static int same(const ar_window *x, const ar_window *y)
{
  /* the length too: a cast base's slice is a half or a quarter of a reader's */
  return x->blob == y->blob && x->id == y->id && x->part == y->part && x->lo == y->lo && x->len == y->len;
}

static sentry *find(zllm_slice_store *s, const ar_window *w)
{
  for (sentry *e = s->head; e; e = e->next)
    if (same(&e->w, w))
      return e;
  return NULL;
}

/* Slices of 1 MiB or more are mappings of their own: malloc would carve
 * them from per-thread arenas (its mmap threshold rises after the first
 * frees), where freed slices stay in the process (500 MB of arenas for a
 * 384 MiB budget, measured); below that, malloc. */
#define MAP_MIN ((size_t)1 << 20)

/* What a slice of len bytes takes: a mapping of a whole slice's size from
 * 1 MiB up (so any of them can take any other's buffer), else its bytes. */
static size_t slice_cap(size_t len)
{
  return len < MAP_MIN ? len : ZLLM_SLICE_BYTES;
}

static uint8_t *slice_alloc(size_t len)
{
  if (len < MAP_MIN)
    return malloc(len ? len : 1);
  void *p = mmap(NULL, ZLLM_SLICE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

static void slice_free(uint8_t *p, size_t len)
{
  if (p && len < MAP_MIN)
    free(p);
  else if (p)
    munmap(p, ZLLM_SLICE_BYTES);
}

/* `bytes` counts the slices held and the spare buffers: a spare is a
 * whole slice's buffer kept for the next decode, so the store reuses its
 * mappings instead of faulting fresh pages in for every slice. */
static void unlink_entry(zllm_slice_store *s, sentry *e)
{
  if (e->prev)
    e->prev->next = e->next;
  else
    s->head = e->next;
  if (e->next)
    e->next->prev = e->prev;
  if (e->bytes && slice_cap(e->w.len) == ZLLM_SLICE_BYTES && s->nspare < SPARES) {
    s->spare[s->nspare++] = e->bytes; /* still counted */
  } else if (e->bytes) {
    s->bytes -= slice_cap(e->w.len);
    slice_free(e->bytes, e->w.len);
  }
  free(e->err);
  free(e);
}

/* The least recently used slice no one holds: a slice a download has read
 * (rarely read again) before a base's (read again by each fine-tune). */
static sentry *victim_of(zllm_slice_store *s)
{
  sentry *victim = NULL;
  for (sentry *e = s->head; e; e = e->next)
    if (!e->pins && (e->state == E_READY || e->state == E_FAILED) &&
        (!victim || e->base < victim->base || (e->base == victim->base && e->used < victim->used)))
      victim = e;
  return victim;
}

/* A buffer for a decode of len bytes, counted in `bytes`: from 1 MiB up,
 * a spare (one made by evicting when the budget is full); else room made
 * by evicting (over the budget only for what readers hold: admission
 * bounds that). */
static uint8_t *take_buffer(zllm_slice_store *s, size_t len)
{
  sentry *v = NULL; /* (set before use; GCC at -O1 cannot tell) */
  size_t cap = slice_cap(len);
  if (cap == ZLLM_SLICE_BYTES) {
    while (!s->nspare && s->bytes + cap > s->budget && (v = victim_of(s)))
      unlink_entry(s, v);
    if (s->nspare)
      return s->spare[--s->nspare];
  } else {
    while (s->bytes + cap > s->budget && (s->nspare || (v = victim_of(s)))) {
      if (s->nspare) {
        s->bytes -= ZLLM_SLICE_BYTES;
        slice_free(s->spare[--s->nspare], ZLLM_SLICE_BYTES);
      } else {
        unlink_entry(s, v);
      }
    }
  }
  s->bytes += cap;
  return NULL; /* the caller allocates it, outside the lock */
}

static sentry *new_entry(zllm_slice_store *s, const ar_window *w)
{
  sentry *e = calloc(1, sizeof *e);
  if (!e)
    return NULL;
  e->w = *w;
  e->used = ++s->clock;
  e->next = s->head;
  if (s->head)
    s->head->prev = e;
  s->head = e;
  return e;
}

static void enqueue(zllm_slice_store *s, sentry *e)
{
  e->queued = 1;
  e->qnext = NULL;
  if (s->qtail)
    s->qtail->qnext = e;
  else
    s->qhead = e;
  s->qtail = e;
  pthread_cond_signal(&s->work);
}

/* Takes e off the queue (the reader that needs it decodes it itself). */
static void dequeue(zllm_slice_store *s, sentry *e)
{
  sentry **p = &s->qhead, *last = NULL;
  while (*p && *p != e) {
    last = *p;
    p = &(*p)->qnext;
  }
  if (*p)
    *p = e->qnext;
  if (s->qtail == e)
    s->qtail = last;
  e->queued = 0;
}

/* Decodes e outside the lock with handle h; under it again, e is ready or failed. */
static void decode_entry(zllm_slice_store *s, sentry *e, zllm_archive *h)
{
  e->state = E_DECODING;
  size_t len = e->w.len;
  uint8_t *b = take_buffer(s, len);
  s->peak = s->bytes > s->peak ? s->bytes : s->peak;
  pthread_mutex_unlock(&s->mu);
  if (!b)
    b = slice_alloc(len);
  double t0 = ar_now();
  nested++; /* a base's slice decoded inside a fine-tune's is in the outer time */
  int rc = b ? ar_window_decode(h, &e->w, b) : zllm_error_set(ZLLM_ENOMEM, "out of memory for a slice");
  nested--;
  double took = ar_now() - t0;
  char *err = rc < 0 ? strdup(zllm_error_last()) : NULL;
  pthread_mutex_lock(&s->mu);
  s->st.decode_seconds += nested ? 0 : took;
  s->st.decoded++;
  s->st.decoded_bytes += rc == 0 ? e->w.len : 0;
  if (rc < 0) {
    if (b && slice_cap(len) == ZLLM_SLICE_BYTES && s->nspare < SPARES) {
      s->spare[s->nspare++] = b;
    } else {
      slice_free(b, len);
      s->bytes -= slice_cap(len);
    }
    b = NULL;
    e->err = err ? err : strdup("out of memory");
  }
  e->bytes = b;
  e->state = rc == 0 ? E_READY : E_FAILED;
  pthread_cond_broadcast(&s->done);
}

static void unpin(zllm_slice_store *s, sentry *e)
{
  if (--e->pins == 0 && e->state == E_FAILED) /* the next reader tries again */
    unlink_entry(s, e);
}

/* Under the lock: the window's entry pinned and ready, decoded here (h)
 * when no one has started it; 0, or the decode's error. */
static int get_locked(zllm_slice_store *s, zllm_archive *h, const ar_window *w, int pinned_ahead, sentry **out)
{
  sentry *e = find(s, w);
  if (!e && !(e = new_entry(s, w)))
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (!pinned_ahead)
    e->pins++;
  e->used = ++s->clock;
  if (e->state == E_READY)
    s->st.hits++;
  if (e->state == E_QUEUED) {
    if (e->queued)
      dequeue(s, e);
    decode_entry(s, e, h);
  } else if (e->state == E_DECODING) {
    s->st.waits++;
    while (e->state == E_DECODING)
      pthread_cond_wait(&s->done, &s->mu);
  }
  if (e->state == E_FAILED) {
    int rc = zllm_error_set(ZLLM_EFORMAT, "%s", e->err ? e->err : "decode failed");
    unpin(s, e);
    return rc;
  }
  *out = e;
  return 0;
}

static int take_ahead(ticket *t, const ar_window *w)
{
  for (int i = 0; i < t->nahead; i++)
    if (same(&t->ahead[i], w)) {
      t->ahead[i] = t->ahead[--t->nahead];
      return 1;
    }
  return 0;
}

static int src_get(void *ctx, zllm_archive *h, const ar_window *w, const uint8_t **bytes)
{
  ticket *t = ctx;
  zllm_slice_store *s = t->s;
  sentry *e = NULL;
  pthread_mutex_lock(&s->mu);
  int rc = get_locked(s, h, w, take_ahead(t, w), &e);
  if (rc == 0)
    *bytes = e->bytes;
  pthread_mutex_unlock(&s->mu);
  return rc;
}

static void src_put(void *ctx, const ar_window *w)
{
  ticket *t = ctx;
  zllm_slice_store *s = t->s;
  pthread_mutex_lock(&s->mu);
  sentry *e = find(s, w);
  if (e)
    unpin(s, e);
  pthread_mutex_unlock(&s->mu);
}

/* A hinted slice is pinned for the reader and queued for a decode thread
 * (admission bounds what readers hold). */
static void src_ahead(void *ctx, const ar_window *w)
{
  ticket *t = ctx;
  zllm_slice_store *s = t->s;
  pthread_mutex_lock(&s->mu);
  int held = 0;
  for (int i = 0; i < t->nahead; i++)
    held |= same(&t->ahead[i], w);
  sentry *e = held || t->nahead > AR_READER_AHEAD ? NULL : find(s, w);
  if (!held && t->nahead <= AR_READER_AHEAD && (e || (e = new_entry(s, w)))) {
    e->pins++;
    t->ahead[t->nahead++] = *w;
    if (e->state == E_QUEUED && !e->queued)
      enqueue(s, e);
  }
  pthread_mutex_unlock(&s->mu);
}

/* The reader closes: what it hinted and never read is let go (a cancelled
 * download leaves nothing pinned). */
static void src_done(void *ctx, double hash_seconds, uint64_t hashed)
{
  ticket *t = ctx;
  zllm_slice_store *s = t->s;
  pthread_mutex_lock(&s->mu);
  s->st.hash_seconds += hash_seconds;
  s->st.hashed_bytes += hashed;
  for (int i = 0; i < t->nahead; i++) {
    sentry *e = find(s, &t->ahead[i]);
    if (e && e->state == E_QUEUED && e->pins == 1 && e->queued) {
      dequeue(s, e); /* no one else wants it: not decoded at all */
      e->pins = 0;
      unlink_entry(s, e);
    } else if (e) {
      unpin(s, e);
    }
  }
  s->readers--;
  pthread_mutex_unlock(&s->mu);
  free(t);
}

static const ar_window_source store_source = {src_get, src_put, src_ahead, src_done};

/* A BitX slice's base bytes, asked for by the decode of the fine-tune's
 * slice (on whichever thread): the store's slice of the base. */
static int base_get(void *ctx, zllm_archive *h, const ar_window *w, const uint8_t **bytes)
{
  zllm_slice_store *s = ctx;
  sentry *e = NULL;
  pthread_mutex_lock(&s->mu);
  int rc = get_locked(s, h, w, 0, &e);
  if (rc == 0) {
    *bytes = e->bytes;
    e->base = 1;
  }
  pthread_mutex_unlock(&s->mu);
  return rc;
}

static void base_put(void *ctx, const ar_window *w)
{
  zllm_slice_store *s = ctx;
  pthread_mutex_lock(&s->mu);
  sentry *e = find(s, w);
  if (e)
    unpin(s, e);
  pthread_mutex_unlock(&s->mu);
}

static const ar_window_source base_source = {base_get, base_put, NULL, NULL};

/* Handle h decodes for the store: its part cache and its bases are the store's. */
static void adopt_handle(zllm_slice_store *s, zllm_archive *h)
{
  if (h->cache != s->parts)
    ar_cache_attach(h, s->parts);
  h->base_src = &base_source;
  h->base_ctx = s;
  h->pool_max = 1; /* a part decoded whole (rare here) does not leave 32 MiB buffers behind */
}

typedef struct {
  zllm_slice_store *s;
  int id;
} thread_arg;

static void *decoder_main(void *arg)
{
  thread_arg *ta = arg;
  zllm_slice_store *s = ta->s;
  zllm_archive *h = s->handles[ta->id];
  pthread_mutex_lock(&s->mu);
  for (;;) {
    while (!s->stop && !s->qhead)
      pthread_cond_wait(&s->work, &s->mu);
    if (s->stop)
      break;
    sentry *e = s->qhead;
    dequeue(s, e);
    e->pins++; /* held while it decodes, so a cancelled reader cannot free it */
    decode_entry(s, e, h);
    unpin(s, e);
  }
  pthread_mutex_unlock(&s->mu);
  free(ta);
  return NULL;
}

void zllm_slice_store_close(zllm_slice_store *s)
{
  if (!s)
    return;
  pthread_mutex_lock(&s->mu);
  s->stop = 1;
  pthread_cond_broadcast(&s->work);
  pthread_mutex_unlock(&s->mu);
  for (int i = 0; i < s->nthreads; i++)
    pthread_join(s->tids[i], NULL);
  for (int i = 0; i < 64; i++)
    zllm_archive_close(s->handles[i]);
  while (s->head)
    unlink_entry(s, s->head);
  while (s->nspare) {
    s->bytes -= ZLLM_SLICE_BYTES;
    slice_free(s->spare[--s->nspare], ZLLM_SLICE_BYTES);
  }
  ar_cache_free(s->parts);
  pthread_cond_destroy(&s->work);
  pthread_cond_destroy(&s->done);
  pthread_mutex_destroy(&s->mu);
  free(s->dir);
  free(s);
}

int zllm_slice_store_open(zllm_slice_store **out, const char *dir, size_t memory, int threads)
{
  zllm_slice_store *s = calloc(1, sizeof *s);
  int rc = s && (s->dir = strdup(dir)) ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  *out = NULL;
  if (rc < 0) {
    free(s);
    return rc;
  }
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->done, NULL);
  pthread_cond_init(&s->work, NULL);
  threads = threads < 1 ? 1 : threads > 64 ? 64 : threads;
  /* seven eighths for slices (a family's base, 271 MB in the bench family,
   * stays for all its fine-tunes in the default 512 MiB: measured 6.0 GB
   * decoded for bench_serve's 4.6 GB of files, 8.3 GB with three quarters),
   * a sixteenth for parts decoded whole; the rest is the decoders' working
   * buffers (each handle's chunks and cast base, a few MiB) */
  s->budget = memory / 8 * 7;
  s->max_readers = (int)(s->budget / ((AR_READER_AHEAD + 1) * (size_t)ZLLM_SLICE_BYTES));
  if (s->max_readers < 1)
    rc = zllm_error_set(ZLLM_EINVAL, "%zu MiB of memory holds no reader's %d slices of %zu MiB", memory >> 20,
                        AR_READER_AHEAD + 1, ZLLM_SLICE_BYTES >> 20);
  rc = rc ? rc : ar_cache_new(&s->parts, memory / 16);
  for (int i = 0; rc == 0 && i < threads; i++) {
    rc = zllm_archive_open(&s->handles[i], dir, 0);
    if (rc == 0)
      adopt_handle(s, s->handles[i]);
    thread_arg *ta = rc ? NULL : malloc(sizeof *ta);
    if (rc == 0 && !ta)
      rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
    if (rc == 0) {
      *ta = (thread_arg){s, i};
      if (pthread_create(&s->tids[i], NULL, decoder_main, ta) != 0) {
        free(ta);
        rc = zllm_error_set(ZLLM_ERROR, "cannot start a decode thread");
      } else {
        s->nthreads++;
      }
    }
  }
  if (rc < 0) {
    zllm_slice_store_close(s);
    return rc;
  }
  *out = s;
  return 0;
}

int zllm_slice_store_reader(zllm_slice_store *s, zllm_archive *a, const char *repo, const char *path,
                            zllm_file_reader **out)
{
  ticket *t = calloc(1, sizeof *t);
  *out = NULL;
  if (!t)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  t->s = s;
  pthread_mutex_lock(&s->mu);
  int full = s->readers >= s->max_readers;
  if (full)
    s->st.refused++;
  else
    s->readers++;
  pthread_mutex_unlock(&s->mu);
  if (full) {
    free(t);
    return zllm_error_set(ZLLM_ELIMIT, "%s/%s: %d readers already hold the slice store's memory", repo, path,
                          s->max_readers);
  }
  /* a slice decoded on the reader's own thread uses its handle: with the
   * store's part cache, so what it decodes whole is there for everyone */
  zllm_file_reader *r = NULL;
  adopt_handle(s, a);
  int rc = zllm_file_reader_open(&r, a, repo, path);
  if (rc < 0) {
    src_done(t, 0, 0);
    return rc;
  }
  ar_reader_use_source(r, ZLLM_SLICE_BYTES, &store_source, t);
  *out = r;
  return 0;
}

void zllm_slice_store_stats_get(zllm_slice_store *s, zllm_slice_store_stats *st)
{
  pthread_mutex_lock(&s->mu);
  *st = s->st;
  st->bytes = s->bytes;
  st->peak_bytes = s->peak;
  st->readers = s->readers;
  st->max_readers = s->max_readers;
  pthread_mutex_unlock(&s->mu);
}
