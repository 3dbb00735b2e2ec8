/* Base selection for pack (zllm_bases_choose, zllm/cluster.h): a families
 * file, else bitwise similarity, and the model cards where those left a
 * repo without a base.  The result is a zllm_base_map that pack reads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zllm/cluster.h"
#include "zllm/error.h"
#include "zllm/hub.h"
#include "zllm/io.h"
#include "zllm/json.h"
#include "zllm/log.h"

typedef struct {
  const zllm_bases_options *o;
  zllm_base_map *m;
  int cards_judge_all;
  size_t lo, hi; /* the repos chosen for */
} bases_ctx;

/* ---- --families ---------------------------------------------------------------- */

/* The column named "base" in a header line, else the second column. */
static int base_column(const char *header)
{
  int col = 0;
  for (const char *p = header; p; p = strchr(p, '\t'), p = p ? p + 1 : NULL, col++)
    if (strncmp(p, "base", 4) == 0 && (p[4] == '\t' || p[4] == '\0' || p[4] == '\r'))
      return col;
  return 1;
}

static char *tsv_field(char *line, int col)
{
  for (int i = 0; line && i < col; i++) {
    line = strchr(line, '\t');
    line = line ? line + 1 : NULL;
  }
  if (line)
    line[strcspn(line, "\t\r")] = '\0';
  return line;
}

static int load_families(bases_ctx *c)
{
  char *text = NULL;
  size_t len = 0;
  int col = 1;
  int rc = zllm_read_small_file(&text, &len, c->o->families, (size_t)256 << 20);
  for (char *line = text, *next; rc == 0 && line && *line; line = next) {
    next = strchr(line, '\n');
    if (next)
      *next++ = '\0';
    if (strncmp(line, "repo\t", 5) == 0) {
      col = base_column(line);
      continue;
    }
    if (line[0] == '#' || !strchr(line, '\t'))
      continue;
    char *base = tsv_field(line, col);
    line[strcspn(line, "\t")] = '\0';
    long i = zllm_base_map_index(c->m, line);
    if (i >= (long)c->lo && i < (long)c->hi && base && base[0] && strcmp(base, "-") != 0 && strcmp(base, line) != 0)
      rc = zllm_base_map_set(c->m, (size_t)i, base, "families file");
  }
  free(text);
  return rc;
}

/* ---- bitwise similarity ---------------------------------------------------------- */

static int table_bases(bases_ctx *c, const zllm_family_table *t)
{
  int rc = 0;
  for (size_t i = c->lo; rc == 0 && i < c->hi; i++) {
    const zllm_family_row *r = zllm_family_table_find(t, c->m->e[i].repo);
    char why[1200];
    if (!r)
      continue;
    snprintf(why, sizeof why, "bits (%s): %s", zllm_decision_name(r->decision), r->reason);
    rc = r->base ? zllm_base_map_set(c->m, i, r->base, why) : 0;
    c->m->e[i].judged = r->decision != ZLLM_DECIDE_NONE;
  }
  return rc;
}

/* A failure to cluster leaves the cards to decide. */
static int cluster_bases(bases_ctx *c)
{
  zllm_family_table *t = NULL;
  zllm_cluster_options co = ZLLM_CLUSTER_OPTIONS_INIT;
  if (c->o->table)
    return table_bases(c, c->o->table);
  if (zllm_cluster_hub(&t, c->o->hub, &co) < 0) {
    if (zllm_error_last_code() == ZLLM_ENOMEM)
      return ZLLM_ENOMEM;
    ZLLM_WARN("pack: clustering failed, using the model cards: %s", zllm_error_last());
    c->cards_judge_all = 1;
    return 0;
  }
  int rc = table_bases(c, t);
  zllm_family_table_free(t);
  return rc;
}

/* ---- model cards ------------------------------------------------------------------ */

/* The card's base when nothing else chose one.  After clustering, only a
 * base outside the snapshot (already archived) is taken on the card's word:
 * the bits could not judge it, and pack's sampled entropy check still can. */
static int card_bases(bases_ctx *c)
{
  int rc = 0;
  for (size_t i = c->lo; rc == 0 && i < c->hi; i++) {
    zllm_base_entry *e = &c->m->e[i];
    long at = zllm_hub_find(c->o->hub, e->repo);
    const zllm_hub_info *in = at >= 0 ? &c->o->hub->info[at] : NULL;
    if (e->base || !in || !in->listed)
      continue;
    if (in->card_base) {
      const char *b = in->card_base;
      int in_hub = zllm_base_map_index(c->m, b) >= 0;
      int archived = c->o->archived ? c->o->archived(c->o->ctx, b) : 0;
      char why[512];
      int usable = strcmp(b, e->repo) != 0 && (in_hub || archived);
      if (usable && in_hub && e->judged && !c->cards_judge_all)
        usable = 0; /* the bits rejected it: keep their verdict */
      if (usable) {
        rc = zllm_base_map_set(c->m, i, b, "model card");
      } else if (!e->why) {
        snprintf(why, sizeof why, "model card names %s: not in the snapshot or the archive", b);
        rc = zllm_base_map_set(c->m, i, NULL, why);
      }
    }
  }
  return rc;
}

int zllm_bases_choose(zllm_base_map **out, const zllm_bases_options *o)
{
  bases_ctx c = {.o = o};
  *out = NULL;
  int rc = o->hub ? zllm_base_map_new(&c.m, o->hub->ids, o->hub->n) : zllm_error_set(ZLLM_EINVAL, "bases: no hub");
  c.cards_judge_all = o->from_cards || o->families;
  c.lo = o->hi ? o->lo : 0;
  c.hi = !o->hub ? 0 : o->hi ? (o->hi < o->hub->n ? o->hi : o->hub->n) : o->hub->n;
  if (rc == 0 && o->families)
    rc = load_families(&c);
  else if (rc == 0 && !o->from_cards && o->similarity)
    rc = cluster_bases(&c);
  rc = rc ? rc : card_bases(&c);
  if (rc == 0)
    *out = c.m;
  else
    zllm_base_map_free(c.m);
  return rc;
}
