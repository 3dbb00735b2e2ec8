/* zllm/serve.h - `zllm serve`: an archive as a read-only mirror that speaks
 * the subset of the Hugging Face Hub's HTTP API clients use to list and
 * download models (docs/SERVE.md).  Files are decoded as they are sent,
 * never held whole; a whole-file response is checked against its SHA-256
 * as it streams and broken off, never finished, on a mismatch.
 *
 * HTTP/1.1 by GNU libmicrohttpd, a pool of `threads` threads, each with its
 * own read-only handle on the archive (which may be packed into meanwhile:
 * a repo appears once its commit is in the catalog).  Local calls. */
#ifndef ZLLM_SERVE_H
#define ZLLM_SERVE_H

#include <stdint.h>

typedef struct {
  const char *archive;      /* the archive directory */
  const char *listen;       /* "HOST:PORT" (IPv4 literal; port 0: any free port); NULL: 127.0.0.1:8080 */
  int threads;              /* worker threads (default 2) */
  const char *token_file;   /* when set, every request needs "Authorization: Bearer <its first line>" */
  int quiet;                /* no access log */
  unsigned timeout;         /* seconds a connection may stay idle (default 30) */
  unsigned max_connections; /* open connections at once (default 64); each download holds one segment */
  unsigned per_ip;          /* open connections per client address (default 16) */
  unsigned page_size;       /* entries per page of /api/models and tree (default 1000) */
  unsigned request_timeout; /* seconds a request's headers and body may take to arrive (default 10) */
  unsigned memory_mib;      /* decoded bytes the server holds at most (default 512): beyond, a download
                               gets 503 with Retry-After */
} zllm_serve_options;

#define ZLLM_SERVE_OPTIONS_INIT {NULL, NULL, 2, NULL, 0, 30, 64, 16, 1000, 10, 512}

typedef struct zllm_server zllm_server;

/* Starts serving (threads run in the background); *port is the bound port. */
int zllm_serve_start(zllm_server **out, const zllm_serve_options *o, unsigned *port);
/* Stops accepting, ends every connection, closes the archive handles. */
void zllm_serve_stop(zllm_server *s); /* accepts NULL */

/* Starts, prints where it listens, serves until SIGINT or SIGTERM. */
int zllm_serve_run(const zllm_serve_options *o);

#endif
