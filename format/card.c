#include <stdlib.h>
#include <string.h>

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

static bool scalar_is_null(const yaml_node_t *n)
{
  const char *v = (const char *)n->data.scalar.value;
  if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
    return false;
  return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
         strcmp(v, "NULL") == 0;
}

/* A scalar or a sequence of scalars as a string vector (null -> empty). */
static int node_strings(yaml_document_t *doc, yaml_node_t *n, const char *name, const char *key,
                        char ***out, size_t *nout)
{
  *out = NULL;
  *nout = 0;
  if (n->type == YAML_SCALAR_NODE && scalar_is_null(n))
    return 0;
  size_t count = n->type == YAML_SCALAR_NODE ? 1
                 : n->type == YAML_SEQUENCE_NODE
                     ? (size_t)(n->data.sequence.items.top - n->data.sequence.items.start)
                     : 0;
  if (n->type == YAML_MAPPING_NODE)
    return zllm_error_set(ZLLM_EFORMAT, "%s: card-shape: '%s' must be a string or a list of strings",
                          name, key);
  if (count > CARD_LIST_MAX)
    return zllm_error_set(ZLLM_ELIMIT, "%s: card-shape: '%s' has more than %d items", name, key,
                          CARD_LIST_MAX);
  char **v = calloc(count ? count : 1, sizeof *v);
  if (!v)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; i < count; i++) {
    yaml_node_t *item =
        n->type == YAML_SCALAR_NODE ? n : yaml_document_get_node(doc, n->data.sequence.items.start[i]);
    if (!item || item->type != YAML_SCALAR_NODE) {
      zllm_strv_free(v, i);
      return zllm_error_set(ZLLM_EFORMAT, "%s: card-shape: '%s' item %zu is not a string", name, key, i);
    }
    if (!(v[i] = strdup((const char *)item->data.scalar.value))) {
      zllm_strv_free(v, i);
      return zllm_error_set(ZLLM_ENOMEM, "out of memory");
    }
  }
  *out = v;
  *nout = count;
  return 0;
}

/* A single-valued field: a scalar, or a list whose items are joined by ",". */
static int node_string(yaml_document_t *doc, yaml_node_t *n, const char *name, const char *key, char **out)
{
  char **v = NULL;
  size_t count = 0, total = 1;
  int rc = node_strings(doc, n, name, key, &v, &count);
  if (rc < 0 || count == 0)
    return rc;
  for (size_t i = 0; i < count; i++)
    total += strlen(v[i]) + 1;
  if (!(*out = calloc(1, total)))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < count; i++) {
    if (i)
      strcat(*out, ",");
    strcat(*out, v[i]);
  }
  zllm_strv_free(v, count);
  return rc;
}

static int card_field(zllm_card *c, yaml_document_t *doc, const char *key, yaml_node_t *val,
                      const char *name)
{
  char **dst = NULL;
  if (strcmp(key, "base_model") == 0) {
    if (c->base_models || c->nbase)
      return zllm_error_set(ZLLM_EFORMAT, "%s: card-shape: duplicate key 'base_model'", name);
    return node_strings(doc, val, name, key, &c->base_models, &c->nbase);
  }
  if (strcmp(key, "tags") == 0) {
    if (c->tags)
      return zllm_error_set(ZLLM_EFORMAT, "%s: card-shape: duplicate key 'tags'", name);
    return node_strings(doc, val, name, key, &c->tags, &c->ntags);
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
    return 0; /* other keys (datasets, language, widget...) are not needed */
  if (*dst)
    return zllm_error_set(ZLLM_EFORMAT, "%s: card-shape: duplicate key '%s'", name, key);
  return node_string(doc, val, name, key, dst);
}

static int card_from_document(zllm_card *c, yaml_document_t *doc, const char *name)
{
  yaml_node_t *root = yaml_document_get_root_node(doc);
  if (!root || (root->type == YAML_SCALAR_NODE && scalar_is_null(root)))
    return 0; /* empty front matter */
  if (root->type != YAML_MAPPING_NODE)
    return zllm_error_set(ZLLM_EFORMAT, "%s: card-shape: the front matter is not a mapping", name);
  for (yaml_node_pair_t *pair = root->data.mapping.pairs.start; pair < root->data.mapping.pairs.top;
       pair++) {
    yaml_node_t *k = yaml_document_get_node(doc, pair->key);
    yaml_node_t *v = yaml_document_get_node(doc, pair->value);
    if (!k || !v || k->type != YAML_SCALAR_NODE)
      continue; /* complex keys carry nothing we read */
    int rc = card_field(c, doc, (const char *)k->data.scalar.value, v, name);
    if (rc < 0)
      return rc;
  }
  return 0;
}

static int parse_yaml(zllm_card *c, const char *name, const char *yaml, size_t ylen)
{
  yaml_parser_t parser;
  yaml_document_t doc;
  int rc;
  if (!yaml_parser_initialize(&parser))
    return zllm_error_set(ZLLM_ENOMEM, "%s: out of memory for a YAML parser", name);
  yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, ylen);
  if (!yaml_parser_load(&parser, &doc)) {
    /* +2: the opening fence is line 1 of the file */
    rc = zllm_error_set(ZLLM_EFORMAT, "%s: yaml: line %zu: %s", name,
                        (size_t)parser.problem_mark.line + 2,
                        parser.problem ? parser.problem : "malformed YAML");
    yaml_parser_delete(&parser);
    return rc;
  }
  rc = card_from_document(c, &doc, name);
  yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
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
