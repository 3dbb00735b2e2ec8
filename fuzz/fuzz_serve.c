/* Fuzz target: what a client sends zllm serve — a request path, a Range
 * header against a file size, a paths-info body (JSON or form) — and what
 * an archive's names make of a repo's tree (newline-separated file paths,
 * then lookups).  The first byte picks which; the rest is the input.
 * (libmicrohttpd parses the HTTP framing; these are zllm's own parsers of
 * what it hands over.) */
#include <stdlib.h>
#include <string.h>

#include "serve/serve_internal.h"
#include "zllm/json.h"
#include "zllm/le.h"
#include "zllm/path.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every node of a built tree is where its lookups say: found by its path,
 * a child of its parent, inside the run of paths below each folder. */
static void check_tree(const zs_tree *t, size_t nfiles)
{
  const zs_node *root = zs_tree_find(t, "");
  size_t n = 0, end = 0;
  if (!root || !root->is_dir)
    abort();
  size_t first = zs_tree_below(t, root, &end);
  for (size_t i = first; i < end; i++) {
    const zs_node *v = zs_tree_node(t, i), *p = zs_tree_node(t, v->parent);
    if (zs_tree_find(t, v->path) == NULL || !p->is_dir)
      abort();
    const zs_node *const *kids = zs_tree_children(t, p, &n);
    size_t k = 0;
    while (k < n && kids[k] != v)
      k++;
    if (k == n)
      abort(); /* not among its folder's children */
    size_t plen = strlen(p->path), pe = 0, pf = p->path[0] ? zs_tree_below(t, p, &pe) : first;
    pe = p->path[0] ? pe : end;
    if (i < pf || i >= pe || (plen && (strncmp(v->path, p->path, plen) != 0 || v->path[plen] != '/')))
      abort(); /* outside the run below its folder */
    nfiles -= !v->is_dir;
  }
  if (nfiles != 0)
    abort(); /* a file lost */
}

/* Paths, one a line, as a repo's files (LFS-sized: their ids need no archive). */
static void fuzz_tree(char *text)
{
  zs_repo r;
  memset(&r, 0, sizeof r);
  snprintf(r.name, sizeof r.name, "org/fuzz");
  size_t cap = 1;
  for (const char *p = text; *p; p++)
    cap += *p == '\n';
  r.files = calloc(cap, sizeof *r.files);
  for (char *line = text, *next; r.files && line; line = next) {
    next = strchr(line, '\n');
    if (next)
      *next++ = '\0';
    int dup = 0;
    for (size_t i = 0; i < r.nfiles && !dup; i++)
      dup = strcmp(r.files[i].path, line) == 0;
    if (dup || zllm_path_check_relative(line, "fuzz") < 0 || !(r.files[r.nfiles].path = strdup(line)))
      continue;
    r.files[r.nfiles].id = (int64_t)r.nfiles + 1;
    r.files[r.nfiles++].size = (uint64_t)64 << 20;
  }
  /* a file may not also be a folder: as in a real repo, drop the file */
  for (size_t i = 0; i < r.nfiles; i++)
    for (size_t j = 0; j < r.nfiles; j++) {
      size_t l = strlen(r.files[i].path);
      if (i != j && strncmp(r.files[j].path, r.files[i].path, l) == 0 && r.files[j].path[l] == '/') {
        free(r.files[i].path);
        r.files[i] = r.files[--r.nfiles];
        i--;
        break;
      }
    }
  size_t nfiles = r.nfiles;
  zs_tree *t = NULL;
  if (zs_tree_build(NULL, NULL, &r, 1, &t) == 0) {
    check_tree(t, nfiles);
    zs_tree_release(NULL, t);
  }
  zs_repo_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  char *text = malloc(size); /* the rest as a C string, as the server gets it */
  if (!text)
    return 0;
  memcpy(text, data + 1, size - 1);
  text[size - 1] = '\0';
  switch (data[0] % 5) {
  case 4:
    fuzz_tree(text);
    break;
  case 0: {
    zs_route r;
    if (zs_route_parse(text, &r) == 0 && (strlen(r.repo) >= sizeof r.repo || strlen(r.path) >= sizeof r.path))
      abort();
    break;
  }
  case 1: {
    uint64_t fsize = size > 9 ? zllm_le64(data + 1) : 100, lo = 0, hi = 0;
    const char *h = size > 9 ? text + 8 : text;
    if (zs_range_parse(h, fsize, &lo, &hi) == 1 && (lo > hi || hi >= fsize))
      abort(); /* a range the response would read past the file with */
    break;
  }
  default: {
    char **paths = NULL;
    size_t n = 0;
    if (zs_paths_parse((const char *)data + 1, size - 1, data[0] % 5 == 3, &paths, &n) == 0)
      zllm_strv_free(paths, n);
    break;
  }
  }
  free(text);
  return 0;
}
