/* Deadlines for what a client sends, and room for new clients.
 *
 * libmicrohttpd's connection timeout is idle-only: a client that sends one
 * header byte a second is never idle, so 64 of them (from as many
 * addresses: a per-address limit is no defence) would keep every real
 * client out.  The gate tracks each connection from its start, and again
 * from the end of each response on a kept-alive connection, until its
 * request's headers and body are in (a response is queued): a new
 * connection has the request deadline, a kept-alive one the idle timeout
 * (as before: its client may simply have nothing to ask yet) plus the
 * deadline.  A watchdog
 * thread ends a connection whose request is not in by the deadline, and,
 * when more than half the connection limit is waiting for requests, the
 * ones that have waited longest, so a new client always finds room.  A
 * connection is ended by shutdown(2) of its socket, which is safe from
 * another thread: libmicrohttpd then reads the end and closes it itself. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "serve/serve_internal.h"
#include "zllm/error.h"
#include "zllm/log.h"

#define GATE_TICK_MS 200

typedef struct {
  const void *conn; /* the connection, as a key */
  int fd;
  double since_ms;  /* connection start, or the last response's end */
  double allowed_ms; /* from then on: the request deadline, plus the idle timeout after a response */
  int waiting;      /* its request's headers or body are not all in */
  int ended;        /* shut down by the gate */
} gate_conn;

struct zs_gate {
  pthread_mutex_t lock;
  pthread_cond_t wake;
  pthread_t thread;
  int running, stop;
  gate_conn *v;
  size_t n, cap;
  double deadline_ms;
  double idle_ms;   /* a kept-alive connection may wait this long for its next request to start */
  size_t limit;     /* the server's connection limit */
  int quiet;
  uint64_t ended_late, ended_for_room;
};

static double mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static gate_conn *find(zs_gate *g, const void *conn)
{
  for (size_t i = 0; i < g->n; i++)
    if (g->v[i].conn == conn)
      return &g->v[i];
  return NULL;
}

void zs_gate_opened(zs_gate *g, const void *conn, int fd)
{
  pthread_mutex_lock(&g->lock);
  if (g->n == g->cap) {
    size_t ncap = g->cap ? 2 * g->cap : 64;
    gate_conn *nv = realloc(g->v, ncap * sizeof *nv);
    if (nv) {
      g->v = nv;
      g->cap = ncap;
    }
  }
  if (g->n < g->cap) /* out of memory: that connection has only the idle timeout */
    g->v[g->n++] = (gate_conn){conn, fd, mono_ms(), g->deadline_ms, 1, 0};
  pthread_mutex_unlock(&g->lock);
}

void zs_gate_closed(zs_gate *g, const void *conn)
{
  pthread_mutex_lock(&g->lock);
  gate_conn *c = find(g, conn);
  if (c)
    *c = g->v[--g->n];
  pthread_mutex_unlock(&g->lock);
}

void zs_gate_request_in(zs_gate *g, const void *conn)
{
  pthread_mutex_lock(&g->lock);
  gate_conn *c = find(g, conn);
  if (c)
    c->waiting = 0;
  pthread_mutex_unlock(&g->lock);
}

void zs_gate_response_done(zs_gate *g, const void *conn)
{
  pthread_mutex_lock(&g->lock);
  gate_conn *c = find(g, conn);
  if (c) { /* a kept-alive client may be idle as long as before, then has the deadline */
    c->waiting = 1;
    c->since_ms = mono_ms();
    c->allowed_ms = g->idle_ms + g->deadline_ms;
  }
  pthread_mutex_unlock(&g->lock);
}

static void end_conn(gate_conn *c)
{
  c->ended = 1;
  shutdown(c->fd, SHUT_RDWR);
}

static int by_since(const void *x, const void *y)
{
  const gate_conn *a = *(gate_conn *const *)x, *b = *(gate_conn *const *)y;
  return (a->since_ms > b->since_ms) - (a->since_ms < b->since_ms);
}

/* One look at every connection (the lock held). */
static void sweep(zs_gate *g)
{
  double now = mono_ms();
  size_t waiting = 0;
  for (size_t i = 0; i < g->n; i++) {
    gate_conn *c = &g->v[i];
    if (!c->waiting || c->ended)
      continue;
    if (now - c->since_ms > c->allowed_ms) {
      end_conn(c);
      g->ended_late++;
    } else {
      waiting++;
    }
  }
  if (waiting <= g->limit / 2)
    return;
  /* room for new clients: past half the limit, the longest waiting go,
   * oldest first (one sort, however many) */
  gate_conn **w = malloc(waiting * sizeof *w);
  size_t k = 0;
  for (size_t i = 0; w && i < g->n; i++)
    if (g->v[i].waiting && !g->v[i].ended)
      w[k++] = &g->v[i];
  if (w)
    qsort(w, k, sizeof *w, by_since);
  for (size_t i = 0; w && i < waiting - g->limit / 2; i++) {
    end_conn(w[i]);
    g->ended_for_room++;
  }
  free(w);
}

static void *watch(void *arg)
{
  zs_gate *g = arg;
  uint64_t said_late = 0, said_room = 0;
  pthread_mutex_lock(&g->lock);
  while (!g->stop) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += GATE_TICK_MS * 1000000L;
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(&g->wake, &g->lock, &until);
    if (g->stop)
      break;
    sweep(g);
    if (!g->quiet && (g->ended_late != said_late || g->ended_for_room != said_room)) {
      fprintf(stderr, "zllm serve: ended %llu connections whose request was not in after %.0f s, %llu to make room "
              "for new clients (so far)\n", (unsigned long long)g->ended_late, g->deadline_ms / 1e3,
              (unsigned long long)g->ended_for_room);
      said_late = g->ended_late;
      said_room = g->ended_for_room;
    }
  }
  pthread_mutex_unlock(&g->lock);
  return NULL;
}

int zs_gate_start(zs_gate **out, unsigned deadline_seconds, unsigned idle_seconds, unsigned limit, int quiet)
{
  zs_gate *g = calloc(1, sizeof *g);
  *out = NULL;
  if (!g)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  g->deadline_ms = deadline_seconds * 1e3;
  g->idle_ms = idle_seconds * 1e3;
  g->limit = limit;
  g->quiet = quiet;
  if (pthread_mutex_init(&g->lock, NULL) != 0 || pthread_cond_init(&g->wake, NULL) != 0) {
    free(g);
    return zllm_error_set(ZLLM_ERROR, "cannot make the gate's lock");
  }
  if (pthread_create(&g->thread, NULL, watch, g) != 0) {
    zs_gate_stop(g);
    return zllm_error_set(ZLLM_ERROR, "cannot start the gate's thread");
  }
  g->running = 1;
  *out = g;
  return 0;
}

void zs_gate_stop(zs_gate *g)
{
  if (!g)
    return;
  if (g->running) {
    pthread_mutex_lock(&g->lock);
    g->stop = 1;
    pthread_cond_signal(&g->wake);
    pthread_mutex_unlock(&g->lock);
    pthread_join(g->thread, NULL);
  }
  pthread_cond_destroy(&g->wake);
  pthread_mutex_destroy(&g->lock);
  free(g->v);
  free(g);
}
