/* Private to survey/: the pairs the clustering compared, held by the ranks
 * that compared them.  The rank comparing a repo's pairs (its signature's
 * owner, or for a big signature the rank of the repo's chunk) spills them to
 * OUT/.survey/pairs-<rank>.bin as it compares them (zllm_pair records, hub
 * indices) and counts them per first repo; the counts summed over the ranks
 * give every pair's row in hub order, so every rank writes its own rows of
 * pairs.tsv and of stats.h5's /pairs where they belong, in bounded rounds.
 * No rank holds the pair list. */
#ifndef ZLLM_SURVEY_PAIRS_H
#define ZLLM_SURVEY_PAIRS_H

#include <stddef.h>
#include <stdint.h>

#include <mpi.h>

#include "zllm/cluster.h"

typedef struct sv_pairs sv_pairs;

/* A spill for this rank under `dir` (created), for a hub of `nrepos`
 * repos whose ids `names` (borrowed) name the pairs' rows.  Local. */
int sv_pairs_open(sv_pairs **out, const char *dir, int rank, char *const *names, size_t nrepos);
/* The sink zllm_cluster_hub_owned hands this rank's compared pairs to. */
int sv_pairs_sink(void *ctx, const zllm_pair *p, size_t n);
/* After the clustering: every pair's row from the counts of all ranks.
 * COLLECTIVE. */
int sv_pairs_settle(sv_pairs *s, MPI_Comm comm);
/* pairs.tsv at `path`, every rank writing its rows in place.  COLLECTIVE. */
int sv_pairs_write_tsv(sv_pairs *s, const char *path, MPI_Comm comm);

/* Every rank's pairs in rounds of at most `round`: fn gets a round's pairs
 * and each one's row (hub order); every rank gets the same number of calls
 * (n 0 when it has no more), so fn may write collectively.  COLLECTIVE. */
typedef int (*sv_pairs_round_fn)(void *ctx, const zllm_pair *p, const uint64_t *row, size_t n);
int sv_pairs_rounds(sv_pairs *s, size_t round, sv_pairs_round_fn fn, void *ctx, MPI_Comm comm);
/* The number of pairs, all ranks' (after sv_pairs_settle). */
uint64_t sv_pairs_total(const sv_pairs *s);
/* The name of repo i (borrowed). */
const char *sv_pairs_name(const sv_pairs *s, uint32_t i);

/* Removes the spill and frees; accepts NULL. */
void sv_pairs_free(sv_pairs *s);

#endif
