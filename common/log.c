#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "zllm/error.h"
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
  char raw[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(raw, sizeof raw, fmt, ap);
  va_end(ap);
  /* names come from the hub: a newline or tab in one must not split the
   * line or forge another */
  zllm_escape_text(line + n, sizeof line - (size_t)n, raw);
  /* one fputs per line so ranks sharing stderr don't interleave mid-line */
  size_t len = strlen(line);
  if (len + 1 < sizeof line) {
    line[len] = '\n';
    line[len + 1] = '\0';
  }
  fputs(line, stderr);
}

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void zllm_progress_begin(zllm_progress *p, const char *phase, unsigned long long total)
{
  memset(p, 0, sizeof *p);
  p->phase = phase;
  p->total = total;
  p->t0 = p->last = now_s();
  p->tty = isatty(2);
  p->on = log_rank <= 0 && zllm_log_get_level() >= ZLLM_LOG_INFO;
  /* a batch log's line interval: ZLLM_PROGRESS_SECONDS, default 10 */
  const char *every = getenv("ZLLM_PROGRESS_SECONDS");
  p->every = every && atof(every) >= 0 ? atof(every) : 10.0;
}

static void progress_line(zllm_progress *p, int final)
{
  double el = now_s() - p->t0, rate = el > 0 ? (double)p->done / el : 0;
  double frac = p->total ? (double)p->done / (double)p->total
                : p->items_total ? (double)p->items_done / (double)p->items_total
                                 : 1;
  char eta[32] = "-", bar[26], items[48] = "", note[72] = "";
  if (final)
    snprintf(eta, sizeof eta, "%.1fs", el);
  else if (p->total && rate > 0 && p->total > p->done)
    snprintf(eta, sizeof eta, "%.0fs", (double)(p->total - p->done) / rate);
  if (p->items_total)
    snprintf(items, sizeof items, " %llu/%llu,", p->items_done, p->items_total);
  if (p->note[0])
    snprintf(note, sizeof note, ", %s", p->note);
  int fill = (int)(frac * 24 + 0.5);
  for (int i = 0; i < 24; i++)
    bar[i] = i < fill ? '#' : '.';
  bar[24] = '\0';
  if (p->tty)
    fprintf(stderr, "\r%-8s [%s] %5.1f%%%s %9.1f/%.1f MB %8.1f MB/s %s %s%s%s", p->phase, bar, 100 * frac, items,
            (double)p->done / 1e6, (double)p->total / 1e6, rate / 1e6, final ? "done in" : "ETA", eta, note,
            final ? "\n" : "  ");
  else
    zllm_log(ZLLM_LOG_INFO, "%s: %.1f%%%s (%.1f of %.1f MB), %.1f MB/s, %s %s%s", p->phase, 100 * frac, items,
             (double)p->done / 1e6, (double)p->total / 1e6, rate / 1e6, final ? "done in" : "ETA", eta, note);
}

static void progress_due(zllm_progress *p)
{
  double t = now_s();
  if (p->on && t - p->last >= (p->tty ? 0.2 : p->every)) {
    p->last = t;
    progress_line(p, 0);
  }
}

void zllm_progress_add(zllm_progress *p, unsigned long long bytes)
{
  p->done += bytes;
  progress_due(p);
}

void zllm_progress_set(zllm_progress *p, unsigned long long done, unsigned long long items_done,
                       unsigned long long items_total)
{
  p->done = done;
  p->items_done = items_done;
  p->items_total = items_total;
  progress_due(p);
}

void zllm_progress_note(zllm_progress *p, const char *note)
{
  snprintf(p->note, sizeof p->note, "%s", note ? note : "");
}

void zllm_progress_end(zllm_progress *p)
{
  if (p->on && (p->tty || now_s() - p->t0 >= p->every)) /* short phases: the phase's info line is enough */
    progress_line(p, 1);
}
