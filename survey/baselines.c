/* The survey's --baselines: the same hub through the other methods, timed in
 * this run (see survey/phases.h). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "survey/phases.h"
#include "zllm/analyze.h"
#include "zllm/archive.h"
#include "zllm/error.h"
#include "zllm/io.h"
#include "zllm/json.h"
#include "zllm/log.h"
#include "zllm/mpi.h"
#include "zllm/path.h"

static int add(sv_run *run, const char *method, uint64_t stored, double seconds)
{
  run->baselines[run->nbaselines].method = method;
  run->baselines[run->nbaselines].stored = stored;
  run->baselines[run->nbaselines].seconds = seconds;
  run->nbaselines++;
  return 0;
}

/* One pack profile into a scratch archive, removed after it is measured. */
static int profile_run(sv_run *run, const zllm_family_table *families, zllm_pack_profile profile, const char *name)
{
  char *dir = zllm_path_join(run->opts.out, "baselines");
  char *sub = dir ? zllm_path_join(dir, name) : NULL;
  zllm_archive *a = NULL;
  zllm_pack_options po = ZLLM_PACK_OPTIONS_INIT;
  zllm_pack_stats ps;
  uint64_t stages[4] = {0};
  zllm_bases_options bo = ZLLM_BASES_OPTIONS_INIT;
  zllm_base_map *bases = NULL;
  po.hub = run->hub;
  po.profile = profile;
  bo.hub = run->hub;
  bo.table = families;
  bo.similarity = zllm_pack_profile_uses_bases(profile);
  int rc = sub ? zllm_bases_choose(&bases, &bo) : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  po.bases = bases;
  if (rc == 0 && access(sub, F_OK) == 0)
    rc = zllm_rm_rf(sub);
  double t0 = MPI_Wtime();
  rc = rc ? rc : zllm_archive_open(&a, sub, 1);
  rc = rc ? rc : zllm_pack_hub(a, &po, &ps);
  double t1 = MPI_Wtime();
  rc = rc ? rc : zllm_archive_stages(a, stages);
  zllm_archive_close(a);
  if (rc == 0)
    rc = add(run, name, stages[3], t1 - t0);
  if (sub && access(sub, F_OK) == 0)
    zllm_rm_rf(sub);
  if (dir)
    rmdir(dir);
  zllm_base_map_free(bases);
  free(sub);
  free(dir);
  return rc;
}

/* Every file's path at once (FastCDC dedups across the hub): the
 * baselines are a measurement for hubs a rank can hold. */
static int fastcdc_run(sv_run *run)
{
  char **paths = calloc(run->list.nfiles + 1, sizeof *paths);
  size_t n = 0;
  zllm_cdc_stats st;
  int rc = paths ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < run->list.nrepos; i++) {
    const zllm_repo *r = NULL;
    if (!run->hub->info[i].listed || zllm_hub_get(run->hub, i, &r) < 0)
      continue;
    for (size_t f = 0; rc == 0 && f < r->nfiles && n < run->list.nfiles; f++)
      if (!(paths[n++] = strdup(r->files[f].local_path)))
        rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
    zllm_hub_put(run->hub, i);
  }
  double t0 = MPI_Wtime();
  rc = rc ? rc : zllm_cdc_dedup_files((const char **)paths, n, &st);
  double t1 = MPI_Wtime();
  zllm_strv_free(paths, n);
  return rc ? rc : add(run, "FastCDC", st.unique_bytes, t1 - t0);
}

/* Rank 0: the baselines into summary.json's results, and a table. */
static int record(sv_run *run)
{
  char *path = zllm_path_join(run->opts.out, "summary.json");
  json_error_t err;
  json_t *root = path ? json_load_file(path, 0, &err) : NULL, *arr = json_array();
  uint64_t orig = run->reduction[0];
  int rc = root && arr ? 0 : zllm_error_set(ZLLM_EIO, "%s: cannot reread", path ? path : "summary.json");
  if (rc == 0 && !run->opts.quiet)
    printf("\n  %-14s %14s %9s %9s %10s\n", "method", "stored bytes", "saved", "seconds", "MB/s");
  for (size_t i = 0; rc == 0 && i < run->nbaselines; i++) {
    double s = run->baselines[i].seconds, mbps = s > 0 ? (double)orig / s / 1e6 : 0;
    double saved = orig ? 1.0 - (double)run->baselines[i].stored / (double)orig : 0;
    json_array_append_new(arr, json_pack("{s:s,s:I,s:f,s:f,s:f}", "method", run->baselines[i].method, "stored_bytes",
                                         (json_int_t)run->baselines[i].stored, "reduction", saved, "seconds", s,
                                         "mb_per_s", mbps));
    if (!run->opts.quiet)
      printf("  %-14s %14llu %8.1f%% %9.2f %10.1f\n", run->baselines[i].method,
             (unsigned long long)run->baselines[i].stored, 100 * saved, s, mbps);
  }
  if (rc == 0) {
    json_object_set(json_object_get(root, "results"), "baselines", arr);
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
    rc = text ? zllm_write_file_atomic(path, text, strlen(text)) : zllm_error_set(ZLLM_ENOMEM, "out of memory");
    free(text);
  }
  json_decref(arr);
  json_decref(root);
  free(path);
  return rc;
}

int sv_baselines(sv_run *run)
{
  zllm_family_table *families = NULL;
  run->nbaselines = 0;
  /* rank 0 packs the whole hub once per profile: it needs every family row */
  int rc = run->families ? zllm_family_table_share(&families, run->families, 0, run->comm) : 0;
  if (rc == 0 && run->rank == 0) {
    /* the hash stages come from the scan (or the pack's one pass), across all ranks */
    add(run, "file dedup", run->reduction[1], sv_read_seconds(run));
    add(run, "tensor dedup", run->reduction[2], sv_read_seconds(run));
    rc = fastcdc_run(run);
    rc = rc ? rc : profile_run(run, families, ZLLM_PROFILE_ZSTD, "zstd");
    rc = rc ? rc : profile_run(run, families, ZLLM_PROFILE_ZIPNN, "zipnn");
    rc = rc ? rc : profile_run(run, families, ZLLM_PROFILE_ZIPLLM, "zipllm");
    if (rc == 0 && run->packed)
      add(run, "zllm", run->stages[3], run->times[3]);
    rc = rc ? rc : record(run);
  }
  zllm_family_table_free(families);
  if (!zllm_mpi_alltrue(rc == 0, run->comm))
    return rc ? rc : zllm_error_set(ZLLM_ERROR, "rank 0 could not run the baselines");
  unsigned long long n = run->nbaselines;
  MPI_Bcast(&n, 1, MPI_UNSIGNED_LONG_LONG, 0, run->comm);
  run->nbaselines = (size_t)n;
  return 0;
}
