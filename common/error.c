#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zllm/error.h"
#include "zllm/log.h"

#define ZLLM_ERRMSG_CAP 1024

static _Thread_local char last_msg[ZLLM_ERRMSG_CAP];
static _Thread_local int last_code;

size_t zllm_utf8_char_len(const unsigned char *p, size_t left)
{
  if (left == 0)
    return 0;
  if (p[0] < 0x80)
    return 1;
  size_t n = p[0] >= 0xc2 && p[0] <= 0xdf ? 2 : p[0] >= 0xe0 && p[0] <= 0xef ? 3 : p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : 0;
  if (n == 0 || left < n)
    return 0;
  for (size_t i = 1; i < n; i++)
    if ((p[i] & 0xc0) != 0x80)
      return 0;
  /* the second byte's range rules out overlong forms, surrogates and > U+10FFFF */
  if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f) || (p[0] == 0xf0 && p[1] < 0x90) ||
      (p[0] == 0xf4 && p[1] > 0x8f))
    return 0;
  return n;
}

void zllm_escape_text(char *dst, size_t cap, const char *src)
{
  size_t o = 0, left = strlen(src);
  if (cap == 0)
    return;
  for (const unsigned char *p = (const unsigned char *)src; *p && o + 1 < cap;) {
    size_t n = zllm_utf8_char_len(p, left);
    if (n == 1 && *p >= 0x20 && *p != 0x7f) {
      dst[o++] = (char)*p;
    } else if (n > 1) {
      if (o + n >= cap)
        break;
      memcpy(dst + o, p, n);
      o += n;
    } else {
      if (o + 5 >= cap)
        break;
      o += (size_t)snprintf(dst + o, cap - o, "\\x%02x", *p);
      n = 1;
    }
    p += n;
    left -= n;
  }
  dst[o] = '\0';
}

int zllm_error_vset(int code, const char *fmt, va_list ap)
{
  char raw[ZLLM_ERRMSG_CAP];
  vsnprintf(raw, sizeof raw, fmt, ap);
  zllm_escape_text(last_msg, sizeof last_msg, raw);
  last_code = code;
  return code;
}

int zllm_error_set(int code, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  zllm_error_vset(code, fmt, ap);
  va_end(ap);
  return code;
}

int zllm_error_set_errno(const char *fmt, ...)
{
  int err = errno;
  char head[ZLLM_ERRMSG_CAP / 2];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(head, sizeof head, fmt, ap);
  va_end(ap);
  int code = err == ENOENT ? ZLLM_ENOTFOUND : err == ENOMEM ? ZLLM_ENOMEM : ZLLM_EIO;
  return zllm_error_set(code, "%s: %s", head, strerror(err));
}

int zllm_error_prefix(const char *fmt, ...)
{
  char head[ZLLM_ERRMSG_CAP / 2], old[ZLLM_ERRMSG_CAP];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(head, sizeof head, fmt, ap);
  va_end(ap);
  memcpy(old, last_msg, sizeof old);
  return zllm_error_set(last_code ? last_code : ZLLM_ERROR, "%s: %s", head, old);
}

const char *zllm_error_last(void) { return last_msg; }
int zllm_error_last_code(void) { return last_code; }

void zllm_error_clear(void)
{
  last_msg[0] = '\0';
  last_code = 0;
}

const char *zllm_error_name(int code)
{
  switch (code) {
  case ZLLM_OK: return "OK";
  case ZLLM_ERROR: return "ERROR";
  case ZLLM_ENOMEM: return "ENOMEM";
  case ZLLM_EIO: return "EIO";
  case ZLLM_EFORMAT: return "EFORMAT";
  case ZLLM_EINVAL: return "EINVAL";
  case ZLLM_ENOTFOUND: return "ENOTFOUND";
  case ZLLM_ELIMIT: return "ELIMIT";
  case ZLLM_EUNSAFE: return "EUNSAFE";
  case ZLLM_EMPI: return "EMPI";
  case ZLLM_ITEREND: return "ITEREND";
  case ZLLM_ECHANGED: return "ECHANGED";
  default: return "UNKNOWN";
  }
}

int zllm_test_fail(const char *where, int rank)
{
  const char *env = getenv("ZLLM_TEST_FAIL");
  char want[128];
  snprintf(want, sizeof want, "%s:%d", where, rank);
  if (!env || strcmp(env, want) != 0)
    return 0;
  int rc = zllm_error_set(ZLLM_ERROR, "ZLLM_TEST_FAIL: rank %d fails in %s on purpose", rank, where);
  zllm_log(ZLLM_LOG_ERROR, "%s", zllm_error_last());
  return rc;
}
