#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <yaml.h>

#include "zllm/error.h"
#include "zllm/json.h"
#include "zllm/repofiles.h"

#define CARD_LIST_MAX 4096 /* items in one list field */

void zllm_card_free(zllm_card *c)
{
  if (!c)
    return;
  zllm_strv_free(c->base_models, c->nbase);
  zllm_strv_free(c->tags, c->ntags);
  free(c->base_model_relation);
  free(c->license);
  free(c->library_name);
  free(c->pipeline_tag);
  free(c);
}

/* Length of the line starting at p (without its \n or \r\n). */
static size_t line_len(const char *p, const char *end, const char **next)
{
  const char *nl = memchr(p, '\n', (size_t)(end - p));
  const char *stop = nl ? nl : end;
  *next = nl ? nl + 1 : end;
  if (stop > p && stop[-1] == '\r')
    stop--;
  return (size_t)(stop - p);
}

static bool is_fence(const char *p, size_t len, const char *fence)
{
  while (len > 3 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
    len--;
  return len == 3 && memcmp(p, fence, 3) == 0;
}

/* Finds the YAML between the opening and closing fences. */
static int find_front_matter(const char *name, const char *text, size_t len, const char **yaml,
                             size_t *ylen)
{
  const char *p = text, *end = text + len, *next;
  if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
    p += 3; /* UTF-8 byte order mark */
  *yaml = NULL;
  *ylen = 0;
  if (!is_fence(p, line_len(p, end, &next), "---"))
    return 0;
  const char *start = next;
  for (p = next; p < end; p = next) {
    size_t l = line_len(p, end, &next);
    if (is_fence(p, l, "---") || is_fence(p, l, "...")) {
      *yaml = start;
      *ylen = (size_t)(p - start);
      if (*ylen > ZLLM_FRONT_MATTER_MAX)
        return zllm_error_set(ZLLM_ELIMIT, "%s: front-matter: %zu bytes exceed the %zu-byte limit", name,
                              *ylen, ZLLM_FRONT_MATTER_MAX);
      return 1;
    }
  }
  return zllm_error_set(ZLLM_EFORMAT, "%s: front-matter: opened with '---' but never closed", name);
}

/* What one card may cost, whatever its 1 MiB of YAML says: every stage that
 * lists a hub reads every card, so a card's cost must follow its size. */
#define CARD_MAX_DEPTH 64          /* nesting of collections */
#define CARD_MAX_EVENTS 200000     /* parser events (scalars, starts, ends); real cards have hundreds */
#define CARD_MAX_EXPANDED ((size_t)1 << 20) /* bytes of the fields read, each alias counted where used */
#define CARD_MAX_ANCHORS 4096      /* real cards have none or a few */

typedef struct {
  char *name;
  char *value;  /* a scalar's; NULL for a list or a map */
  bool is_null;
  char **items; /* a list of scalars' items (copies), else NULL */
  size_t nitems;
  bool is_list; /* a list whose items are all scalars */
} card_anchor;

/* An anchored list being read: its direct items are kept, so an alias of it
 * (`tags: *common`) reads as the list.  Items are counted like any copy. */
typedef struct {
  size_t anchor; /* its entry in anchors[] */
  int depth;     /* the depth its items are at */
} card_open_list;

/* A card's YAML read as a stream of libyaml events: nothing is built but the
 * few fields zllm reads, so aliases cost what their uses copy, counted
 * against CARD_MAX_EXPANDED, and the walk stops at the first limit. */
typedef struct {
  yaml_parser_t parser;
  yaml_event_t ev; /* the current event */
  bool have_ev;
  const char *name;
  size_t events, expanded;
  int depth;
  card_anchor *anchors;
  size_t nanchors, cap;
  size_t slots[2 * CARD_MAX_ANCHORS]; /* anchors by name: 1 + their index, 0 empty (open addressing) */
  uint64_t seed;   /* of the names' hash: random, so no card can be made of colliding names */
  card_open_list open[CARD_MAX_DEPTH];
  int nopen;
} card_reader;

static bool scalar_is_null(const char *v, yaml_scalar_style_t style)
{
  if (style != YAML_PLAIN_SCALAR_STYLE)
    return false;
  return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
         strcmp(v, "NULL") == 0;
}

static size_t name_slot(const card_reader *r, const char *name)
{
  uint64_t h = r->seed;
  for (const unsigned char *p = (const unsigned char *)name; *p; p++)
    h = (h ^ *p) * 0x100000001b3ull;
  h ^= h >> 33; /* fmix64: every bit of the name reaches the slot's bits */
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return (size_t)h & (2 * CARD_MAX_ANCHORS - 1);
}

/* The slot holding `name`, or the empty slot where it would go. */
static size_t find_slot(const card_reader *r, const char *name)
{
  size_t i = name_slot(r, name);
  while (r->slots[i] && strcmp(r->anchors[r->slots[i] - 1].name, name) != 0)
    i = (i + 1) & (2 * CARD_MAX_ANCHORS - 1);
  return i;
}

static int remember_anchor(card_reader *r, const yaml_char_t *anchor, const char *value, bool is_null)
{
  if (!anchor)
    return 0;
  if (r->nanchors >= CARD_MAX_ANCHORS) /* the table stays at most half full */
    return zllm_error_set(ZLLM_ELIMIT, "%s: card-budget: more than %d anchors", r->name, CARD_MAX_ANCHORS);
  if (r->nanchors == r->cap) {
    size_t ncap = r->cap ? 2 * r->cap : 16;
    card_anchor *n = realloc(r->anchors, ncap * sizeof *n);
    if (!n)
      return zllm_error_set(ZLLM_ENOMEM, "out of memory");
    r->anchors = n;
    r->cap = ncap;
  }
  card_anchor *a = &r->anchors[r->nanchors];
  memset(a, 0, sizeof *a);
  a->name = strdup((const char *)anchor);
  a->value = value ? strdup(value) : NULL;
  a->is_null = is_null;
  if (!a->name || (value && !a->value)) {
    free(a->name);
    free(a->value);
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  r->slots[find_slot(r, a->name)] = ++r->nanchors; /* YAML lets a name be anchored again: the latest wins */
  return 0;
}

/* The latest anchor of that name, or NULL. */
static const card_anchor *find_anchor(const card_reader *r, const yaml_char_t *name)
{
  size_t slot = r->slots[find_slot(r, (const char *)name)];
  return slot ? &r->anchors[slot - 1] : NULL;
}

/* A copy of a string zllm keeps, counted against CARD_MAX_EXPANDED: an
 * alias used 4,096 times costs 4,096 copies, so that is what is counted. */
static int counted_copy(card_reader *r, const char *what, const char *v, char **out)
{
  size_t n = strlen(v);
  *out = NULL;
  if (n > CARD_MAX_EXPANDED - r->expanded)
    return zllm_error_set(ZLLM_ELIMIT, "%s: card-budget: the fields zllm reads ('%s' so far) hold more than %zu bytes "
                          "(aliases counted at each use)", r->name, what, CARD_MAX_EXPANDED);
  r->expanded += n;
  if (!(*out = strdup(v)))
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  return 0;
}

/* An event directly inside the innermost anchored list still open: a
 * scalar (or an alias of one) is kept as an item, anything else makes the
 * anchor no list of strings. */
static int open_list_item(card_reader *r, const yaml_event_t *e)
{
  if (r->nopen == 0 || r->open[r->nopen - 1].depth != r->depth)
    return 0;
  card_anchor *a = &r->anchors[r->open[r->nopen - 1].anchor];
  const card_anchor *target = e->type == YAML_ALIAS_EVENT ? find_anchor(r, e->data.alias.anchor) : NULL;
  const char *v = e->type == YAML_SCALAR_EVENT ? (const char *)e->data.scalar.value : target ? target->value : NULL;
  if (!a->is_list)
    return 0;
  if (!v) {
    a->is_list = false;
    return 0;
  }
  if (a->nitems % 16 == 0) {
    char **n = realloc(a->items, (a->nitems + 16) * sizeof *n);
    if (!n)
      return zllm_error_set(ZLLM_ENOMEM, "out of memory");
    a->items = n;
  }
  int rc = counted_copy(r, a->name, v, &a->items[a->nitems]);
  a->nitems += rc == 0;
  return rc;
}

static int open_list_start(card_reader *r, const yaml_char_t *anchor)
{
  int rc = remember_anchor(r, anchor, NULL, false);
  if (rc == 0 && anchor) {
    r->anchors[r->nanchors - 1].is_list = true;
    r->open[r->nopen++] = (card_open_list){r->nanchors - 1, r->depth};
  }
  return rc;
}

/* The next event, counted against the event budget and the depth limit;
 * anchors are remembered as they are defined. */
static int next_event(card_reader *r)
{
  if (r->have_ev)
    yaml_event_delete(&r->ev);
  r->have_ev = false;
  if (++r->events > CARD_MAX_EVENTS)
    return zllm_error_set(ZLLM_ELIMIT, "%s: card-budget: more than %d YAML events", r->name, CARD_MAX_EVENTS);
  if (!yaml_parser_parse(&r->parser, &r->ev))
    /* +2: the opening fence is line 1 of the file */
    return zllm_error_set(ZLLM_EFORMAT, "%s: yaml: line %zu: %s", r->name, (size_t)r->parser.problem_mark.line + 2,
                          r->parser.problem ? r->parser.problem : "malformed YAML");
  r->have_ev = true;
  yaml_event_t *e = &r->ev;
  int rc = 0;
  switch (e->type) {
  case YAML_SEQUENCE_START_EVENT:
  case YAML_MAPPING_START_EVENT:
    rc = open_list_item(r, e);
    if (rc == 0 && ++r->depth > CARD_MAX_DEPTH)
      rc = zllm_error_set(ZLLM_ELIMIT, "%s: card-depth: nested deeper than %d levels", r->name, CARD_MAX_DEPTH);
    if (rc == 0 && e->type == YAML_SEQUENCE_START_EVENT)
      rc = open_list_start(r, e->data.sequence_start.anchor);
    else if (rc == 0)
      rc = remember_anchor(r, e->data.mapping_start.anchor, NULL, false);
    return rc;
  case YAML_SEQUENCE_END_EVENT:
  case YAML_MAPPING_END_EVENT:
    if (r->nopen && r->open[r->nopen - 1].depth == r->depth && e->type == YAML_SEQUENCE_END_EVENT)
      r->nopen--;
    r->depth--;
    return 0;
  case YAML_SCALAR_EVENT:
    rc = open_list_item(r, e);
    return rc ? rc : remember_anchor(r, e->data.scalar.anchor, (const char *)e->data.scalar.value,
                                     scalar_is_null((const char *)e->data.scalar.value, e->data.scalar.style));
  case YAML_ALIAS_EVENT:
    if (!find_anchor(r, e->data.alias.anchor))
      return zllm_error_set(ZLLM_EFORMAT, "%s: yaml: line %zu: found undefined alias", r->name,
                            (size_t)e->start_mark.line + 2);
    return open_list_item(r, e);
  default:
    return 0;
  }
}

/* Consumes the node whose first event is current (a whole list or map). */
static int skip_node(card_reader *r)
{
  int level = r->depth - 1, rc = 0;
  if (r->ev.type != YAML_SEQUENCE_START_EVENT && r->ev.type != YAML_MAPPING_START_EVENT)
    return 0;
  while (rc == 0 && r->depth > level)
    rc = next_event(r);
  return rc;
}

/* The scalar the current event is, or stands for through an alias: NULL
 * when it is a list or a map (or an alias of one). */
static const char *event_scalar(const card_reader *r, bool *is_null)
{
  const yaml_event_t *e = &r->ev;
  *is_null = false;
  if (e->type == YAML_SCALAR_EVENT) {
    *is_null = scalar_is_null((const char *)e->data.scalar.value, e->data.scalar.style);
    return (const char *)e->data.scalar.value;
  }
  if (e->type == YAML_ALIAS_EVENT) {
    const card_anchor *a = find_anchor(r, e->data.alias.anchor);
    *is_null = a && a->is_null;
    return a ? a->value : NULL;
  }
  return NULL;
}

/* An alias of an anchored list of scalars, as copies of its items. */
static int alias_strings(card_reader *r, const char *key, char ***out, size_t *nout)
{
  const card_anchor *a = find_anchor(r, r->ev.data.alias.anchor);
  if (!a || !a->is_list)
    return zllm_error_set(ZLLM_EFORMAT, "%s: card-shape: '%s' must be a string or a list of strings", r->name, key);
  if (a->nitems > CARD_LIST_MAX)
    return zllm_error_set(ZLLM_ELIMIT, "%s: card-shape: '%s' has more than %d items", r->name, key, CARD_LIST_MAX);
  char **v = calloc(a->nitems ? a->nitems : 1, sizeof *v);
  size_t n = 0;
  int rc = v ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (; rc == 0 && n < a->nitems; n++)
    rc = counted_copy(r, key, a->items[n], &v[n]);
  if (rc < 0) {
    zllm_strv_free(v, n);
    return rc;
  }
  *out = v;
  *nout = n;
  return 0;
}

/* The current node, a scalar or a list of scalars, as a string vector
 * (null -> empty). */
static int read_strings(card_reader *r, const char *key, char ***out, size_t *nout)
{
  bool is_null = false;
  const char *one = event_scalar(r, &is_null);
  size_t count = 0, cap = 0;
  char **v = NULL;
  int rc = 0;
  *out = NULL;
  *nout = 0;
  if (one && is_null)
    return 0;
  if (!one && r->ev.type == YAML_ALIAS_EVENT)
    return alias_strings(r, key, out, nout);
  if (!one && r->ev.type != YAML_SEQUENCE_START_EVENT)
    return zllm_error_set(ZLLM_EFORMAT, "%s: card-shape: '%s' must be a string or a list of strings", r->name, key);
  for (bool first = true; rc == 0; first = false) {
    const char *item = one;
    if (!one) { /* the next item of the list */
      if ((rc = next_event(r)) < 0 || r->ev.type == YAML_SEQUENCE_END_EVENT)
        break;
      if (!(item = event_scalar(r, &is_null)))
        rc = zllm_error_set(ZLLM_EFORMAT, "%s: card-shape: '%s' item %zu is not a string", r->name, key, count);
    } else if (!first)
      break;
    if (rc == 0 && count == CARD_LIST_MAX)
      rc = zllm_error_set(ZLLM_ELIMIT, "%s: card-shape: '%s' has more than %d items", r->name, key, CARD_LIST_MAX);
    if (rc == 0 && count == cap) {
      char **n = realloc(v, (cap = cap ? 2 * cap : 8) * sizeof *v);
      rc = n ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
      v = n ? n : v;
    }
    if (rc == 0 && (rc = counted_copy(r, key, item, &v[count])) == 0)
      count++;
  }
  if (rc < 0) {
    zllm_strv_free(v, count);
    return rc;
  }
  *out = v;
  *nout = count;
  return 0;
}

/* A single-valued field: a scalar, or a list whose items are joined by ","
 * (in one pass: the joined length is known before a byte is copied). */
static int read_string(card_reader *r, const char *key, char **out)
{
  char **v = NULL;
  size_t count = 0, total = 1, at = 0;
  int rc = read_strings(r, key, &v, &count);
  if (rc < 0 || count == 0) { /* an empty list (an alias of `[]`) still has its vector */
    zllm_strv_free(v, count);
    return rc;
  }
  for (size_t i = 0; i < count; i++)
    total += strlen(v[i]) + 1;
  if (!(*out = malloc(total)))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < count; i++) {
    size_t n = strlen(v[i]);
    if (i)
      (*out)[at++] = ',';
    memcpy(*out + at, v[i], n);
    at += n;
  }
  if (rc == 0)
    (*out)[at] = '\0';
  zllm_strv_free(v, count);
  return rc;
}

static int card_field(zllm_card *c, card_reader *r, const char *key)
{
  char **dst = NULL;
  if (strcmp(key, "base_model") == 0) {
    if (c->base_models || c->nbase)
      return zllm_error_set(ZLLM_EFORMAT, "%s: card-shape: duplicate key 'base_model'", r->name);
    return read_strings(r, key, &c->base_models, &c->nbase);
  }
  if (strcmp(key, "tags") == 0) {
    if (c->tags)
      return zllm_error_set(ZLLM_EFORMAT, "%s: card-shape: duplicate key 'tags'", r->name);
    return read_strings(r, key, &c->tags, &c->ntags);
  }
  if (strcmp(key, "license") == 0)
    dst = &c->license;
  else if (strcmp(key, "library_name") == 0)
    dst = &c->library_name;
  else if (strcmp(key, "pipeline_tag") == 0)
    dst = &c->pipeline_tag;
  else if (strcmp(key, "base_model_relation") == 0)
    dst = &c->base_model_relation;
  if (!dst)
    return skip_node(r); /* other keys (datasets, language, widget...) are not needed */
  if (*dst)
    return zllm_error_set(ZLLM_EFORMAT, "%s: card-shape: duplicate key '%s'", r->name, key);
  return read_string(r, key, dst);
}

/* The root mapping's pairs, each value read or skipped; the first document
 * only, as a YAML loader would. */
static int card_from_events(zllm_card *c, card_reader *r)
{
  int rc = next_event(r); /* stream start */
  rc = rc ? rc : next_event(r);
  if (rc < 0 || r->ev.type == YAML_STREAM_END_EVENT)
    return rc; /* empty front matter */
  rc = next_event(r); /* the root node */
  bool is_null = false;
  if (rc < 0 || r->ev.type == YAML_DOCUMENT_END_EVENT || (event_scalar(r, &is_null) && is_null))
    return rc;
  if (r->ev.type != YAML_MAPPING_START_EVENT)
    return zllm_error_set(ZLLM_EFORMAT, "%s: card-shape: the front matter is not a mapping", r->name);
  while (rc == 0 && (rc = next_event(r)) == 0 && r->ev.type != YAML_MAPPING_END_EVENT) {
    const char *k = r->ev.type == YAML_SCALAR_EVENT ? (const char *)r->ev.data.scalar.value : NULL;
    char *key = k ? strdup(k) : NULL;
    if (k && !key)
      return zllm_error_set(ZLLM_ENOMEM, "out of memory");
    rc = key ? 0 : skip_node(r); /* complex keys carry nothing we read */
    rc = rc ? rc : next_event(r);
    rc = rc ? rc : key ? card_field(c, r, key) : skip_node(r);
    free(key);
  }
  return rc;
}

/* How deep the YAML's flow collections could nest, counted on the text
 * before libyaml sees it: its scanner keeps a possible key per open flow
 * level and walks them all at each token, so 100,000 '[' would cost it hours
 * before the first event could be refused.  Every bracket counts, quoted or
 * not (a quote can be left open on purpose to hide what follows), so a card
 * is refused only for more than CARD_MAX_DEPTH brackets open at once; block
 * nesting is bounded by the event walk's depth limit. */
static int flow_depth_check(const char *name, const char *y, size_t n)
{
  int depth = 0;
  for (size_t i = 0; i < n; i++) {
    if ((y[i] == '[' || y[i] == '{') && ++depth > CARD_MAX_DEPTH)
      return zllm_error_set(ZLLM_ELIMIT, "%s: card-depth: more than %d brackets open at once", name, CARD_MAX_DEPTH);
    if ((y[i] == ']' || y[i] == '}') && depth > 0)
      depth--;
  }
  return 0;
}

static int parse_yaml(zllm_card *c, const char *name, const char *yaml, size_t ylen)
{
  card_reader *r = calloc(1, sizeof *r); /* its anchor table is 64 KiB: not on the stack */
  int rc = r ? flow_depth_check(name, yaml, ylen) : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (rc < 0) {
    free(r);
    return rc;
  }
  r->name = name;
  if (getrandom(&r->seed, sizeof r->seed, 0) != sizeof r->seed)
    r->seed = 0xcbf29ce484222325ull ^ (uint64_t)(uintptr_t)r;
  if (!yaml_parser_initialize(&r->parser)) {
    free(r);
    return zllm_error_set(ZLLM_ENOMEM, "%s: out of memory for a YAML parser", name);
  }
  yaml_parser_set_input_string(&r->parser, (const unsigned char *)yaml, ylen);
  rc = card_from_events(c, r);
  if (r->have_ev)
    yaml_event_delete(&r->ev);
  for (size_t i = 0; i < r->nanchors; i++) {
    free(r->anchors[i].name);
    free(r->anchors[i].value);
    zllm_strv_free(r->anchors[i].items, r->anchors[i].nitems);
  }
  free(r->anchors);
  yaml_parser_delete(&r->parser);
  free(r);
  return rc;
}

int zllm_card_parse(zllm_card **out, const char *name, const char *text, size_t len)
{
  zllm_card *c = calloc(1, sizeof *c);
  const char *yaml;
  size_t ylen;
  int rc;
  *out = NULL;
  if (!c)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (len > ZLLM_CARD_MAX) {
    rc = zllm_error_set(ZLLM_ELIMIT, "%s: size-limit: card of %zu bytes exceeds %zu", name, len,
                        ZLLM_CARD_MAX);
    goto done;
  }
  if ((rc = find_front_matter(name, text, len, &yaml, &ylen)) < 0)
    goto done;
  c->has_front_matter = rc == 1;
  rc = c->has_front_matter ? parse_yaml(c, name, yaml, ylen) : 0;
done:
  if (rc < 0)
    zllm_card_free(c);
  else
    *out = c;
  return rc < 0 ? rc : 0;
}
