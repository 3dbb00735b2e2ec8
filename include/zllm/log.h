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

#define ZLLM_ERR(...) zllm_log(ZLLM_LOG_ERROR, __VA_ARGS__)
#define ZLLM_WARN(...) zllm_log(ZLLM_LOG_WARN, __VA_ARGS__)
#define ZLLM_INFO(...) zllm_log(ZLLM_LOG_INFO, __VA_ARGS__)
#define ZLLM_DEBUG(...) zllm_log(ZLLM_LOG_DEBUG, __VA_ARGS__)

#endif
