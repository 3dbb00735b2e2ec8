/* zllm/cluster.h - model families by bitwise similarity (docs/CLUSTER.md).
 *
 * A sketch is what one model contributes: its architecture signatures and a
 * deterministic sample of its float elements.  The positions of a tensor's
 * samples come from a hash of the tensor's name and its element count, so a
 * model is sketched alone, in one pass, file by file (shards included), and
 * any two sketches of the same architecture compare without rereading
 * weights.  Comparison gives a bit distance (mean Hamming distance per
 * element on the BF16 view), the fraction of bitwise-identical elements, and
 * for each direction the estimated delta cost (mean significant bits of the
 * XOR after casting the base to the model's dtype, as cast-aware BitX does).
 *
 * Families are the connected components of "distance <= threshold" among
 * candidate pairs (found by banding the sketches, never all pairs); inside a
 * family an order is derived from the model cards, training steps and the
 * bits, and each model takes as base the preceding relative with the
 * smallest delta cost.
 *
 * Local calls except zllm_cluster_sketches_mpi and zllm_cluster_hub_mpi,
 * which are COLLECTIVE over their communicator.
 */
#ifndef ZLLM_CLUSTER_H
#define ZLLM_CLUSTER_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "zllm/basemap.h"
#include "zllm/buf.h"
#include "zllm/dtype.h"
#include "zllm/hub.h"
#include "zllm/safetensors.h"

#define ZLLM_SKETCH_K 64              /* samples per float tensor (default) */
#define ZLLM_CLUSTER_THRESHOLD 4.6    /* bits per element on the BF16 view (docs/CLUSTER.md) */
#define ZLLM_CLUSTER_MIN_SAMPLES 128  /* fewer compared samples: no verdict (sampling noise) */

typedef struct {
  uint64_t name_hash; /* XXH3-64 of the tensor name */
  uint64_t shape_hash; /* of the name and the shape */
  uint64_t nelem;
  zllm_dtype dtype;
  uint32_t k;         /* samples taken (0 for non-float tensors) */
} zllm_sketch_tensor;

typedef struct {
  char *repo;
  uint64_t sig;         /* names, shapes and dtypes */
  uint64_t sig_shape;   /* names and shapes only: an F32 upload meets its BF16 relatives */
  size_t ntensors;
  zllm_sketch_tensor *t; /* sorted by name hash, then nelem */
  size_t nsamples;
  uint32_t *samples;    /* raw bits (16-bit dtypes in the low half), tensor by tensor */
  char *declared_base;  /* the card's first base_model, or NULL */
  int64_t step;         /* trainer_state.json global_step, or -1 */
  int64_t created;      /* createdAt recorded by a crawl (seconds since 1970), or -1 */
  uint64_t bytes;       /* weight bytes sketched */
  char *problem;        /* why the model could not be sketched, or NULL */
} zllm_sketch;

/* One file's part of a sketch: samples of its float tensors.  `fd` is open
 * on the file whose header is `h`; `k` samples per tensor (<= nelem). */
int zllm_sketch_file(zllm_sketch **out, const zllm_st_header *h, int fd, uint32_t k);
/* Merges file parts (any order) into a model sketch and computes the
 * signatures; the parts are consumed (freed) even on error. */
int zllm_sketch_merge(zllm_sketch **out, const char *repo, zllm_sketch **parts, size_t nparts);
/* Sketches a whole repo (its safetensors files) and reads its card and
 * trainer_state.json.  A repo without usable weights gets a sketch with
 * `problem` set and no tensors. */
int zllm_sketch_repo(zllm_sketch **out, zllm_source *src, const zllm_repo *repo, uint32_t k);
void zllm_sketch_free(zllm_sketch *s); /* accepts NULL */

/* Binary records for MPI messages (zllm/buf.h); decode validates sizes. */
int zllm_sketch_encode(zllm_buf *b, const zllm_sketch *s);
int zllm_sketch_decode(zllm_reader *r, zllm_sketch **out);

typedef struct {
  uint32_t n;           /* samples compared */
  double distance;      /* mean Hamming bits per element, BF16 view (0..16) */
  double identical;     /* fraction equal at the common precision */
  double cost_ab;       /* mean significant XOR bits of a given b (a's dtype) */
  double cost_ba;
} zllm_pair_metrics;

/* 0, or ZLLM_ENOTFOUND when the signatures differ or too few samples align. */
int zllm_sketch_compare(const zllm_sketch *a, const zllm_sketch *b, zllm_pair_metrics *m);

typedef struct {
  uint32_t a, b; /* indices into the sketch array, a < b */
  zllm_pair_metrics m;
} zllm_pair;

typedef struct {
  unsigned bands;     /* LSH bands per sketch (at least; more for large hubs) */
  unsigned per_band;  /* sign bits hashed per band (at least; more for large hubs) */
  unsigned bucket_cap;/* a larger bucket pairs each member with this many others */
  unsigned exhaustive_max; /* architectures with at most this many models: all pairs */
} zllm_lsh_options;

#define ZLLM_LSH_OPTIONS_INIT {32, 20, 48, 64}

/* Candidate pairs among sketches of the same shape signature: those sharing
 * a band key (per_band sign bits of sampled elements), plus (model, declared
 * base) pairs, plus every pair of an architecture with at most exhaustive_max
 * models.  Sorted, unique.  Cost about M log M in the number of sketches. */
int zllm_cluster_candidates(zllm_sketch *const *s, size_t n, const zllm_lsh_options *o, uint32_t (**pairs)[2],
                            size_t *npairs);

typedef enum {
  ZLLM_DECIDE_SOLO,      /* no relative in the hub */
  ZLLM_DECIDE_ROOT,      /* first of its family: stored without a base */
  ZLLM_DECIDE_CARD,      /* the card's base_model, confirmed by the bits */
  ZLLM_DECIDE_NEARER,    /* the card's base is a relative, another one is closer */
  ZLLM_DECIDE_OVERRIDE,  /* the card's base is not a relative by the bits */
  ZLLM_DECIDE_BITS,      /* no card base: found by the bits */
  ZLLM_DECIDE_NONE       /* could not be sketched */
} zllm_decision;

const char *zllm_decision_name(zllm_decision d);

typedef struct {
  char *repo;
  char *family;         /* the family's first model (its root) */
  char *base;           /* chosen base, or NULL */
  char *declared_base;  /* card, or NULL */
  double distance, identical, cost; /* to the chosen base (-1 when none) */
  zllm_decision decision;
  char *reason;
  int64_t created;      /* createdAt recorded by a crawl (seconds since 1970), or -1 */
} zllm_family_row;

typedef struct {
  zllm_family_row *rows; /* sorted by repo */
  size_t n;
  size_t first;          /* a part (zllm_cluster_hub_owned): rows are the hub's repos [first, first + n) */
  size_t total;          /* the rows of the whole table (every part's n summed) */
  size_t nfamilies;
  size_t ncompared;      /* pairs compared */
  zllm_pair *pairs;      /* the compared pairs, indices into `names` */
  char **names;          /* repo ids in sketch order */
  size_t nnames;
} zllm_family_table;

typedef struct {
  double threshold;
  zllm_lsh_options lsh;
  int all_pairs; /* compare every same-architecture pair (calibration; quadratic) */
} zllm_cluster_options;

#define ZLLM_CLUSTER_OPTIONS_INIT {ZLLM_CLUSTER_THRESHOLD, ZLLM_LSH_OPTIONS_INIT, 0}

/* Families and bases from sketches and the metrics of the candidate pairs. */
int zllm_cluster_families(zllm_family_table **out, zllm_sketch *const *s, size_t n, const zllm_pair *pairs,
                          size_t npairs, const zllm_cluster_options *o);
/* Candidates + comparisons + families, in this process (threads). */
int zllm_cluster_sketches(zllm_family_table **out, zllm_sketch *const *s, size_t n, const zllm_cluster_options *o);
/* The same with the comparisons split over the ranks of `comm`; every rank
 * must pass the same sketches and gets the same table.  COLLECTIVE. */
int zllm_cluster_sketches_mpi(zllm_family_table **out, zllm_sketch *const *s, size_t n,
                              const zllm_cluster_options *o, MPI_Comm comm);
/* Receives compared pairs, `a` < `b` hub indices (zllm_hub.ids), in (a, b)
 * order within one signature's calls. */
typedef int (*zllm_pair_sink)(void *ctx, const zllm_pair *pairs, size_t n);

/* Families of a listed hub (the same listing on every rank) by
 * architecture signature: each rank sketches its share of the repos (by
 * bytes) and sends each sketch to the rank owning its shape signature,
 * which compares and clusters that signature alone, in bounded rounds,
 * handing every pair it compared to `sink` (NULL: none).  Each row then
 * goes to its repo's home: every rank gets its part of the table (the
 * block zllm_family_part_range names; nfamilies, ncompared and total are
 * the whole table's), asks the homes for other rows (zllm_family_rows_ask)
 * and gathers the whole table only where it must (zllm_family_table_share).
 * The table holds no pairs (ncompared counts them all).  No rank holds
 * another signature's sketches, a whole pair list or the whole table.
 * COLLECTIVE. */
int zllm_cluster_hub_owned(zllm_family_table **out, const zllm_hub *hub, const zllm_cluster_options *o,
                           zllm_pair_sink sink, void *sink_ctx, MPI_Comm comm);
/* ---- the table in parts (cluster/parts.c) ---------------------------------- */

/* The block of the hub's `nrepos` repos (hub order) whose family rows live
 * on `rank` of `size`: [*lo, *hi).  The blocks follow one another in rank
 * order, so the parts' rows in rank order are the whole table's. */
void zllm_family_part_range(size_t nrepos, int size, int rank, size_t *lo, size_t *hi);
/* The rank whose part holds repo `repo`'s row. */
int zllm_family_part_home(size_t repo, size_t nrepos, int size);
/* The rows of hub repos `repos` (n indices, any order, repeats allowed),
 * asked of their homes: a table holding just those rows (sorted by repo;
 * the counts are the whole table's).  COLLECTIVE: every rank calls it, with
 * its own list (n may be 0). */
int zllm_family_rows_ask(zllm_family_table **out, const zllm_family_table *part, const size_t *repos, size_t n,
                         MPI_Comm comm);
/* The whole table from the parts, on rank `root` (-1: on every rank; *out
 * is NULL on the others), for the callers that need every row at once.
 * COLLECTIVE. */
int zllm_family_table_share(zllm_family_table **out, const zllm_family_table *part, int root, MPI_Comm comm);
/* Every repo's family as the hub index of its first model (the repo itself
 * when it is alone or could not be sketched): 4 bytes per repo, on every
 * rank; the caller frees *out.  COLLECTIVE. */
int zllm_family_roots(uint32_t **out, const zllm_family_table *part, const zllm_hub *hub, MPI_Comm comm);

/* zllm_cluster_hub_owned with every compared pair gathered into the table
 * on every rank (names: the hub's ids), for hubs whose pair list fits in a
 * rank.  COLLECTIVE; MPI_COMM_SELF works alone. */
int zllm_cluster_hub_mpi(zllm_family_table **out, const zllm_hub *hub, const zllm_cluster_options *o, MPI_Comm comm);

/* The same in this process alone (no MPI calls): what `zllm pack` uses. */
int zllm_cluster_hub(zllm_family_table **out, const zllm_hub *hub, const zllm_cluster_options *o);

/* ---- bases for pack ------------------------------------------------------ */

/* Where pack's bases come from.  `families` (a families.tsv with a "base"
 * column, or "repo<TAB>base" lines) overrides the rest; else, with
 * `similarity`, the families by bitwise similarity (`table` when the caller
 * clustered already, else zllm_cluster_hub on `hub`); then the model cards'
 * base_model for repos still without one (with `from_cards`, the cards
 * alone), when that repo is in the snapshot or `archived` says it is in the
 * archive.  After clustering, a card only names a base the bits could not
 * judge. */
typedef struct {
  const zllm_hub *hub; /* the listed hub (borrowed) */
  const char *families;
  int similarity;
  int from_cards;
  const zllm_family_table *table;
  int (*archived)(void *ctx, const char *repo); /* 1 when the archive holds repo; NULL: none does */
  void *ctx;
  size_t lo, hi; /* choose for the hub's repos [lo, hi) alone (a part's home block); hi 0: all */
} zllm_bases_options;

#define ZLLM_BASES_OPTIONS_INIT {NULL, NULL, 1, 0, NULL, NULL, NULL, 0, 0}

/* The base map of every repo of the listed hub `hub` (zllm/basemap.h); the
 * caller frees it with zllm_base_map_free.  Local. */
int zllm_bases_choose(zllm_base_map **out, const zllm_bases_options *o);

/* families.tsv: header line, then one row per repo (see docs/CLUSTER.md). */
int zllm_family_table_write(const zllm_family_table *t, const char *path);
/* families.tsv's header line, and one row of it (what a part's home writes). */
extern const char zllm_families_tsv_header[];
int zllm_family_row_put(zllm_buf *b, const zllm_family_row *r);
/* pairs.tsv's header line, and one row of it (pair a, b). */
extern const char zllm_pairs_tsv_header[];
int zllm_pair_row_put(zllm_buf *b, const char *a, const char *other, const zllm_pair_metrics *m);
/* pairs.tsv: every compared pair with its metrics and verdict. */
int zllm_family_table_write_pairs(const zllm_family_table *t, const char *path);
const zllm_family_row *zllm_family_table_find(const zllm_family_table *t, const char *repo);
void zllm_family_table_free(zllm_family_table *t); /* accepts NULL */

#endif
