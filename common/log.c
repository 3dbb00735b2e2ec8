#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "zllm/log.h"

static int log_rank = -1;
static zllm_log_level log_level = ZLLM_LOG_INFO;

static const char *level_names[] = {"error", "warn", "info", "debug"};

void zllm_log_init(int rank)
{
  log_rank = rank;
  const char *env = getenv("ZLLM_LOG");
  if (!env)
    return;
  for (int i = 0; i <= ZLLM_LOG_DEBUG; i++)
    if (strcmp(env, level_names[i]) == 0)
      log_level = (zllm_log_level)i;
}

void zllm_log_set_level(zllm_log_level level) { log_level = level; }
zllm_log_level zllm_log_get_level(void) { return log_level; }

void zllm_log(zllm_log_level level, const char *fmt, ...)
{
  if (level > log_level)
    return;
  /* info is a job-level message: one copy, from rank 0 */
  if (level == ZLLM_LOG_INFO && log_rank > 0)
    return;
  char stamp[16], line[2048];
  time_t now = time(NULL);
  struct tm tm;
  localtime_r(&now, &tm);
  strftime(stamp, sizeof stamp, "%H:%M:%S", &tm);
  int n;
  if (log_rank >= 0)
    n = snprintf(line, sizeof line, "zllm[r%d] %s %s: ", log_rank, stamp, level_names[level]);
  else
    n = snprintf(line, sizeof line, "zllm %s %s: ", stamp, level_names[level]);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  va_end(ap);
  /* one fputs per line so ranks sharing stderr don't interleave mid-line */
  size_t len = strlen(line);
  if (len + 1 < sizeof line) {
    line[len] = '\n';
    line[len + 1] = '\0';
  }
  fputs(line, stderr);
}
