/* pack/catalog.c and pack/restore.c: how an archive comes into being, and
 * what a reader refuses in one it did not write. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "pack/archive_internal.h"
#include "zllm/archive.h"
#include "zllm/error.h"
#include "zllm/cluster.h"
#include "zllm/io.h"
#include "zllm/le.h"
#include "zllm/path.h"
#include "zllm/synth.h"

static char root[64];

static int make_root(void **state)
{
  (void)state;
  snprintf(root, sizeof root, "/tmp/zllm-test-archive.XXXXXX");
  return mkdtemp(root) ? 0 : -1;
}

static int remove_root(void **state)
{
  (void)state;
  return zllm_rm_rf(root);
}

static char *at(const char *rel)
{
  char *p = zllm_path_join(root, rel);
  assert_non_null(p);
  return p;
}

static int exists(const char *rel)
{
  char *p = at(rel);
  int yes = access(p, F_OK) == 0;
  free(p);
  return yes;
}

/* A pack killed before its new catalog was renamed into place leaves
 * catalog.sqlite.new: readers find no archive, the next pack starts over. */
static void test_create_over_leftover(void **state)
{
  (void)state;
  zllm_archive *a = NULL;
  char *dir = at("ar"), *leftover = at("ar/catalog.sqlite.new");
  assert_int_equal(zllm_mkdir_p(dir, 0755), 0);
  assert_int_equal(zllm_write_file_atomic(leftover, "half a catalog", 14), 0);

  assert_int_equal(zllm_archive_open(&a, dir, 0), ZLLM_ENOTFOUND);
  assert_null(a);
  assert_non_null(strstr(zllm_error_last(), "no catalog.sqlite: not a zllm archive"));

  assert_int_equal(zllm_archive_open(&a, dir, 1), 0);
  zllm_archive_close(a);
  assert_true(exists("ar/catalog.sqlite"));
  assert_false(exists("ar/catalog.sqlite.new"));
  assert_true(exists("ar/packs/pack-0000.zpk"));

  /* a new archive is complete and empty: it opens read-only and verifies */
  FILE *devnull = fopen("/dev/null", "w");
  assert_int_equal(zllm_archive_open(&a, dir, 0), 0);
  assert_int_equal(zllm_archive_verify(a, devnull), 0);
  zllm_archive_close(a);
  fclose(devnull);
  free(dir);
  free(leftover);
}

/* An archive without the format row is refused by name, not read. */
static void test_refuses_other_format(void **state)
{
  (void)state;
  zllm_archive *a = NULL;
  sqlite3 *db = NULL;
  char *dir = at("ar-format"), *cat = at("ar-format/catalog.sqlite");
  assert_int_equal(zllm_archive_open(&a, dir, 1), 0);
  zllm_archive_close(a);
  assert_int_equal(sqlite3_open(cat, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "UPDATE meta SET value = 'zllm-999' WHERE key = 'format'", NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(db);
  assert_int_equal(zllm_archive_open(&a, dir, 0), ZLLM_EFORMAT);
  assert_non_null(strstr(zllm_error_last(), "archive format zllm-999"));
  free(dir);
  free(cat);
}

/* Formats: a new archive is the newest; --format 1 makes the old one; an
 * archive keeps its format; a newer archive never merges into an older one
 * (its blobs would hold codecs the older readers refuse). */
static void test_formats_are_kept(void **state)
{
  (void)state;
  zllm_archive *old = NULL, *neu = NULL, *a = NULL;
  char *d1 = at("ar-f1"), *d2 = at("ar-f2"), *d3 = at("ar-f3");
  assert_int_equal(zllm_archive_open_format(&old, d1, 1, 1), 0);
  assert_int_equal(zllm_archive_format(old), 1);
  assert_int_equal(zllm_archive_open(&neu, d2, 1), 0);
  assert_int_equal(zllm_archive_format(neu), ZLLM_ARCHIVE_FORMAT_NEWEST);
  assert_int_equal(zllm_archive_open_format(&a, d1, 1, 2), ZLLM_EINVAL);
  assert_non_null(strstr(zllm_error_last(), "archive format 1, asked for 2"));
  assert_int_equal(zllm_archive_open_format(&a, d3, 1, 9), ZLLM_EINVAL);
  assert_false(exists("ar-f3"));
  char *order[] = {"none/such"};
  assert_int_equal(zllm_archive_merge(old, &neu, 1, order, 1), ZLLM_EINVAL);
  assert_non_null(strstr(zllm_error_last(), "cannot merge into"));
  assert_int_equal(zllm_archive_merge(neu, &old, 1, order, 1), 0); /* older into newer: fine */
  zllm_archive_close(old);
  zllm_archive_close(neu);
  free(d1);
  free(d2);
  free(d3);
}

/* The part cache: what was put comes back, the budget holds (least
 * recently used out first), a part above a quarter of the budget is not
 * kept, and sharing the budget shrinks it. */
static void test_part_cache(void **state)
{
  (void)state;
  ar_cache *c = NULL;
  uint8_t part[4096], big[300];
  size_t len = 0;
  assert_int_equal(ar_cache_new(&c, 1000), 0);
  for (int i = 0; i < 200; i++) {
    memset(part, i, 100);
    ar_cache_put(c, i + 1, (uint64_t)i % 3, part, 100);
    const uint8_t *got = ar_cache_get(c, 1, 0, &len); /* kept in use: never the least recent */
    assert_non_null(got);
    assert_true(len == 100 && got[0] == 0 && got[99] == 0);
    ar_cache_release(c, 1, 0);
  }
  const uint8_t *last = ar_cache_get(c, 200, 199 % 3, &len);
  assert_non_null(last);
  assert_int_equal(last[50], 199);
  ar_cache_release(c, 200, 199 % 3);
  assert_null(ar_cache_get(c, 2, 1, &len)); /* long gone */
  assert_null(ar_cache_get(c, 200, 0, &len)); /* another part of the same tensor */
  memset(big, 7, sizeof big);
  ar_cache_put(c, 999, 0, big, sizeof big); /* over a quarter of 1000 bytes */
  assert_null(ar_cache_get(c, 999, 0, &len));
  ar_cache_share(c, 4); /* 250 bytes: at most two parts of 100 */
  int kept = 0;
  for (int i = 0; i < 200; i++)
    if (ar_cache_get(c, i + 1, (uint64_t)i % 3, &len)) {
      kept++;
      ar_cache_release(c, i + 1, (uint64_t)i % 3);
    }
  assert_true(kept >= 1 && kept <= 2);
  /* a part someone holds is not evicted, however old */
  const uint8_t *held = NULL;
  ar_cache_put(c, 5000, 0, part, 50); /* a quarter of the 250 bytes at most */
  assert_non_null(held = ar_cache_get(c, 5000, 0, &len));
  for (int i = 0; i < 50; i++)
    ar_cache_put(c, 6000 + i, 0, part, 50);
  assert_true(ar_cache_get(c, 5000, 0, &len) == held); /* still there: pinned twice now */
  ar_cache_release(c, 5000, 0);
  ar_cache_release(c, 5000, 0);
  for (int i = 0; i < 50; i++)
    ar_cache_put(c, 7000 + i, 0, part, 50);
  assert_null(ar_cache_get(c, 5000, 0, &len)); /* released: it goes like any other */
  uint64_t hits = 0, misses = 0;
  ar_cache_stats(c, &hits, &misses);
  assert_true(hits >= 202 && misses >= 3);
  ar_cache_free(c);
}

/* A tensor part whose plane holds a damaged rANS chunk (its blob checksum
 * intact, as a resealed edit would be) is an error naming the blob and the
 * plane, not only the chunk. */
static void test_bad_plane_names_its_blob(void **state)
{
  (void)state;
  zllm_archive *a = NULL;
  zllm_codec *c = NULL;
  char *dir = at("ar-badplane");
  enum { N = 1 << 16 };
  static uint8_t plane[N], back[N];
  for (size_t i = 0; i < N; i++)
    plane[i] = (uint8_t)((i * 2654435761u) >> 27); /* 5 bits of entropy: a rANS chunk */
  zllm_stream_options o = ZLLM_STREAM_OPTIONS_INIT;
  o.coder = ZLLM_CODER_RANS0;
  zllm_buf part = ZLLM_BUF_INIT;
  uint8_t head[16] = {0};
  zllm_put_le32(head, ZLLM_PART_MAGIC);
  zllm_put_le32(head + 4, 1);
  assert_int_equal(zllm_buf_append(&part, head, sizeof head), 0);
  assert_int_equal(zllm_codec_new(&c), 0);
  assert_int_equal(zllm_stream_encode(c, &o, plane, N, &part), 0);
  zllm_put_le64((uint8_t *)part.data + 8, part.len - sizeof head);
  ((uint8_t *)part.data)[part.len - 100] ^= 0x5a; /* inside the chunk's frame */
  int64_t id = 0;
  assert_int_equal(zllm_archive_open(&a, dir, 1), 0);
  assert_int_equal(ar_begin(a), 0);
  assert_int_equal(ar_blob_write(a, part.data, part.len, &id), 0);
  assert_int_equal(ar_commit(a), 0);
  uint8_t *planes[1] = {back};
  assert_int_equal(ar_part_read(a, id, 1, N, planes), ZLLM_EFORMAT);
  char want[64];
  snprintf(want, sizeof want, "blob %lld, plane 0: stream: ", (long long)id);
  assert_non_null(strstr(zllm_error_last(), want));
  assert_non_null(strstr(zllm_error_last(), "chunk 0"));
  zllm_archive_close(a);
  zllm_codec_free(c);
  zllm_buf_free(&part);
  free(dir);
}

/* A piece blob whose stream claims more than a piece holds: a few KiB of
 * constant chunks must not make restore allocate what they claim. */
static void test_restore_bounds_a_piece(void **state)
{
  (void)state;
  zllm_mkhub_options mo = ZLLM_MKHUB_OPTIONS_INIT;
  zllm_pack_options o = ZLLM_PACK_OPTIONS_INIT;
  zllm_pack_stats s;
  zllm_archive *a = NULL;
  char *gen = at("gen"), *hub = at("gen/hub"), *dir = at("ar-bomb"), *out = at("out");
  mo.seed = 3;
  mo.scale = "tiny";
  mo.out = gen;
  assert_int_equal(zllm_mkhub(&mo), 0);
  zllm_bases_options bo = ZLLM_BASES_OPTIONS_INIT;
  zllm_base_map *bases = NULL;
  zllm_hub *listed = NULL;
  assert_int_equal(zllm_hub_open_local(&listed, hub), 0);
  o.hub = bo.hub = listed;
  assert_int_equal(zllm_bases_choose(&bases, &bo), 0);
  o.bases = bases;
  assert_int_equal(zllm_archive_open(&a, dir, 1), 0);
  assert_int_equal(zllm_pack_hub(a, &o, &s), 0);
  zllm_base_map_free(bases);
  zllm_hub_free(listed);
  assert_true(s.opaque_files > 0);

  /* one piece more than ZLLM_PIECE_BYTES of zeros: stored in a few KiB */
  size_t big = ZLLM_PIECE_BYTES + 1;
  uint8_t *zeros = calloc(1, big);
  int64_t blob = 0;
  uint64_t stored = 0;
  assert_non_null(zeros);
  assert_int_equal(ar_begin(a), 0);
  assert_int_equal(ar_stream_write(a, zeros, big, 3, 0, &blob, &stored), 0);
  char sql[160];
  snprintf(sql, sizeof sql,
           "UPDATE pieces SET blob = %lld WHERE file = (SELECT id FROM files WHERE method = 'opaque' LIMIT 1)",
           (long long)blob);
  assert_int_equal(ar_exec(a, sql), 0);
  assert_int_equal(ar_commit(a), 0);
  free(zeros);
  assert_true(stored < 1 << 20);
  zllm_archive_close(a);

  assert_int_not_equal(zllm_restore_all_threads(dir, out, 1, 0), 0);
  assert_non_null(strstr(zllm_error_last(), "more than the 67108864 a header or piece holds"));
  free(gen);
  free(hub);
  free(dir);
  free(out);
}

/* A safetensors file of one BF16 tensor of `n` elements (bytes from `seed`,
 * `flip` of them changed) and a small one, written at hub/<repo>/model.safetensors. */
static uint8_t *write_model(const char *hub, const char *repo, size_t n, unsigned seed, size_t flip, size_t *len)
{
  char header[256], *dir = NULL, *path = NULL;
  size_t big = 2 * n, small = 1000;
  int hl = snprintf(header, sizeof header,
                    "{\"w\":{\"dtype\":\"BF16\",\"shape\":[%zu],\"data_offsets\":[0,%zu]},"
                    "\"z\":{\"dtype\":\"U8\",\"shape\":[%zu],\"data_offsets\":[%zu,%zu]}}",
                    n, big, small, big, big + small);
  while (hl % 8)
    header[hl++] = ' ';
  *len = 8 + (size_t)hl + big + small;
  uint8_t *b = malloc(*len);
  assert_non_null(b);
  zllm_put_le64(b, (uint64_t)hl);
  memcpy(b + 8, header, (size_t)hl);
  uint32_t x = 2463534242u;
  for (size_t i = 0; i < n; i++) { /* weights of magnitude ~0.01: exponents stay few, mantissas noisy */
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    uint16_t v = (uint16_t)(0x3c00 | (x & 0x7f) | ((x >> 8) & 0x8000));
    memcpy(b + 8 + hl + 2 * i, &v, 2);
  }
  srand(seed);
  for (size_t k = 0; k < flip; k++)
    b[8 + hl + (size_t)rand() % big] ^= 1;
  for (size_t i = 0; i < small; i++)
    b[8 + hl + big + i] = (uint8_t)(i * 7 + seed);
  dir = zllm_path_join(hub, repo);
  assert_int_equal(zllm_mkdir_p(dir, 0755), 0);
  path = zllm_path_join(dir, "model.safetensors");
  assert_int_equal(zllm_write_file_atomic(path, b, *len), 0);
  free(path);
  free(dir);
  return b;
}

/* The hub into dir, org/tune against org/base; `claim` (given the listed
 * hub), when set, says which repos are this packer's. */
static void pack_claimed(const char *hub, const char *dir, int (*claim)(void *, size_t, int *))
{
  zllm_pack_options o = ZLLM_PACK_OPTIONS_INIT;
  zllm_base_map *bases = NULL;
  zllm_hub *listed = NULL;
  zllm_pack_stats s;
  zllm_archive *a = NULL;
  char *repos[] = {"org/base", "org/next", "org/tune"};
  assert_int_equal(zllm_hub_open_local(&listed, hub), 0);
  o.hub = listed;
  /* the base named, as --families does: this test is about reading, not choosing */
  assert_int_equal(zllm_base_map_new(&bases, repos, 3), 0);
  assert_int_equal(zllm_base_map_set(bases, 2, "org/base", "test"), 0);
  o.bases = bases;
  o.claim = claim;
  o.claim_ctx = listed;
  assert_int_equal(zllm_archive_open(&a, dir, 1), 0);
  assert_int_equal(zllm_pack_hub(a, &o, &s), 0);
  zllm_archive_close(a);
  zllm_base_map_free(bases);
  zllm_hub_free(listed);
}

static void pack_dir(const char *hub, const char *dir)
{
  pack_claimed(hub, dir, NULL);
}

/* Reads [off, off + n) through the reader, however many calls it takes. */
static int read_range(zllm_file_reader *r, uint64_t off, uint8_t *dst, size_t n)
{
  for (size_t done = 0; done < n;) {
    int64_t got = zllm_file_reader_read(r, off + done, dst + done, n - done);
    if (got <= 0)
      return got < 0 ? (int)got : -1;
    done += (size_t)got;
  }
  return 0;
}

/* The file reader (what zllm serve streams and answers Range requests
 * with): any range of a file of several tensor parts, BitX against a base,
 * equals the original; a read of the whole file in order is verified; a
 * recorded SHA-256 that does not match fails at the last segment; a repo
 * packed after a read-only handle opened is readable through it. */
/* A pack that defers its syncs (the survey's) stores what a pack that
 * syncs every commit stores; after zllm_archive_sync the catalog's WAL is
 * folded into it (empty) and the archive verifies. */
static void pack_tiny(const char *dir, int defer)
{
  zllm_pack_options o = ZLLM_PACK_OPTIONS_INIT;
  zllm_pack_stats s;
  zllm_bases_options bo = ZLLM_BASES_OPTIONS_INIT;
  zllm_base_map *bases = NULL;
  zllm_hub *listed = NULL;
  zllm_archive *a = NULL;
  char *hub = at("gen/hub"), wal[600];
  struct stat st;
  if (!exists("gen/hub")) {
    zllm_mkhub_options mo = ZLLM_MKHUB_OPTIONS_INIT;
    mo.seed = 3;
    mo.scale = "tiny";
    mo.out = at("gen");
    assert_int_equal(zllm_mkhub(&mo), 0);
    free((char *)mo.out);
  }
  assert_int_equal(zllm_hub_open_local(&listed, hub), 0);
  o.hub = bo.hub = listed;
  assert_int_equal(zllm_bases_choose(&bases, &bo), 0);
  o.bases = bases;
  assert_int_equal(zllm_archive_open(&a, dir, 1), 0);
  if (defer)
    assert_int_equal(zllm_archive_defer_sync(a), 0);
  assert_int_equal(zllm_pack_hub(a, &o, &s), 0);
  if (defer) {
    assert_int_equal(zllm_archive_sync(a), 0);
    snprintf(wal, sizeof wal, "%s/catalog.sqlite-wal", dir);
    assert_true(stat(wal, &st) != 0 || st.st_size == 0); /* folded into the catalog, synced */
  }
  zllm_archive_close(a);
  zllm_base_map_free(bases);
  zllm_hub_free(listed);
  free(hub);
}

static int all_but_the_base(void *ctx, size_t repo, int *mine)
{
  const zllm_hub *h = ctx;
  *mine = strcmp(h->ids[repo], "org/base") != 0;
  return 0;
}

/* A packer sharing the hub reads a base another packer stores as an extern
 * repo; when none of its files can be read here, no row is left for it
 * (a repo row without extern files would look stored, and a merge would
 * take it for the one its own packer stored). */
static int packs_extern(const char *hub, const char *dir)
{
  zllm_archive *a = NULL;
  pack_claimed(hub, dir, all_but_the_base);
  assert_int_equal(zllm_archive_open(&a, dir, 0), 0);
  assert_int_equal(zllm_archive_has_repo(a, "org/tune"), 1);
  int has_base = zllm_archive_has_repo(a, "org/base");
  zllm_archive_close(a);
  return has_base;
}

static void test_unreadable_extern_base_leaves_no_row(void **state)
{
  (void)state;
  char *hub = at("xb-hub"), *read = at("xb-read"), *unread = at("xb-unread");
  size_t len = 0;
  free(write_model(hub, "org/base", 4096, 1, 0, &len));
  free(write_model(hub, "org/tune", 4096, 1, 50, &len));
  assert_int_equal(packs_extern(hub, read), 1); /* read: its extern rows */
  setenv("ZLLM_TEST_UNREADABLE", "org/base/model.safetensors", 1);
  assert_int_equal(packs_extern(hub, unread), 0);
  unsetenv("ZLLM_TEST_UNREADABLE");
  free(hub);
  free(read);
  free(unread);
}

static void test_deferred_sync_stores_the_same(void **state)
{
  (void)state;
  char *synced = at("ar-synced"), *deferred = at("ar-deferred");
  pack_tiny(synced, 0);
  pack_tiny(deferred, 1);
  zllm_archive *a = NULL, *b = NULL;
  assert_int_equal(zllm_archive_open(&a, synced, 0), 0);
  assert_int_equal(zllm_archive_open(&b, deferred, 0), 0);
  FILE *devnull = fopen("/dev/null", "w");
  assert_int_equal(zllm_archive_verify(b, devnull), 0);
  fclose(devnull);
  uint64_t sa[4], sb[4];
  assert_int_equal(zllm_archive_stages(a, sa), 0);
  assert_int_equal(zllm_archive_stages(b, sb), 0);
  assert_memory_equal(sa, sb, sizeof sa);
  zllm_archive_close(a);
  zllm_archive_close(b);
  free(synced);
  free(deferred);
}

static void test_file_reader(void **state)
{
  (void)state;
  char *hub = at("rd-hub"), *dir = at("rd-ar"), *hub2 = at("rd-hub2");
  size_t n = (ZLLM_PART_BYTES / 2) + 12345, blen = 0, flen = 0, nlen = 0; /* two parts and a bit */
  uint8_t *base = write_model(hub, "org/base", n, 1, 0, &blen);
  uint8_t *tune = write_model(hub, "org/tune", n, 1, 5000, &flen);
  pack_dir(hub, dir);

  zllm_archive *a = NULL;
  zllm_file_reader *r = NULL;
  assert_int_equal(zllm_archive_open_readonly(&a, dir, 1), 0);
  char method[16];
  uint64_t kept = 0;
  assert_int_equal(zllm_archive_tensor_info(a, "org/tune", "model.safetensors", 0, method, &kept), 0);
  assert_string_equal(method, "bitx"); /* decoding it needs the base's parts */
  assert_int_equal(zllm_file_reader_open(&r, a, "org/tune", "model.safetensors"), 0);
  assert_true(zllm_file_reader_size(r) == flen);
  uint8_t *got = malloc(flen);
  assert_non_null(got);
  uint64_t part_edge = 8 + 80 + ZLLM_PART_BYTES; /* near the first part boundary (header ~80 bytes) */
  const uint64_t offs[][2] = {{0, 1}, {0, 8}, {7, 3}, {8, 100}, {part_edge - 300, 600}, {flen - 1, 1},
                              {flen - 1500, 1500}, {12345, 3 * 1024 * 1024}, {flen / 2, flen / 2}};
  for (size_t i = 0; i < sizeof offs / sizeof *offs; i++) {
    assert_int_equal(read_range(r, offs[i][0], got, offs[i][1]), 0);
    assert_memory_equal(got, tune + offs[i][0], offs[i][1]);
  }
  assert_int_equal(zllm_file_reader_read(r, flen, got, 10), 0);
  zllm_file_reader_close(r);
  /* reads that never decoded the first segment (the header) prove nothing about the file */
  assert_int_equal(zllm_file_reader_open(&r, a, "org/tune", "model.safetensors"), 0);
  assert_int_equal(read_range(r, 4096, got, flen - 4096), 0);
  assert_memory_equal(got, tune + 4096, flen - 4096);
  assert_false(zllm_file_reader_verified(r));
  zllm_file_reader_close(r);

  assert_int_equal(zllm_file_reader_open(&r, a, "org/tune", "model.safetensors"), 0);
  assert_int_equal(read_range(r, 0, got, flen), 0);
  assert_memory_equal(got, tune, flen);
  assert_true(zllm_file_reader_verified(r));
  zllm_file_reader_close(r);
  assert_int_equal(zllm_file_reader_open(&r, a, "org/none", "model.safetensors"), ZLLM_ENOTFOUND);
  assert_null(r);

  /* packed meanwhile: a new repo through the handle opened before it */
  uint8_t *next = write_model(hub2, "org/next", 5000, 9, 0, &nlen);
  pack_dir(hub2, dir);
  assert_int_equal(zllm_file_reader_open(&r, a, "org/next", "model.safetensors"), 0);
  assert_int_equal(read_range(r, 0, got, nlen), 0);
  assert_memory_equal(got, next, nlen);
  assert_true(zllm_file_reader_verified(r));
  zllm_file_reader_close(r);
  zllm_archive_close(a);

  /* a recorded tensor key the bytes do not match: a range over that whole
   * tensor fails before it comes out; a range inside another tensor does not */
  zllm_archive *w = NULL;
  assert_int_equal(zllm_archive_open(&w, dir, 1), 0);
  assert_int_equal(ar_exec(w, "UPDATE tensors SET key = zeroblob(16) WHERE name = 'z' AND file = (SELECT f.id"
                              " FROM files f JOIN repos r ON f.repo = r.id WHERE r.name = 'org/tune')"), 0);
  zllm_archive_close(w);
  assert_int_equal(zllm_archive_open_readonly(&a, dir, 1), 0);
  assert_int_equal(zllm_file_reader_open(&r, a, "org/tune", "model.safetensors"), 0);
  assert_int_equal(read_range(r, 1000, got, 5000), 0);
  assert_memory_equal(got, tune + 1000, 5000);
  assert_int_equal(zllm_file_reader_read(r, flen - 1000, got, 1000), ZLLM_EFORMAT);
  assert_non_null(strstr(zllm_error_last(), "XXH3-128 is not the one recorded"));
  zllm_file_reader_close(r);
  zllm_archive_close(a);

  /* a recorded SHA-256 the bytes do not match: the last segment fails */
  assert_int_equal(zllm_archive_open(&w, dir, 1), 0);
  assert_int_equal(ar_exec(w, "UPDATE files SET sha256 = zeroblob(32) WHERE repo = (SELECT id FROM repos"
                              " WHERE name = 'org/base')"), 0);
  zllm_archive_close(w);
  assert_int_equal(zllm_archive_open_readonly(&a, dir, 1), 0);
  assert_int_equal(zllm_file_reader_open(&r, a, "org/base", "model.safetensors"), 0);
  int64_t last = 0;
  uint64_t off = 0;
  while ((last = zllm_file_reader_read(r, off, got + off, blen - off)) > 0)
    off += (uint64_t)last;
  assert_int_equal(last, ZLLM_EFORMAT);
  assert_non_null(strstr(zllm_error_last(), "SHA-256 MISMATCH"));
  assert_true(off <= blen - 1000); /* the last segment (the small tensor) never came out */
  assert_memory_equal(got, base, off);
  zllm_file_reader_close(r);
  zllm_archive_close(a);
  free(got);
  free(base);
  free(tune);
  free(next);
  free(hub);
  free(hub2);
  free(dir);
}


/* What an ordered sink of the read pipeline was given. */
typedef struct {
  uint8_t *got[8];
  uint64_t next[8]; /* where the next put must start: puts come in order */
  int ended[8], rc[8], out_of_order;
} ordered_rec;

static int rec_put(void *ctx, size_t f, uint64_t off, const uint8_t *p, size_t n)
{
  ordered_rec *r = ctx;
  r->out_of_order |= off != r->next[f];
  memcpy(r->got[f] + off, p, n);
  r->next[f] = off + n;
  return 0;
}

static void rec_end(void *ctx, size_t f, int rc)
{
  ordered_rec *r = ctx;
  r->ended[f]++;
  r->rc[f] = rc;
}

/* Does dir (a restore's repo directory) hold anything but `keep`? */
static int only_file(const char *dir, const char *keep)
{
  char cmd[600];
  snprintf(cmd, sizeof cmd, "test \"$(ls -A '%s')\" = '%s'", dir, keep);
  return system(cmd) == 0;
}

/* The read pipeline: files of several parts (BitX against a base), a small
 * one and an empty one restore byte for byte with 1, 2 and 3 decode
 * threads; an ordered sink gets each file in order; a recorded SHA-256 that
 * the bytes do not match fails the file on the hash thread: the ordered sink
 * never gets its last block, restore leaves neither it nor a temporary file,
 * and the other files are still restored. */
/* One reader of the store per thread: the whole file, or (cancel) its first
 * 5 MiB, then closed; its handle is its own. */
typedef struct {
  const char *dir, *repo;
  zllm_slice_store *st;
  const uint8_t *orig;
  size_t len;
  int cancel, ok;
} store_job;

static void *store_read(void *arg)
{
  store_job *j = arg;
  zllm_archive *a = NULL;
  zllm_file_reader *r = NULL;
  uint8_t *back = malloc(j->len + 1);
  size_t want = j->cancel ? (size_t)5 << 20 : j->len, at = 0;
  if (back && zllm_archive_open(&a, j->dir, 0) == 0 &&
      zllm_slice_store_reader(j->st, a, j->repo, "model.safetensors", &r) == 0) {
    int64_t got = 1;
    while (at < want && got > 0) {
      got = zllm_file_reader_read(r, at, back + at, want - at < 300001 ? want - at : 300001);
      at += got > 0 ? (size_t)got : 0;
    }
    j->ok = at == want && memcmp(back, j->orig, want) == 0 && (j->cancel || zllm_file_reader_verified(r));
  }
  zllm_file_reader_close(r);
  zllm_archive_close(a);
  free(back);
  return NULL;
}

/* Serve's read path: slices decoded alone equal the whole part's bytes;
 * readers from the slice store read every file byte for byte, at odd
 * offsets too, while others read on other threads and one is cancelled;
 * a reader past the store's memory is refused, and admitted once one closes. */
/* A safetensors header read through a reader (as the Python package's
 * safe_open reads it) is the header zllm_st_open reads from the original,
 * byte for byte; a reader that reads here and there decodes nothing ahead;
 * a file that is no safetensors is refused by the strict reader's rule. */
static void test_reader_header_and_random_reads(void **state)
{
  (void)state;
  char *hub = at("rh-hub"), *dir = at("rh-ar"), *cfg = at("rh-hub/org/tune/config.json"), *orig = NULL;
  size_t n = (size_t)3 << 20, blen = 0, flen = 0; /* 6 MiB of BF16: two slices and a bit */
  uint8_t *base = write_model(hub, "org/base", n, 1, 0, &blen), *tune = write_model(hub, "org/tune", n, 1, 5000, &flen);
  assert_int_equal(zllm_write_file_atomic(cfg, "{\"model_type\": \"llama\"}", 24), 0);
  pack_dir(hub, dir);

  zllm_slice_store *st = NULL;
  zllm_archive *a = NULL;
  zllm_file_reader *r = NULL;
  zllm_st_header *h = NULL, *want = NULL;
  int fd = -1;
  assert_int_equal(zllm_slice_store_open(&st, dir, (size_t)64 << 20, 2), 0);
  assert_int_equal(zllm_archive_open(&a, dir, 0), 0);
  assert_int_equal(zllm_slice_store_reader(st, a, "org/tune", "model.safetensors", &r), 0);
  zllm_file_reader_random(r);
  assert_int_equal(zllm_file_reader_st_header(r, &h), 0);
  assert_non_null(orig = zllm_path_join(hub, "org/tune/model.safetensors"));
  assert_int_equal(zllm_st_open(&want, &fd, orig), 0);
  close(fd);
  assert_int_equal(h->header_len, want->header_len);
  assert_memory_equal(h->raw, want->raw, 8 + want->header_len);
  assert_int_equal(h->ntensors, want->ntensors);
  assert_string_equal(h->tensors[1].name, "z");
  assert_string_equal(h->file, "org/tune/model.safetensors");
  zllm_st_header_free(want);
  want = NULL;
  /* only the header's slice was decoded, however long the decode threads
   * wait: nothing ahead of a reader that reads here and there */
  usleep(200 * 1000);
  zllm_slice_store_stats ss;
  zllm_slice_store_stats_get(st, &ss);
  assert_int_equal(ss.decoded, 1);
  /* the last tensor, then the first one's last bytes (BitX over the base) */
  uint8_t got[1000];
  assert_int_equal(read_range(r, h->data_start + h->tensors[1].begin, got, 1000), 0);
  assert_memory_equal(got, tune + flen - 1000, 1000);
  assert_int_equal(read_range(r, h->data_start + h->tensors[0].end - 1000, got, 1000), 0);
  assert_memory_equal(got, tune + h->data_start + h->tensors[0].end - 1000, 1000);
  zllm_file_reader_close(r);

  assert_int_equal(zllm_slice_store_reader(st, a, "org/tune", "config.json", &r), 0);
  assert_int_equal(zllm_file_reader_st_header(r, &want), ZLLM_ELIMIT);
  assert_non_null(strstr(zllm_error_last(), "org/tune/config.json: safetensors: header-length"));
  assert_null(want);
  zllm_file_reader_close(r);
  zllm_st_header_free(h);
  zllm_archive_close(a);
  zllm_slice_store_close(st);
  free(base);
  free(tune);
  free(orig);
  free(cfg);
  free(hub);
  free(dir);
}

static void test_slice_store(void **state)
{
  (void)state;
  char *hub = at("ss-hub"), *dir = at("ss-ar");
  size_t n = (ZLLM_PART_BYTES / 2) + 12345, len[3] = {0};
  uint8_t *orig[3] = {write_model(hub, "org/base", n, 1, 0, &len[0]), write_model(hub, "org/tune", n, 1, 5000, &len[1]),
                      write_model(hub, "org/other", n, 7, 0, &len[2])};
  size_t blen = ((size_t)5 << 20) + 17; /* an opaque file: a piece blob cut in slices */
  uint8_t *bin = malloc(blen);
  assert_non_null(bin);
  for (size_t i = 0; i < blen; i++)
    bin[i] = (uint8_t)((i * 2654435761u) >> 13 & (i % 7 ? 0xff : 0x0f));
  char *binp = at("ss-hub/org/other/data.bin");
  assert_int_equal(zllm_write_file_atomic(binp, bin, blen), 0);
  pack_dir(hub, dir);

  /* the fine-tune's BitX tensor: every 4 MiB slice, and one off the chunk bounds */
  zllm_archive *a = NULL;
  assert_int_equal(zllm_archive_open(&a, dir, 0), 0);
  sqlite3_stmt *q = NULL;
  assert_int_equal(ar_prepare(a, &q, "SELECT t.id FROM tensors t JOIN files f ON t.file = f.id JOIN repos r ON "
                                     "f.repo = r.id WHERE r.name = 'org/tune' AND t.name = 'w' AND t.method = 'bitx'"),
                   0);
  assert_int_equal(sqlite3_step(q), SQLITE_ROW);
  int64_t tid = sqlite3_column_int64(q, 0);
  ar_finalize(a, q);
  uint8_t *whole = malloc(ZLLM_PART_BYTES), *slice = malloc(ZLLM_SLICE_BYTES);
  assert_non_null(whole);
  assert_non_null(slice);
  for (uint64_t part = 0; part < ar_nparts(2 * n); part++) {
    size_t plen = ar_part_len(2 * n, part);
    assert_int_equal(ar_tensor_decode_part(a, tid, part, whole, 0), 0);
    for (uint64_t lo = 0; lo < plen; lo += ZLLM_SLICE_BYTES) {
      size_t m = plen - lo < ZLLM_SLICE_BYTES ? plen - lo : ZLLM_SLICE_BYTES;
      memset(slice, 0xa5, m);
      assert_int_equal(ar_tensor_decode_slice(a, tid, part, lo, m, slice), 0);
      assert_memory_equal(slice, whole + lo, m);
    }
    assert_int_equal(ar_tensor_decode_slice(a, tid, part, 12345, 1000, slice), 0);
    assert_memory_equal(slice, whole + 12345, 1000);
  }
  zllm_archive_close(a);

  /* 40 MiB: 35 for slices, room for two readers (of 4 slices of 4 MiB) */
  zllm_slice_store *st = NULL;
  assert_int_equal(zllm_slice_store_open(&st, dir, (size_t)40 << 20, 2), 0);
  zllm_slice_store_stats ss;
  zllm_slice_store_stats_get(st, &ss);
  assert_int_equal(ss.max_readers, 2);
  assert_int_equal(zllm_archive_open(&a, dir, 0), 0);
  zllm_file_reader *r = NULL, *r2 = NULL, *r3 = NULL;
  assert_int_equal(zllm_slice_store_reader(st, a, "org/other", "data.bin", &r), 0);
  uint8_t *back = malloc(blen);
  assert_non_null(back);
  for (uint64_t off = 0; off < blen;) { /* odd pieces, across slice ends */
    int64_t got = zllm_file_reader_read(r, off, back + off, 777777);
    assert_true(got > 0);
    off += (uint64_t)got;
  }
  assert_memory_equal(back, bin, blen);
  assert_true(zllm_file_reader_verified(r));
  int64_t got = zllm_file_reader_read(r, ZLLM_SLICE_BYTES - 3, back, 10); /* back to a slice before */
  assert_true(got == 3);
  assert_memory_equal(back, bin + ZLLM_SLICE_BYTES - 3, 3);
  assert_int_equal(zllm_slice_store_reader(st, a, "org/tune", "model.safetensors", &r2), 0);
  got = zllm_file_reader_read(r2, len[1] - 5, back, 100); /* a Range read of the last bytes */
  assert_true(got == 5);
  assert_memory_equal(back, orig[1] + len[1] - 5, 5);
  assert_int_equal(zllm_slice_store_reader(st, a, "org/base", "model.safetensors", &r3), ZLLM_ELIMIT);
  assert_non_null(strstr(zllm_error_last(), "org/base/model.safetensors"));
  zllm_file_reader_close(r2);
  assert_int_equal(zllm_slice_store_reader(st, a, "org/base", "model.safetensors", &r3), 0);
  zllm_file_reader_close(r3);
  zllm_file_reader_close(r);
  zllm_archive_close(a);

  /* two readers at once on two threads, one cancelled mid-way: then nothing is held */
  for (int round = 0; round < 3; round++) {
    store_job jobs[2] = {{dir, "org/tune", st, orig[1], len[1], round == 1, 0},
                         {dir, round == 2 ? "org/tune" : "org/base", st, round == 2 ? orig[1] : orig[0],
                          round == 2 ? len[1] : len[0], round == 0, 0}};
    pthread_t t[2];
    for (int k = 0; k < 2; k++)
      assert_int_equal(pthread_create(&t[k], NULL, store_read, &jobs[k]), 0);
    for (int k = 0; k < 2; k++)
      pthread_join(t[k], NULL);
    assert_true(jobs[0].ok && jobs[1].ok);
  }
  zllm_slice_store_stats_get(st, &ss);
  assert_int_equal(ss.readers, 0);
  assert_true(ss.peak_bytes <= (size_t)35 << 20); /* the slices' share of the memory */
  assert_true(ss.hits > 0);                       /* the base's slices, shared by its fine-tune */
  zllm_slice_store_close(st);
  free(back);
  free(whole);
  free(slice);
  free(bin);
  free(binp);
  for (int k = 0; k < 3; k++)
    free(orig[k]);
  free(hub);
  free(dir);
}

static void test_read_pipeline(void **state)
{
  (void)state;
  char *hub = at("pl-hub"), *dir = at("pl-ar");
  size_t n = (ZLLM_PART_BYTES / 2) + 12345, len[3] = {0}; /* two parts and a bit */
  uint8_t *orig[4] = {write_model(hub, "org/base", n, 1, 0, &len[0]), write_model(hub, "org/tune", n, 1, 5000, &len[1]),
                      write_model(hub, "org/small", 5000, 3, 0, &len[2]), NULL};
  char *empty = at("pl-hub/org/small/empty.txt");
  assert_int_equal(zllm_write_file_atomic(empty, "", 0), 0);
  pack_dir(hub, dir);
  const char *names[3] = {"org/base", "org/tune", "org/small"};

  for (int threads = 1; threads <= 3; threads++) {
    char out[64];
    snprintf(out, sizeof out, "pl-out%d", threads);
    char *o = at(out);
    zllm_read_stats st;
    zllm_restore_opts opts = {NULL, NULL, o, threads, 0};
    assert_int_equal(zllm_restore(dir, &opts, &st), 0);
    assert_int_equal(st.workers, threads);
    assert_true(st.bytes == len[0] + len[1] + len[2]);
    assert_true(st.blocks >= 7); /* the big files' parts at least */
    for (int k = 0; k < 3; k++) {
      char rel[128];
      snprintf(rel, sizeof rel, "%s/%s/model.safetensors", out, names[k]);
      char *path = at(rel);
      char *back = NULL;
      size_t blen = 0;
      assert_int_equal(zllm_read_small_file(&back, &blen, path, (size_t)1 << 30), 0);
      assert_true(blen == len[k]);
      assert_memory_equal(back, orig[k], len[k]);
      free(back);
      free(path);
    }
    snprintf(out + strlen(out), sizeof out - strlen(out), "/org/small/empty.txt");
    struct stat sb;
    char *e = at(out);
    assert_int_equal(stat(e, &sb), 0);
    assert_int_equal(sb.st_size, 0);
    free(e);
    free(o);
  }

  /* an ordered sink gets every byte of each file, in order */
  zllm_archive *a = NULL;
  assert_int_equal(zllm_archive_open(&a, dir, 0), 0);
  ar_pipe_file files[3];
  uint8_t sha[3][32];
  sqlite3_stmt *st = NULL;
  for (int k = 0; k < 3; k++) {
    assert_int_equal(ar_prepare(a, &st, "SELECT f.id, f.sha256 FROM files f JOIN repos r ON f.repo = r.id"
                                        " WHERE r.name = ? AND f.path = 'model.safetensors'"), 0);
    sqlite3_bind_text(st, 1, names[k], -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    memcpy(sha[k], sqlite3_column_blob(st, 1), 32);
    files[k] = (ar_pipe_file){sqlite3_column_int64(st, 0), names[k], len[k], sha[k], NULL};
    ar_finalize(a, st);
  }
  zllm_archive_close(a);
  ordered_rec rec = {0};
  for (int k = 0; k < 3; k++)
    assert_non_null(rec.got[k] = calloc(1, len[k]));
  ar_pipe_sink sink = {NULL, rec_put, rec_end, 1};
  assert_int_equal(ar_pipe_run(dir, files, 3, 2, &sink, &rec, NULL), 0);
  for (int k = 0; k < 3; k++) {
    assert_int_equal(rec.ended[k], 1);
    assert_int_equal(rec.rc[k], 0);
    assert_true(rec.next[k] == len[k]);
    assert_memory_equal(rec.got[k], orig[k], len[k]);
  }
  assert_false(rec.out_of_order);

  /* the base's recorded SHA-256 no longer matches: its last block is held */
  sha[0][5] ^= 1;
  memset(&rec.next, 0, sizeof rec.next);
  memset(&rec.ended, 0, sizeof rec.ended);
  assert_int_equal(ar_pipe_run(dir, files, 3, 2, &sink, &rec, NULL), 0);
  assert_int_equal(rec.ended[0], 1);
  assert_int_equal(rec.rc[0], ZLLM_EFORMAT);
  assert_true(rec.next[0] < len[0]); /* short: the last block never came */
  assert_true(rec.next[1] == len[1] && rec.rc[1] == 0 && rec.next[2] == len[2] && rec.rc[2] == 0);

  zllm_archive *w = NULL;
  assert_int_equal(zllm_archive_open(&w, dir, 1), 0);
  assert_int_equal(ar_exec(w, "UPDATE files SET sha256 = zeroblob(32) WHERE repo = (SELECT id FROM repos"
                              " WHERE name = 'org/base')"), 0);
  zllm_archive_close(w);
  for (int threads = 1; threads <= 2; threads++) {
    char *o = at(threads == 1 ? "pl-bad1" : "pl-bad2");
    zllm_restore_opts opts = {NULL, NULL, o, threads, 0};
    assert_int_equal(zllm_restore(dir, &opts, NULL), ZLLM_EFORMAT);
    assert_non_null(strstr(zllm_error_last(), "1 of 4 files not restored"));
    assert_non_null(strstr(zllm_error_last(), "SHA-256 MISMATCH"));
    char *bdir = zllm_path_join(o, "org/base"), *tdir = zllm_path_join(o, "org/tune");
    assert_true(only_file(bdir, "")); /* neither the file nor a temporary one */
    assert_true(only_file(tdir, "model.safetensors"));
    free(bdir);
    free(tdir);
    free(o);
  }
  for (int k = 0; k < 3; k++) {
    free(rec.got[k]);
    free(orig[k]);
  }
  free(empty);
  free(hub);
  free(dir);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_create_over_leftover),
      cmocka_unit_test(test_refuses_other_format),
      cmocka_unit_test(test_formats_are_kept),
      cmocka_unit_test(test_part_cache),
      cmocka_unit_test(test_bad_plane_names_its_blob),
      cmocka_unit_test(test_restore_bounds_a_piece),
      cmocka_unit_test(test_file_reader),
      cmocka_unit_test(test_read_pipeline),
      cmocka_unit_test(test_slice_store),
      cmocka_unit_test(test_reader_header_and_random_reads),
      cmocka_unit_test(test_deferred_sync_stores_the_same),
      cmocka_unit_test(test_unreadable_extern_base_leaves_no_row),
  };
  return cmocka_run_group_tests(tests, make_root, remove_root);
}
