/* zllm/error.h - error codes and the per-thread last-error message.
 *
 * Convention (after libgit2): functions return 0 on success and a negative
 * ZLLM_E* code on failure, after recording a one-line message that
 * zllm_error_last() returns.  Messages about input name the file and the rule
 * it broke; control characters from untrusted input are escaped so a message
 * is always a single printable line.  All functions here are local (no MPI).
 */
#ifndef ZLLM_ERROR_H
#define ZLLM_ERROR_H

#include <stdarg.h>

enum {
  ZLLM_OK = 0,
  ZLLM_ERROR = -1,    /* unspecified failure */
  ZLLM_ENOMEM = -2,   /* allocation failed */
  ZLLM_EIO = -3,      /* a system call on a file failed */
  ZLLM_EFORMAT = -4,  /* input broke a format rule (untrusted data) */
  ZLLM_EINVAL = -5,   /* bad argument or option */
  ZLLM_ENOTFOUND = -6,
  ZLLM_ELIMIT = -7,   /* input exceeds a safety limit */
  ZLLM_EUNSAFE = -8,  /* a path leaves the directory it must stay in */
  ZLLM_EMPI = -9,     /* an MPI call failed */
  ZLLM_ITEREND = -10, /* not an error: an iterator is exhausted */
  ZLLM_ECHANGED = -11 /* an input changed while it was read (retry later) */
};

/* Records a message (printf format) and returns `code`, so callers can write
 * `return zllm_error_set(ZLLM_EFORMAT, "%s: ...", file);`. */
int zllm_error_set(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int zllm_error_vset(int code, const char *fmt, va_list ap);

/* Records strerror(errno) after the message: "<msg>: <strerror>".  Returns
 * ZLLM_EIO (or ZLLM_ENOTFOUND for ENOENT, ZLLM_ENOMEM for ENOMEM). */
int zllm_error_set_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prefixes the current message with "<prefix>: " (for adding context while
 * an error travels up).  Returns the current code. */
int zllm_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The last message recorded by this thread ("" if none); borrowed. */
const char *zllm_error_last(void);
int zllm_error_last_code(void);
void zllm_error_clear(void);

/* A stable short name for a code ("EFORMAT"). */
const char *zllm_error_name(int code);

/* Copies `src` into `dst` (size `cap`), replacing control characters and
 * bytes that are not UTF-8 by \xNN escapes, so untrusted text prints as one
 * line of valid UTF-8. */
void zllm_escape_text(char *dst, size_t cap, const char *src);

/* The length (1 to 4) of the well-formed UTF-8 character at p (of `left`
 * bytes), or 0 when it is not one: a stray continuation byte, a truncated
 * or overlong sequence, a surrogate (U+D800-DFFF) or a code point past
 * U+10FFFF.  JSON (jansson), HDF5 strings and every terminal want these. */
size_t zllm_utf8_char_len(const unsigned char *p, size_t left);

/* Fault injection for tests: ZLLM_ERROR ("ZLLM_TEST_FAIL: rank R fails in
 * WHERE on purpose", logged on that rank) when the environment sets
 * ZLLM_TEST_FAIL=WHERE:R, else 0. */
int zllm_test_fail(const char *where, int rank);

#endif
