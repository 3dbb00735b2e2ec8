/* --select over census rows (crawl/census_internal.h): a conjunction of
 * FIELD OP VALUE terms, parsed once, matched against each row as it
 * streams by. */
#include <fnmatch.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "crawl/census_internal.h"
#include "zllm/error.h"

#define MAX_TERMS 32

typedef enum { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_GLOB } sel_op;
typedef enum { K_TEXT, K_NUMBER, K_DATE, K_BASE, K_DTYPE, K_GLOB } sel_kind;

typedef struct {
  int col;
  sel_kind kind;
  sel_op op;
  char *value;
  double number;
} sel_term;

struct zl_select {
  sel_term t[MAX_TERMS];
  size_t n;
};

static const struct {
  const char *name;
  int col;
  sel_kind kind;
} FIELDS[] = {
    {"id", ZLLM_CC_ID, K_GLOB},           {"library", ZLLM_CC_LIBRARY, K_TEXT},   {"pipeline_tag", ZLLM_CC_PIPELINE, K_TEXT},
    {"gated", ZLLM_CC_GATED, K_TEXT},     {"relation", ZLLM_CC_RELATION, K_TEXT}, {"base", ZLLM_CC_BASES, K_BASE},
    {"dtype", ZLLM_CC_DTYPES, K_DTYPE},   {"params", ZLLM_CC_PARAMS, K_NUMBER},   {"files", ZLLM_CC_FILES, K_NUMBER},
    {"downloads", ZLLM_CC_DOWNLOADS, K_NUMBER}, {"created", ZLLM_CC_CREATED, K_DATE}, {"modified", ZLLM_CC_MODIFIED, K_DATE},
};

/* "7e9", "7B", "350M", "1.5K": a count. */
static int parse_count(const char *s, double *out)
{
  char *end;
  double v = strtod(s, &end);
  if (end == s || !isfinite(v))
    return -1;
  double scale = 1;
  if (*end == 'K' || *end == 'k')
    scale = 1e3;
  else if (*end == 'M' || *end == 'm')
    scale = 1e6;
  else if (*end == 'B' || *end == 'b' || *end == 'G')
    scale = 1e9;
  else if (*end == 'T')
    scale = 1e12;
  if (scale != 1)
    end++;
  if (*end)
    return -1;
  *out = v * scale;
  return 0;
}

static int parse_op(const char **p, sel_op *op)
{
  static const struct {
    const char *s;
    sel_op op;
  } ops[] = {{"!=", OP_NE}, {"<=", OP_LE}, {">=", OP_GE}, {"=", OP_EQ}, {"<", OP_LT}, {">", OP_GT}, {"~", OP_GLOB}};
  for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
    if (strncmp(*p, ops[i].s, strlen(ops[i].s)) == 0) {
      *op = ops[i].op;
      *p += strlen(ops[i].s);
      return 0;
    }
  return -1;
}

static int parse_term(const char *term, sel_term *t)
{
  size_t n = strcspn(term, "=!<>~");
  size_t f = 0;
  for (; f < sizeof FIELDS / sizeof *FIELDS; f++)
    if (strlen(FIELDS[f].name) == n && strncmp(term, FIELDS[f].name, n) == 0)
      break;
  if (f == sizeof FIELDS / sizeof *FIELDS)
    return zllm_error_set(ZLLM_EINVAL, "--select: \"%s\": no such field (id, library, pipeline_tag, gated, relation, "
                                       "base, dtype, params, files, downloads, created, modified)", term);
  const char *p = term + n;
  if (parse_op(&p, &t->op) < 0 || !*p)
    return zllm_error_set(ZLLM_EINVAL, "--select: \"%s\": want FIELD OP VALUE (OP: = != < <= > >= ~)", term);
  t->col = FIELDS[f].col;
  t->kind = FIELDS[f].kind;
  int ordered = t->op == OP_LT || t->op == OP_LE || t->op == OP_GT || t->op == OP_GE;
  if (t->op == OP_GLOB && t->kind != K_GLOB)
    return zllm_error_set(ZLLM_EINVAL, "--select: \"%s\": ~ (a glob) is for id only", term);
  if (t->kind == K_GLOB && t->op != OP_GLOB && t->op != OP_EQ && t->op != OP_NE)
    return zllm_error_set(ZLLM_EINVAL, "--select: \"%s\": id takes =, != or ~", term);
  if (ordered && t->kind != K_NUMBER && t->kind != K_DATE)
    return zllm_error_set(ZLLM_EINVAL, "--select: \"%s\": %s is not ordered (= or != only)", term, FIELDS[f].name);
  if ((t->kind == K_BASE || t->kind == K_DTYPE) && t->op != OP_EQ && t->op != OP_NE)
    return zllm_error_set(ZLLM_EINVAL, "--select: \"%s\": %s takes = or !=", term, FIELDS[f].name);
  if (t->kind == K_NUMBER && parse_count(p, &t->number) < 0)
    return zllm_error_set(ZLLM_EINVAL, "--select: \"%s\": \"%s\" is not a number (7e9, 7B, 350M, 1.5K)", term, p);
  if (!(t->value = strdup(p)))
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  return 0;
}

int zl_select_parse(const char *expr, zl_select **out)
{
  *out = NULL;
  zl_select *s = calloc(1, sizeof *s);
  char *copy = strdup(expr ? expr : "");
  int rc = s && copy ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  char *save = NULL;
  for (char *term = copy ? strtok_r(copy, ",", &save) : NULL; rc == 0 && term; term = strtok_r(NULL, ",", &save)) {
    if (s->n == MAX_TERMS)
      rc = zllm_error_set(ZLLM_EINVAL, "--select: more than %d terms", MAX_TERMS);
    else if ((rc = parse_term(term, &s->t[s->n])) == 0)
      s->n++;
  }
  if (rc == 0 && s->n == 0)
    rc = zllm_error_set(ZLLM_EINVAL, "--select: empty (want FIELD OP VALUE[,...], e.g. library=transformers,params>=1B)");
  free(copy);
  if (rc < 0) {
    zl_select_free(s);
    return rc;
  }
  *out = s;
  return 0;
}

/* The `sep`-separated list `list` holds `item` (for dtype, as "DT=N"). */
static int list_has(const char *list, char sep, const char *item, int until_eq)
{
  size_t n = strlen(item);
  for (const char *p = list; *p;) {
    size_t len = strcspn(p, sep == ',' ? "," : ";");
    size_t key = until_eq ? strcspn(p, "=") : len;
    if (key > len)
      key = len;
    if (key == n && strncmp(p, item, n) == 0)
      return 1;
    p += len + (p[len] != '\0');
  }
  return 0;
}

static int compare(sel_op op, int c)
{
  switch (op) {
  case OP_EQ: return c == 0;
  case OP_NE: return c != 0;
  case OP_LT: return c < 0;
  case OP_LE: return c <= 0;
  case OP_GT: return c > 0;
  case OP_GE: return c >= 0;
  default: return 0;
  }
}

static int term_match(const sel_term *t, const char *v)
{
  if (!*v && t->op != OP_NE)
    return 0;
  switch (t->kind) {
  case K_GLOB: return t->op == OP_GLOB ? fnmatch(t->value, v, 0) == 0 : compare(t->op, strcmp(v, t->value));
  case K_TEXT: return compare(t->op, strcmp(v, t->value));
  case K_BASE: return list_has(v, ',', t->value, 0) == (t->op == OP_EQ);
  case K_DTYPE: return list_has(v, ';', t->value, 1) == (t->op == OP_EQ);
  case K_DATE: return compare(t->op, strncmp(v, t->value, strlen(t->value)));
  case K_NUMBER: {
    if (!*v)
      return 0;
    double x = strtod(v, NULL);
    return compare(t->op, x < t->number ? -1 : x > t->number);
  }
  }
  return 0;
}

int zl_select_match(const zl_select *s, const zllm_census_cols *row)
{
  for (size_t i = 0; i < s->n; i++)
    if (!term_match(&s->t[i], row->col[s->t[i].col]))
      return 0;
  return 1;
}

void zl_select_free(zl_select *s)
{
  for (size_t i = 0; s && i < s->n; i++)
    free(s->t[i].value);
  free(s);
}
