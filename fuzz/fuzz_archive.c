/* Fuzz target: reading an archive somebody else wrote (verify, ls, --stages,
 * restore --all).  A small generated hub is packed once; each input is a list
 * of edits applied to a fresh copy of that archive's pack file and catalog:
 *
 *   op % 3 == 0  XOR up to 16 bytes into the pack at a chosen offset
 *   op % 3 == 1  set one catalog cell (table.column, row) to a number, a
 *                nearby number, a small id, NULL, or one of a list of words
 *   op % 3 == 2  reseal: recompute every blob's checksum (pack and catalog),
 *                so pack edits reach the stream and BitX decoders
 *
 * Inputs of odd length are also restored in full (restore checks the paths
 * the catalog names, which verify does not need).
 *
 * Whatever the edits: no crash, no leak, no unbounded allocation, and every
 * failure comes with a message.  When verify passes, every file was rebuilt
 * and matched the SHA-256 in the (edited) catalog. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>
#include <xxhash.h>

#include "zllm/archive.h"
#include "zllm/error.h"
#include "zllm/cluster.h"
#include "zllm/io.h"
#include "zllm/log.h"
#include "zllm/path.h"
#include "zllm/synth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define MAX_OPS 32

static char root[256];
static pid_t owner; /* the process that made root: AFL++'s forked children must not remove it */
static uint8_t *pack0, *cat0;
static size_t pack0_len, cat0_len;
static FILE *devnull;

static const char *const cells[][2] = {
    {"blobs", "offset"},    {"blobs", "len"},        {"blobs", "checksum"},   {"blobs", "pack"},
    {"packs", "committed_len"}, {"packs", "name"},   {"files", "size"},       {"files", "dup_of"},
    {"files", "header_blob"}, {"files", "method"},   {"files", "path"},       {"files", "sha256"},
    {"pieces", "len"},      {"pieces", "blob"},      {"pieces", "seq"},       {"tensors", "idx"},
    {"tensors", "dtype"},   {"tensors", "nelem"},    {"tensors", "len"},      {"tensors", "method"},
    {"tensors", "layout"},  {"tensors", "dup_of"},   {"tensors", "base"},     {"tensors", "depth"},
    {"tensors", "file"},    {"parts", "part"},       {"parts", "blob"},       {"parts", "tensor"},
    {"repos", "name"},      {"meta", "value"},
};
static const char *const words[] = {"dup", "bitx", "solo", "opaque", "tensors", "skipped", "BF16", "F16",
                                    "F32", "U8", "I64", "F8_E4M3", "field", "u16", "bytes", "",
                                    "../x", "a/../../b", "/etc/x", "pack-0001.zpk", "pack-0000.zpk", "zllm-1", "x"};

static void die(const char *what)
{
  fprintf(stderr, "fuzz-archive setup: %s: %s\n", what, zllm_error_last());
  abort();
}

static void cleanup(void)
{
  if (getpid() == owner)
    zllm_rm_rf(root);
}

static char *in_root(const char *rel)
{
  char *p = zllm_path_join(root, rel);
  if (!p)
    die("out of memory");
  return p;
}

static void slurp(const char *rel, uint8_t **out, size_t *len)
{
  char *p = in_root(rel);
  if (zllm_read_small_file((char **)out, len, p, (size_t)64 << 20) < 0)
    die(p);
  free(p);
}

/* A small hub with every kind of stored file: base, BitX fine-tunes (a chain,
 * a cast), a file dup, shards, an opaque file. */
static void setup(void)
{
  static const char *const drop[] = {"hub/beta-labs", "hub/betafans", "hub/codeco", "hub/frozenco", "hub/gammafans"};
  zllm_log_set_level(ZLLM_LOG_ERROR);
  const char *tmp = getenv("TMPDIR");
  if (snprintf(root, sizeof root, "%s/zllm-fuzz-archive.XXXXXX", tmp && *tmp ? tmp : "/tmp") >= (int)sizeof root)
    die("TMPDIR is too long");
  if (!mkdtemp(root))
    die("mkdtemp");
  owner = getpid();
  atexit(cleanup);
  zllm_mkhub_options mo = ZLLM_MKHUB_OPTIONS_INIT;
  mo.seed = 3;
  mo.scale = "tiny";
  mo.out = root;
  if (zllm_mkhub(&mo) < 0)
    die("mkhub");
  for (size_t i = 0; i < sizeof drop / sizeof *drop; i++) {
    char *p = in_root(drop[i]);
    zllm_rm_rf(p);
    free(p);
  }
  zllm_archive *a = NULL;
  zllm_pack_options o = ZLLM_PACK_OPTIONS_INIT;
  zllm_pack_stats s;
  char *hub = in_root("hub"), *ar = in_root("pristine");
  zllm_bases_options bo = ZLLM_BASES_OPTIONS_INIT;
  zllm_base_map *bases = NULL;
  zllm_hub *listed = NULL;
  if (zllm_hub_open_local(&listed, hub) < 0)
    die("hub");
  o.hub = bo.hub = listed;
  if (zllm_bases_choose(&bases, &bo) < 0)
    die("bases");
  o.bases = bases;
  if (zllm_archive_open(&a, ar, 1) < 0 || zllm_pack_hub(a, &o, &s) < 0)
    die("pack");
  zllm_base_map_free(bases);
  zllm_hub_free(listed);
  zllm_archive_close(a);
  /* the edits start from an archive that holds every kind of row and verifies */
  if (!s.tensors_bitx || !s.tensor_dups || !s.file_dups || !s.opaque_files || !s.tensors_solo)
    die("the generated hub lacks a kind of stored file");
  if (!(devnull = fopen("/dev/null", "w")))
    die("/dev/null");
  if (zllm_archive_open(&a, ar, 0) < 0 || zllm_archive_verify(a, devnull) < 0)
    die("verify of the pristine archive");
  zllm_archive_close(a);
  free(hub);
  free(ar);
  slurp("pristine/packs/pack-0000.zpk", &pack0, &pack0_len);
  slurp("pristine/catalog.sqlite", &cat0, &cat0_len);
}

static uint64_t le(const uint8_t *p, int n)
{
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

static void put_le64(uint8_t *p, uint64_t v)
{
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

/* One catalog cell set to a value the 8 bytes at `v` pick. */
static void edit_cell(sqlite3 *db, unsigned col, unsigned row, const uint8_t *v)
{
  const char *table = cells[col % (sizeof cells / sizeof *cells)][0];
  const char *column = cells[col % (sizeof cells / sizeof *cells)][1];
  uint64_t x = le(v, 8);
  int nearby = x % 5 == 1; /* off by a little from what is there */
  char *sql = sqlite3_mprintf("UPDATE %s SET %s = %s%s? WHERE rowid = (SELECT rowid FROM %s LIMIT 1 OFFSET %u)", table,
                              column, nearby ? column : "", nearby ? " + " : "", table, row);
  sqlite3_stmt *st = NULL;
  if (sql && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
    switch (x % 5) {
    case 0: sqlite3_bind_int64(st, 1, (sqlite3_int64)(x >> 3)); break;
    case 1: sqlite3_bind_int64(st, 1, (int8_t)(x >> 8)); break;
    case 2: sqlite3_bind_int64(st, 1, (sqlite3_int64)((x >> 8) % 300)); break;
    case 3: sqlite3_bind_null(st, 1); break;
    default: sqlite3_bind_text(st, 1, words[(x >> 8) % (sizeof words / sizeof *words)], -1, SQLITE_STATIC); break;
    }
    sqlite3_step(st);
  }
  sqlite3_finalize(st);
  sqlite3_free(sql);
}

/* Every blob's checksum recomputed from the (edited) pack, in its record and
 * its catalog row, so an edit is not caught at the first read. */
static void reseal(sqlite3 *db, uint8_t *pack, size_t pack_len)
{
  sqlite3_stmt *st = NULL, *up = NULL;
  sqlite3_prepare_v2(db, "SELECT id, offset, len FROM blobs", -1, &st, NULL);
  sqlite3_prepare_v2(db, "UPDATE blobs SET checksum = ? WHERE id = ?", -1, &up, NULL);
  while (st && up && sqlite3_step(st) == SQLITE_ROW) {
    uint64_t off = (uint64_t)sqlite3_column_int64(st, 1), n = (uint64_t)sqlite3_column_int64(st, 2);
    if (off > pack_len || n > pack_len - off || pack_len - off - n < 8)
      continue;
    uint64_t sum = XXH3_64bits(pack + off, n);
    put_le64(pack + off + n, sum);
    sqlite3_bind_int64(up, 1, (sqlite3_int64)sum);
    sqlite3_bind_int64(up, 2, sqlite3_column_int64(st, 0));
    sqlite3_step(up);
    sqlite3_reset(up);
  }
  sqlite3_finalize(st);
  sqlite3_finalize(up);
}

/* NULLs under an intact-looking schema: the schema text loses its NOT NULLs
 * while the cells are edited and gets them back after, as a hostile
 * catalog's author could do; the schema check at open then passes and only
 * the readers' checked column reads stand between a NULL and a crash.  (The
 * schema is re-read by the next connection, hence one for each step.) */
static void schema_text(const char *catalog, const char *from, const char *to)
{
  sqlite3 *db = NULL;
  char *sql = sqlite3_mprintf("PRAGMA writable_schema = ON; UPDATE sqlite_master SET sql = replace(sql, '%q', '%q')"
                              " WHERE type = 'table'; PRAGMA writable_schema = OFF;",
                              from, to);
  if (!sql || sqlite3_open(catalog, &db) != SQLITE_OK || sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
    abort();
  sqlite3_free(sql);
  sqlite3_close(db);
}

static void apply_edits(const char *catalog, uint8_t *pack, const uint8_t *data, size_t size)
{
  sqlite3 *db = NULL;
  schema_text(catalog, " NOT NULL", " /*nn*/  ");
  if (sqlite3_open(catalog, &db) != SQLITE_OK)
    abort();
  sqlite3_exec(db, "PRAGMA synchronous=OFF", NULL, NULL, NULL); /* a scratch copy: no fsync per input */
  for (int ops = 0; size > 0 && ops < MAX_OPS; ops++) {
    uint8_t op = data[0];
    if (op % 3 == 0 && size >= 6) {
      size_t at = (size_t)le(data + 1, 4) % pack0_len, n = (size_t)(data[5] % 16 + 1);
      n = n > size - 6 ? size - 6 : n;
      for (size_t i = 0; i < n && at + i < pack0_len; i++)
        pack[at + i] ^= data[6 + i];
      data += 6 + n, size -= 6 + n;
    } else if (op % 3 == 1 && size >= 11) {
      edit_cell(db, data[1], data[2], data + 3);
      data += 11, size -= 11;
    } else if (op % 3 == 2) {
      reseal(db, pack, pack0_len);
      data++, size--;
    } else
      break;
  }
  sqlite3_close(db);
  schema_text(catalog, " /*nn*/  ", " NOT NULL");
}

/* A fresh copy of the pristine archive in root/work. */
static void fresh_copy(uint8_t **pack)
{
  static const char *const gone[] = {"work/catalog.sqlite-wal", "work/catalog.sqlite-shm", "out"};
  for (size_t i = 0; i < sizeof gone / sizeof *gone; i++) {
    char *p = in_root(gone[i]);
    zllm_rm_rf(p);
    free(p);
  }
  char *packs = in_root("work/packs"), *cat = in_root("work/catalog.sqlite");
  if (zllm_mkdir_p(packs, 0755) < 0 || zllm_write_file_atomic(cat, cat0, cat0_len) < 0)
    die("copy");
  if (!(*pack = malloc(pack0_len)))
    abort();
  memcpy(*pack, pack0, pack0_len);
  free(packs);
  free(cat);
}

/* A file read as the Python package's safe_open reads it: nothing decoded
 * ahead, its safetensors header through the reader, then each tensor's
 * bytes alone. */
static void read_tensors(zllm_slice_store *st, zllm_archive *a, const char *repo, const char *path)
{
  static uint8_t buf[1 << 20];
  zllm_file_reader *r = NULL;
  zllm_st_header *h = NULL;
  zllm_error_clear();
  if (zllm_slice_store_reader(st, a, repo, path, &r) < 0) {
    if (!zllm_error_last()[0])
      abort();
    return;
  }
  zllm_file_reader_random(r);
  if (zllm_file_reader_st_header(r, &h) < 0) {
    if (!zllm_error_last()[0])
      abort();
    zllm_file_reader_close(r);
    return;
  }
  for (size_t t = h->ntensors; t-- > 0;) { /* last first: out of order */
    uint64_t off = h->data_start + h->tensors[t].begin, end = h->data_start + h->tensors[t].end;
    int64_t got = 1;
    for (; off < end && got > 0; off += (uint64_t)got)
      got = zllm_file_reader_read(r, off, buf, end - off < sizeof buf ? (size_t)(end - off) : sizeof buf);
    if (got < 0 && !zllm_error_last()[0])
      abort();
  }
  zllm_st_header_free(h);
  zllm_file_reader_close(r);
}

/* Every file read as `zllm serve` reads it: in slices from a slice store,
 * decoded alone from the chunks that hold them; and tensor by tensor. */
static void read_sliced(const char *dir)
{
  zllm_slice_store *st = NULL;
  zllm_archive *a = NULL; /* its own handle: closed before the store it borrows from */
  zllm_archive_repo *repos = NULL;
  size_t nr = 0;
  static uint8_t buf[1 << 20];
  zllm_error_clear();
  if (zllm_slice_store_open(&st, dir, (size_t)64 << 20, 1) < 0 || zllm_archive_open(&a, dir, 0) < 0 ||
      zllm_archive_repos(a, &repos, &nr) < 0) {
    if (!zllm_error_last()[0])
      abort();
    zllm_archive_close(a);
    zllm_slice_store_close(st);
    return;
  }
  for (size_t i = 0; i < nr; i++) {
    zllm_archive_file *files = NULL;
    size_t nf = 0;
    if (zllm_archive_files(a, repos[i].name, &files, &nf) < 0)
      continue;
    for (size_t k = 0; k < nf; k++) {
      zllm_file_reader *r = NULL;
      zllm_error_clear();
      if (zllm_slice_store_reader(st, a, repos[i].name, files[k].path, &r) < 0) {
        if (!zllm_error_last()[0])
          abort();
        continue;
      }
      int64_t got = 1;
      for (uint64_t off = 0; got > 0; off += (uint64_t)got)
        got = zllm_file_reader_read(r, off, buf, sizeof buf);
      if (got < 0 && !zllm_error_last()[0])
        abort();
      zllm_file_reader_close(r);
      read_tensors(st, a, repos[i].name, files[k].path);
    }
    zllm_archive_files_free(files, nf);
  }
  zllm_archive_repos_free(repos, nr);
  zllm_archive_close(a);
  zllm_slice_store_close(st);
}

/* Every reader over the edited archive; a failure must say something. */
static void read_all(const char *dir, const char *out, int restore)
{
  zllm_archive *a = NULL;
  uint64_t stages[4];
  zllm_error_clear();
  if (zllm_archive_open(&a, dir, 0) < 0 && !zllm_error_last()[0])
    abort();
  zllm_error_clear();
  if (a && zllm_archive_verify(a, devnull) < 0 && !zllm_error_last()[0])
    abort();
  if (a) {
    zllm_archive_ls(a, NULL, devnull);
    zllm_archive_stages(a, stages);
  }
  zllm_archive_close(a);
  if (a)
    read_sliced(dir);
  zllm_error_clear();
  if (restore && zllm_restore_all_threads(dir, out, 1, 0) < 0 && !zllm_error_last()[0])
    abort();
}

/* Before AFL++'s fork server starts: the hub is generated and packed once,
 * not in every forked child. (The replay driver does not call this.) */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  setup();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  uint8_t *pack = NULL;
  if (!root[0])
    setup();
  fresh_copy(&pack);
  char *dir = in_root("work"), *cat = in_root("work/catalog.sqlite"), *pk = in_root("work/packs/pack-0000.zpk");
  char *out = in_root("out");
  apply_edits(cat, pack, data, size);
  if (zllm_write_file_atomic(pk, pack, pack0_len) < 0)
    die("write pack");
  read_all(dir, out, size % 2); /* restore writes every file: half the inputs keep the rate up */
  free(pack);
  free(dir);
  free(cat);
  free(pk);
  free(out);
  return 0;
}
