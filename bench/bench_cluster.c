/* zllm-bench-cluster: clustering cost on synthetic sketches, over MPI ranks.
 *
 *   mpirun -n R zllm-bench-cluster --models M [--family F] [--samples K] [--check]
 *
 * Every rank builds the same M sketches of one architecture: families of F
 * models (a base plus fine-tunes that keep most sign and exponent bits and
 * move low mantissa bits), a third of the fine-tunes naming their base in the
 * card, a third naming nothing and a third naming another family's base.
 * Prints the time to find candidates, compare and build families.  --check
 * exits 1 unless every model lands in its family with its base.  Deterministic. */
#include <getopt.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zllm/cluster.h"
#include "zllm/error.h"
#include "zllm/log.h"

static uint64_t mix(uint64_t x)
{
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

static char *name_of(size_t fam, size_t member)
{
  char buf[64];
  snprintf(buf, sizeof buf, "fam%07zu/%s%03zu", fam, member ? "ft" : "base", member);
  return strdup(buf);
}

/* A BF16 weight: random sign, exponent around 2^-6, random mantissa. */
static uint32_t base_value(uint64_t r)
{
  uint32_t sign = (uint32_t)(r & 1), exp = 118 + (uint32_t)((r >> 1) % 6), man = (uint32_t)((r >> 8) & 0x7f);
  return sign << 15 | exp << 7 | man;
}

/* A fine-tune: half the elements keep their bits, most others move in the
 * low mantissa bits, a few move further. */
static uint32_t tuned_value(uint32_t v, uint64_t r)
{
  unsigned roll = (unsigned)(r % 100);
  if (roll < 50)
    return v;
  if (roll < 90)
    return v ^ (uint32_t)((r >> 8) & 0x7);
  if (roll < 99)
    return v ^ (uint32_t)((r >> 8) & 0x7f);
  return v ^ (uint32_t)((r >> 8) & 0x3ff);
}

static zllm_sketch *make_sketch(size_t fam, size_t member, size_t nfam, uint32_t k)
{
  zllm_sketch *s = calloc(1, sizeof *s);
  if (!s || !(s->t = calloc(1, sizeof *s->t)) || !(s->samples = calloc(k, sizeof *s->samples)))
    return NULL;
  s->repo = name_of(fam, member);
  s->ntensors = 1;
  s->t[0] = (zllm_sketch_tensor){.name_hash = 1, .shape_hash = 2, .nelem = 1u << 20, .dtype = ZLLM_DT_BF16, .k = k};
  s->nsamples = k;
  s->sig = s->sig_shape = 42;
  s->step = -1;
  s->created = -1;
  for (uint32_t i = 0; i < k; i++) {
    uint32_t v = base_value(mix(fam * 1000003u + i));
    s->samples[i] = member ? tuned_value(v, mix((fam << 20) ^ (member << 40) ^ i)) : v;
  }
  if (member % 3 == 1)
    s->declared_base = name_of(fam, 0);
  else if (member % 3 == 2 && nfam > 1)
    s->declared_base = name_of((fam + 1) % nfam, 0); /* a wrong card */
  return s;
}

static int check(const zllm_family_table *t, size_t family)
{
  size_t bad = 0;
  for (size_t i = 0; i < t->n; i++) {
    const zllm_family_row *r = &t->rows[i];
    char want_family[64], want_base[64];
    size_t fam = strtoul(r->repo + 3, NULL, 10);
    snprintf(want_family, sizeof want_family, "fam%07zu/base000", fam);
    snprintf(want_base, sizeof want_base, "%s", strstr(r->repo, "/ft") ? want_family : "-");
    if (strcmp(r->family, want_family) != 0 || strcmp(r->base ? r->base : "-", want_base) != 0) {
      if (bad++ < 5)
        fprintf(stderr, "check: %s: family %s base %s (want %s, %s)\n", r->repo, r->family,
                r->base ? r->base : "-", want_family, want_base);
    }
  }
  size_t want_families = (t->n + family - 1) / family;
  if (t->nfamilies != want_families)
    fprintf(stderr, "check: %zu families, want %zu\n", t->nfamilies, want_families);
  return bad == 0 && t->nfamilies == want_families ? 0 : 1;
}

int main(int argc, char **argv)
{
  static const struct option longopts[] = {
    {"models", required_argument, NULL, 'm'}, {"family", required_argument, NULL, 'f'},
    {"samples", required_argument, NULL, 'k'}, {"check", no_argument, NULL, 'c'}, {NULL, 0, NULL, 0},
  };
  size_t models = 10000, family = 10;
  uint32_t k = 256;
  int do_check = 0, c, rank, size;
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  zllm_log_init(rank);
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
    case 'm': models = strtoul(optarg, NULL, 10); break;
    case 'f': family = strtoul(optarg, NULL, 10); break;
    case 'k': k = (uint32_t)strtoul(optarg, NULL, 10); break;
    case 'c': do_check = 1; break;
    default: MPI_Finalize(); return 2;
    }
  }
  if (models == 0 || family == 0 || k < ZLLM_CLUSTER_MIN_SAMPLES) {
    if (rank == 0)
      fprintf(stderr, "usage: zllm-bench-cluster --models M [--family F] [--samples K>=%d] [--check]\n",
              ZLLM_CLUSTER_MIN_SAMPLES);
    MPI_Finalize();
    return 2;
  }
  size_t nfam = (models + family - 1) / family;
  zllm_sketch **s = calloc(models, sizeof *s);
  double t0 = MPI_Wtime();
  for (size_t i = 0; s && i < models; i++)
    if (!(s[i] = make_sketch(i / family, i % family, nfam, k)))
      break;
  double t1 = MPI_Wtime();
  zllm_family_table *t = NULL;
  zllm_cluster_options o = ZLLM_CLUSTER_OPTIONS_INIT;
  int rc = s && s[models - 1] ? zllm_cluster_sketches_mpi(&t, s, models, &o, MPI_COMM_WORLD) : ZLLM_ENOMEM;
  double t2 = MPI_Wtime();
  int status = rc < 0 ? 1 : 0;
  if (rc < 0)
    fprintf(stderr, "zllm-bench-cluster: %s\n", zllm_error_last());
  else if (rank == 0)
    printf("sketches %zu  ranks %d  families %zu  pairs compared %zu (%.2f per model)  make %.2f s  cluster %.2f s\n",
           models, size, t->nfamilies, t->ncompared, (double)t->ncompared / (double)models, t1 - t0, t2 - t1);
  if (rc == 0 && do_check)
    status = check(t, family);
  zllm_family_table_free(t);
  for (size_t i = 0; s && i < models; i++)
    zllm_sketch_free(s[i]);
  free(s);
  MPI_Finalize();
  return status;
}
