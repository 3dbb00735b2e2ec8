/* zllm/log.h - rank-aware logging on stderr.
 *
 * Lines look like "zllm[r1] 12:03:04 warn: ...".  In a single-process tool
 * (rank < 0) the rank tag is left out.  Errors and warnings print on every
 * rank; info prints on rank 0 only; debug prints on every rank when enabled.
 * The level comes from zllm_log_set_level() or the ZLLM_LOG environment
 * variable (error|warn|info|debug).  Local calls; never collective.
 */
#ifndef ZLLM_LOG_H
#define ZLLM_LOG_H

typedef enum { ZLLM_LOG_ERROR = 0, ZLLM_LOG_WARN, ZLLM_LOG_INFO, ZLLM_LOG_DEBUG } zllm_log_level;

/* Sets this process's rank (-1 for a non-MPI tool) and reads ZLLM_LOG. */
void zllm_log_init(int rank);
void zllm_log_set_level(zllm_log_level level);
zllm_log_level zllm_log_get_level(void);

void zllm_log(zllm_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Progress of a phase on stderr, printed by rank 0 only (in a single-process
 * tool, by the process): a bar redrawn in place on a terminal, a timestamped
 * line every 10 s in a batch log (ZLLM_PROGRESS_SECONDS sets the interval),
 * and a final line with the phase's time.  This printer counts what its
 * process adds; zllm_mpi_progress (zllm/mpi.h) feeds it every rank's bytes.
 * Optionally it counts items (requests, files) and carries a note ("3
 * retries").  Silent when the level is below info; a caller may also turn it
 * off (`on`) after begin.  The one progress printer of the project. */
typedef struct {
  const char *phase;
  unsigned long long total, done;             /* bytes; total 0: unknown */
  unsigned long long items_total, items_done; /* shown when items_total > 0 */
  char note[64];
  double t0, last, every; /* every: seconds between batch-log lines (ZLLM_PROGRESS_SECONDS, default 10) */
  int tty, on;
} zllm_progress;

void zllm_progress_begin(zllm_progress *p, const char *phase, unsigned long long total);
void zllm_progress_add(zllm_progress *p, unsigned long long bytes);
/* Absolute counts (bytes done, items done of items_total), printed when due. */
void zllm_progress_set(zllm_progress *p, unsigned long long done, unsigned long long items_done,
                       unsigned long long items_total);
void zllm_progress_note(zllm_progress *p, const char *note);
void zllm_progress_end(zllm_progress *p);

#define ZLLM_ERR(...) zllm_log(ZLLM_LOG_ERROR, __VA_ARGS__)
#define ZLLM_WARN(...) zllm_log(ZLLM_LOG_WARN, __VA_ARGS__)
#define ZLLM_INFO(...) zllm_log(ZLLM_LOG_INFO, __VA_ARGS__)
#define ZLLM_DEBUG(...) zllm_log(ZLLM_LOG_DEBUG, __VA_ARGS__)

#endif
