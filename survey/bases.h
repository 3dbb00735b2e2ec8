/* Private to survey/: pack's bases over the ranks, below the phases.  Pack
 * needs every repo's base on every rank (it visits bases before the repos
 * that use them, and claims whole families), but not the reason for it:
 * that text (the family row's decision in words, up to a KB per repo) is
 * only written into the catalog row of the repo, by the rank that packs
 * it.  So each rank chooses the bases of its home block (the family
 * table's part, cluster/parts.c), every rank gets every base (a repo index
 * each), the reasons stay with their homes, and after the pass each rank
 * asks the homes for the reasons of the repos it packed. */
#ifndef ZLLM_SURVEY_BASES_H
#define ZLLM_SURVEY_BASES_H

#include "survey/run.h"

/* run->bases from the family table's parts (run->families): every repo's
 * base, the reasons of this rank's home block.  COLLECTIVE. */
int sv_bases_choose(sv_run *run);
/* The reasons of the repos this rank packed (taken[i] 1, outside its home
 * block) asked of their homes and recorded in its staging archive `stage`.
 * COLLECTIVE. */
int sv_bases_explain(sv_run *run, const char *stage, const char *taken);

#endif
