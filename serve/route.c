/* What a client asks for: the request path, a Range header and a paths-info
 * body, each parsed without trusting a byte of it (fuzz/fuzz_serve.c). */
#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "serve/serve_internal.h"
#include "zllm/error.h"
#include "zllm/json.h"
#include "zllm/path.h"

#define MAX_SEGS 300 /* a path of at most 1024 bytes has fewer components */

typedef struct {
  const char *p[MAX_SEGS];
  size_t len[MAX_SEGS];
  size_t n;
} segs;

static int split(const char *url, segs *s)
{
  s->n = 0;
  if (url[0] != '/')
    return 404;
  const char *p = url + 1;
  while (s->n < MAX_SEGS) {
    const char *e = strchr(p, '/');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    s->p[s->n] = p;
    s->len[s->n++] = len;
    if (!e)
      return 0;
    p = e + 1;
  }
  return zllm_error_set(ZLLM_ELIMIT, "too many path components"), 404;
}

static int seg_is(const segs *s, size_t i, const char *word)
{
  return i < s->n && s->len[i] == strlen(word) && memcmp(s->p[i], word, s->len[i]) == 0;
}

/* Joins segments [from, to) with '/' into out. */
static int join(const segs *s, size_t from, size_t to, char *out, size_t cap)
{
  size_t k = 0;
  for (size_t i = from; i < to; i++) {
    size_t need = s->len[i] + (i > from);
    if (k + need >= cap)
      return zllm_error_set(ZLLM_ELIMIT, "a name of more than %zu bytes", cap - 1), 400;
    if (i > from)
      out[k++] = '/';
    memcpy(out + k, s->p[i], s->len[i]);
    k += s->len[i];
  }
  out[k] = '\0';
  return 0;
}

/* The repo id in segments [at, at + parts), checked by the Hub's rule. */
static int take_repo(const segs *s, size_t at, size_t parts, zs_route *r)
{
  int rc = join(s, at, at + parts, r->repo, sizeof r->repo);
  if (rc)
    return rc;
  return zllm_repo_id_check(r->repo) < 0 ? 400 : 0;
}

static int take_rev(const segs *s, size_t i, zs_route *r)
{
  if (i >= s->n || s->len[i] == 0)
    return zllm_error_set(ZLLM_EINVAL, "no revision"), 404;
  return join(s, i, i + 1, r->rev, sizeof r->rev);
}

/* A file or folder path: what restore would accept ("" = the repo root,
 * allowed where `root_ok`). */
static int take_path(const segs *s, size_t from, zs_route *r, int root_ok)
{
  int rc = join(s, from, s->n, r->path, sizeof r->path);
  if (rc)
    return rc;
  if (r->path[0] == '\0')
    return root_ok ? 0 : (zllm_error_set(ZLLM_EINVAL, "no file named"), 404);
  return zllm_path_check_relative(r->path, "requested path") < 0 ? 400 : 0;
}

/* /api/models/{repo}[/revision/{rev} | /tree/{rev}[/{path}] | /paths-info/{rev}] */
static int route_api(const segs *s, zs_route *r)
{
  if (s->n == 2 || (s->n == 3 && s->len[2] == 0)) {
    r->kind = ZS_LIST;
    return 0;
  }
  /* "org/name" unless the part after one name is an endpoint word */
  size_t parts = s->n >= 4 && !(s->n >= 5 && (seg_is(s, 3, "revision") || seg_is(s, 3, "tree") ||
                                               seg_is(s, 3, "paths-info"))) ? 2 : 1;
  size_t at = 2 + parts;
  int rc = take_repo(s, 2, parts, r);
  if (rc)
    return rc;
  if (at == s->n) {
    r->kind = ZS_INFO;
    return 0;
  }
  if (seg_is(s, at, "revision") && s->n == at + 2) {
    r->kind = ZS_INFO;
    return take_rev(s, at + 1, r);
  }
  if (seg_is(s, at, "paths-info") && s->n == at + 2) {
    r->kind = ZS_PATHS_INFO;
    return take_rev(s, at + 1, r);
  }
  if (seg_is(s, at, "tree") && s->n >= at + 2) {
    r->kind = ZS_TREE;
    rc = take_rev(s, at + 1, r);
    /* a trailing slash names the root as well */
    return rc ? rc : take_path(s, at + 2, r, 1);
  }
  return zllm_error_set(ZLLM_EINVAL, "no such endpoint"), 404;
}

int zs_route_parse(const char *url, zs_route *r)
{
  segs s;
  memset(r, 0, sizeof *r);
  r->kind = ZS_NONE;
  if (strlen(url) >= ZS_URL_MAX)
    return zllm_error_set(ZLLM_ELIMIT, "a request path of more than %d bytes", ZS_URL_MAX), 414;
  int rc = split(url, &s);
  if (rc)
    return rc;
  if (seg_is(&s, 0, "api") && seg_is(&s, 1, "models"))
    return route_api(&s, r);
  /* /{org}/{name}/resolve/{rev}/{path} or /{name}/resolve/{rev}/{path} */
  size_t parts = seg_is(&s, 2, "resolve") ? 2 : seg_is(&s, 1, "resolve") ? 1 : 0;
  if (!parts || s.n < parts + 3)
    return zllm_error_set(ZLLM_EINVAL, "no such endpoint"), 404;
  r->kind = ZS_RESOLVE;
  rc = take_repo(&s, 0, parts, r);
  rc = rc ? rc : take_rev(&s, parts + 1, r);
  return rc ? rc : take_path(&s, parts + 2, r, 0);
}

static int parse_u64(const char *p, const char **end, uint64_t *v)
{
  uint64_t x = 0;
  const char *q = p;
  while (*q >= '0' && *q <= '9') {
    unsigned d = (unsigned)(*q - '0');
    if (x > (UINT64_MAX - d) / 10)
      return -1;
    x = x * 10 + d;
    q++;
  }
  *end = q;
  *v = x;
  return q == p ? -1 : 0;
}

int zs_range_parse(const char *h, uint64_t size, uint64_t *lo, uint64_t *hi)
{
  if (!h)
    return 0;
  while (*h == ' ' || *h == '\t')
    h++;
  if (strncasecmp(h, "bytes=", 6) != 0)
    return 0;
  const char *p = h + 6, *e = NULL;
  while (*p == ' ')
    p++;
  uint64_t a = 0, b = 0;
  int suffix = *p == '-';
  if (suffix) {
    if (parse_u64(p + 1, &e, &b) < 0)
      return 0;
  } else {
    if (parse_u64(p, &e, &a) < 0 || *e != '-')
      return 0;
    p = e + 1;
    if (*p >= '0' && *p <= '9') {
      if (parse_u64(p, &e, &b) < 0 || b < a)
        return 0;
    } else {
      e = p;
      b = UINT64_MAX;
    }
  }
  while (*e == ' ' || *e == '\t')
    e++;
  if (*e != '\0')
    return 0; /* several ranges, or something else: the whole file */
  if (suffix) {
    if (b == 0 || size == 0)
      return -1;
    *lo = b >= size ? 0 : size - b;
    *hi = size - 1;
    return 1;
  }
  if (a >= size)
    return -1;
  *lo = a;
  *hi = b >= size ? size - 1 : b;
  return 1;
}

static int hexval(int c)
{
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* One form value, %-decoded ('+' is a space); NULL on a bad escape or NUL. */
static char *form_decode(const char *p, size_t n)
{
  char *out = malloc(n + 1);
  size_t k = 0;
  for (size_t i = 0; out && i < n; i++) {
    if (p[i] == '+')
      out[k++] = ' ';
    else if (p[i] != '%')
      out[k++] = p[i];
    else if (i + 2 < n && hexval(p[i + 1]) >= 0 && hexval(p[i + 2]) >= 0 &&
             (hexval(p[i + 1]) | hexval(p[i + 2])) != 0) {
      out[k++] = (char)(hexval(p[i + 1]) * 16 + hexval(p[i + 2]));
      i += 2;
    } else {
      free(out);
      return NULL;
    }
  }
  if (out)
    out[k] = '\0';
  return out;
}

static int paths_from_form(const char *body, size_t len, char ***paths, size_t *n)
{
  char **v = NULL;
  size_t k = 0;
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < len;) {
    const char *amp = memchr(body + i, '&', len - i);
    size_t end = amp ? (size_t)(amp - body) : len;
    if (end - i > 6 && memcmp(body + i, "paths=", 6) == 0) {
      char **nv = realloc(v, (k + 1) * sizeof *v);
      if (!nv)
        rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
      else if (!((v = nv)[k] = form_decode(body + i + 6, end - i - 6)))
        rc = (zllm_error_set(ZLLM_EINVAL, "paths-info: a path with a bad %%-escape"), 400);
      else
        k++;
    }
    i = end + 1;
  }
  if (rc) {
    zllm_strv_free(v, k);
    return rc;
  }
  *paths = v;
  *n = k;
  return 0;
}

int zs_paths_parse(const char *body, size_t len, int form, char ***paths, size_t *n)
{
  *paths = NULL;
  *n = 0;
  if (form)
    return paths_from_form(body, len, paths, n);
  json_t *root = NULL;
  int rc = zllm_json_load(&root, "paths-info body", "a JSON object", body, len, ZS_BODY_MAX);
  rc = rc ? rc : zllm_json_string_list(paths, n, json_object_get(root, "paths"), "paths-info body", "paths");
  json_decref(root);
  return rc == ZLLM_ENOMEM ? rc : rc < 0 ? 400 : 0;
}
