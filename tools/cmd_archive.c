/* zllm pack / restore / cat-tensor / verify / ls: the archive commands. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cmds.h"
#include "zllm/archive.h"
#include "zllm/cluster.h"
#include "zllm/error.h"

void cmd_pack_usage(FILE *out)
{
  fprintf(out, "usage: zllm pack --hub DIR --out ARCHIVE [--families FILE.tsv | --bases-from-cards] [--threads N]\n"
               "                 [--profile P] [--format 1|2] [--verbose]\n\n"
               "Ingests every repo of the snapshot that ARCHIVE does not hold yet (created if absent):\n"
               "file dedup, tensor dedup (hits confirmed byte for byte), BitX against the base's tensor,\n"
               "field-aligned planes for the rest.  Bases come from bitwise similarity (as `zllm cluster`\n"
               "finds them); --families takes them from a families.tsv (its \"base\" column, or lines\n"
               "\"repo<TAB>base\"); --bases-from-cards takes the model cards' base_model when that repo is\n"
               "in the snapshot or the archive.  Each repo is stored whole or not at all.\n"
               "--profile zipllm|zipnn|zstd stores the same hub the way those baselines would (for the\n"
               "benchmark); the default is zllm.  --threads N codes the planes of a tensor in parallel.\n"
               "--format makes a new archive in that format (docs/FORMAT.md): 2, the default, codes tensor\n"
               "planes with rANS; 1 with zstd, readable by zllm builds before format 2.  An existing\n"
               "archive keeps its format (asking for another is an error).\n");
}

void cmd_restore_usage(FILE *out)
{
  fprintf(out, "usage: zllm restore ARCHIVE (--repo ORG/NAME [--file PATH] | --all) --out DIR [--threads N]\n"
               "                    [--keep-directory-symlink] [--stats]\n\n"
               "Writes the original files, byte-identical, to DIR/<org>/<name>/...; each file is checked\n"
               "against the SHA-256 recorded at ingest before it gets its final name.  --threads N\n"
               "decodes with N threads (default 1), the parts of one big file spread over all of them,\n"
               "while one more thread computes each file's SHA-256 (and takes writes when it is idle).\n"
               "--stats prints where the time went: each stage's thread-seconds and its rate per thread.\n"
               "A directory under DIR that is a symlink is not followed (an error naming it) unless\n"
               "--keep-directory-symlink is given; files are written through O_EXCL|O_NOFOLLOW temporary\n"
               "names.  A file that cannot be restored is named and the others are still written\n"
               "(exit status 1).\n");
}

void cmd_cat_tensor_usage(FILE *out)
{
  fprintf(out, "usage: zllm cat-tensor ARCHIVE --repo ORG/NAME --tensor NAME > FILE\n\n"
               "Writes the raw bytes of one tensor to stdout, decoding only that tensor (and its bases).\n");
}

void cmd_verify_usage(FILE *out)
{
  fprintf(out, "usage: zllm verify ARCHIVE\n\n"
               "Checks every blob's checksum and rebuilds every file to compare its SHA-256 with the one\n"
               "recorded at ingest.  Exit status 1 when anything fails.\n");
}

void cmd_ls_usage(FILE *out)
{
  fprintf(out, "usage: zllm ls ARCHIVE [--repo ORG/NAME | --stages]\n\n"
               "Lists files with original and stored bytes, the file's method and its tensors' methods.\n"
               "--stages prints the bytes left after each stage instead: original, file dedup, tensor\n"
               "dedup, BitX/solo coding (the stored total).\n");
}

typedef struct {
  const char *hub, *out, *families, *repo, *file, *tensor, *archive, *profile;
  int all, verbose, threads, cards, stages, keep_dir_links, format, stats;
} args;

static int parse(int argc, char **argv, args *a, void (*usage)(FILE *))
{
  static const struct option longopts[] = {
    {"hub", required_argument, NULL, 'H'},  {"out", required_argument, NULL, 'o'},
    {"families", required_argument, NULL, 'f'}, {"repo", required_argument, NULL, 'r'},
    {"file", required_argument, NULL, 'F'}, {"tensor", required_argument, NULL, 't'},
    {"all", no_argument, NULL, 'a'},        {"verbose", no_argument, NULL, 'v'},
    {"profile", required_argument, NULL, 'p'}, {"threads", required_argument, NULL, 'j'},
    {"format", required_argument, NULL, 'M'},
    {"bases-from-cards", no_argument, NULL, 'C'}, {"stages", no_argument, NULL, 'S'},
    {"keep-directory-symlink", no_argument, NULL, 'K'}, {"stats", no_argument, NULL, 's'},
    {NULL, 0, NULL, 0},
  };
  int c;
  optind = 1;
  memset(a, 0, sizeof *a);
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
    case 'H': a->hub = optarg; break;
    case 'o': a->out = optarg; break;
    case 'f': a->families = optarg; break;
    case 'r': a->repo = optarg; break;
    case 'F': a->file = optarg; break;
    case 't': a->tensor = optarg; break;
    case 'a': a->all = 1; break;
    case 'v': a->verbose = 1; break;
    case 'p': a->profile = optarg; break;
    case 'j': a->threads = atoi(optarg); break;
    case 'M': /* a format is a small number; anything else is refused, not read as 0 */
      a->format = strcmp(optarg, "1") == 0 ? 1 : strcmp(optarg, "2") == 0 ? 2 : -1;
      break;
    case 'C': a->cards = 1; break;
    case 'S': a->stages = 1; break;
    case 'K': a->keep_dir_links = 1; break;
    case 's': a->stats = 1; break;
    default: usage(stderr); return 2;
    }
  }
  if (optind < argc)
    a->archive = argv[optind++];
  if (optind != argc) {
    usage(stderr);
    return 2;
  }
  return 0;
}

static int fail(const char *cmd, zllm_archive *ar)
{
  fprintf(stderr, "zllm %s: %s\n", cmd, zllm_error_last());
  zllm_archive_close(ar);
  return 1;
}

static int archived(void *ctx, const char *repo)
{
  return zllm_archive_has_repo(ctx, repo);
}

int cmd_pack(int argc, char **argv)
{
  args a;
  zllm_archive *ar = NULL;
  zllm_pack_stats s;
  if (parse(argc, argv, &a, cmd_pack_usage) || !a.hub || !a.out || a.archive || (a.cards && a.families)) {
    cmd_pack_usage(stderr);
    return 2;
  }
  zllm_pack_options o = ZLLM_PACK_OPTIONS_INIT;
  zllm_bases_options bo = ZLLM_BASES_OPTIONS_INIT;
  zllm_base_map *bases = NULL;
  zllm_hub *hub = NULL;
  o.verbose = a.verbose;
  if (a.profile && zllm_pack_profile_parse(a.profile, &o.profile) < 0) {
    fprintf(stderr, "zllm pack: %s\n", zllm_error_last());
    return 2;
  }
  /* the bases are chosen here and handed to pack */
  bo.families = a.families;
  bo.from_cards = a.cards;
  bo.similarity = zllm_pack_profile_uses_bases(o.profile);
  bo.archived = archived;
  if (zllm_archive_open_format(&ar, a.out, 1, a.format) < 0 || zllm_archive_set_threads(ar, a.threads) < 0)
    return fail("pack", ar);
  bo.ctx = ar;
  /* the hub is listed once; base selection and pack both take the listing */
  if (zllm_hub_open_local(&hub, a.hub) < 0)
    return fail("pack", ar);
  o.hub = bo.hub = hub;
  int rc = zllm_bases_choose(&bases, &bo);
  o.bases = bases;
  rc = rc ? rc : zllm_pack_hub(ar, &o, &s);
  zllm_base_map_free(bases);
  zllm_hub_free(hub);
  if (rc < 0)
    return fail("pack", ar);
  printf("packed %llu repos (%llu skipped), %llu files: %llu -> %llu bytes (%.1f%%); %llu file dups, "
         "%llu tensor dups, %llu BitX, %llu solo, %llu opaque, %llu problems\n",
         (unsigned long long)s.repos, (unsigned long long)s.repos_skipped, (unsigned long long)s.files,
         (unsigned long long)s.bytes_in, (unsigned long long)s.bytes_stored,
         s.bytes_in ? 100.0 * (double)s.bytes_stored / (double)s.bytes_in : 0.0, (unsigned long long)s.file_dups,
         (unsigned long long)s.tensor_dups, (unsigned long long)s.tensors_bitx, (unsigned long long)s.tensors_solo,
         (unsigned long long)s.opaque_files, (unsigned long long)s.problems);
  zllm_archive_close(ar);
  return s.repos_skipped ? 1 : 0;
}

/* The read-only commands: open the archive, do one thing, close it. */
typedef int (*reader_fn)(zllm_archive *ar, const args *a);

static int with_reader(const char *cmd, const args *a, reader_fn fn)
{
  zllm_archive *ar = NULL;
  if (zllm_archive_open(&ar, a->archive, 0) < 0 || zllm_archive_set_threads(ar, a->threads) < 0 || fn(ar, a) < 0)
    return fail(cmd, ar);
  zllm_archive_close(ar);
  return 0;
}

static int do_cat_tensor(zllm_archive *ar, const args *a)
{
  int rc = zllm_cat_tensor(ar, a->repo, a->tensor, stdout);
  if (rc == 0 && fflush(stdout) != 0)
    rc = zllm_error_set(ZLLM_EIO, "stdout: write failed");
  return rc;
}

static int do_verify(zllm_archive *ar, const args *a)
{
  (void)a;
  return zllm_archive_verify(ar, stdout);
}

static int do_ls(zllm_archive *ar, const args *a)
{
  return a->stages ? zllm_archive_print_stages(ar, stdout) : zllm_archive_ls(ar, a->repo, stdout);
}

/* Where a restore's time went, per stage, in thread-seconds and the rate
 * each stage would reach alone on one thread. */
static void print_read_stats(const zllm_read_stats *st)
{
  double mb = (double)st->bytes / 1e6;
#define RATE(t) ((t) > 0 ? mb / (t) : 0.0)
  fprintf(stderr,
          "zllm restore: %.0f MB in %.2f s (%.0f MB/s) on %d decode thread%s and 1 hash thread, %llu blocks\n"
          "zllm restore: stage       thread-s   MB/s per thread-second\n"
          "zllm restore: decode      %8.2f   %8.0f\n"
          "zllm restore:   planes    %8.2f   %8.0f\n"
          "zllm restore:   merge+xor %8.2f   %8.0f\n"
          "zllm restore: write       %8.2f   %8.0f\n"
          "zllm restore: sha-256     %8.2f   %8.0f\n"
          "zllm restore: idle: decoders waiting for a buffer %.2f s, the hash thread waiting for a block %.2f s\n",
          mb, st->wall, st->wall > 0 ? mb / st->wall : 0.0, st->workers, st->workers == 1 ? "" : "s",
          (unsigned long long)st->blocks, st->decode, RATE(st->decode), st->planes, RATE(st->planes), st->merge,
          RATE(st->merge), st->put, RATE(st->put), st->hash, RATE(st->hash), st->wait_slot, st->wait_hash);
#undef RATE
}

int cmd_restore(int argc, char **argv)
{
  args a;
  if (parse(argc, argv, &a, cmd_restore_usage) || !a.archive || !a.out || (!a.repo == !a.all) ||
      (a.file && !a.repo)) {
    cmd_restore_usage(stderr);
    return 2;
  }
  zllm_restore_opts o = {a.repo, a.file, a.out, a.threads, a.keep_dir_links ? ZLLM_RESTORE_KEEP_DIR_SYMLINKS : 0};
  zllm_read_stats st = {0};
  int rc = zllm_restore(a.archive, &o, &st);
  if (a.stats && st.wall > 0)
    print_read_stats(&st);
  return rc < 0 ? fail("restore", NULL) : 0;
}

int cmd_cat_tensor(int argc, char **argv)
{
  args a;
  if (parse(argc, argv, &a, cmd_cat_tensor_usage) || !a.archive || !a.repo || !a.tensor) {
    cmd_cat_tensor_usage(stderr);
    return 2;
  }
  return with_reader("cat-tensor", &a, do_cat_tensor);
}

int cmd_verify(int argc, char **argv)
{
  args a;
  if (parse(argc, argv, &a, cmd_verify_usage) || !a.archive) {
    cmd_verify_usage(stderr);
    return 2;
  }
  return with_reader("verify", &a, do_verify);
}

int cmd_ls(int argc, char **argv)
{
  args a;
  if (parse(argc, argv, &a, cmd_ls_usage) || !a.archive) {
    cmd_ls_usage(stderr);
    return 2;
  }
  return with_reader("ls", &a, do_ls);
}
