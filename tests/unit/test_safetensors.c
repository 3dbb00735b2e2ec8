/* format/safetensors.c and the streaming hash pass of analyze/inspect.c. */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "zllm/analyze.h"
#include "zllm/error.h"
#include "zllm/hash.h"
#include "zllm/io.h"
#include "zllm/safetensors.h"

#define FIX ZLLM_FIXTURES "/safetensors"

/* Every bad-<rule>--<case> fixture fails with a one-line message that names
 * the file and exactly that rule. */
static void test_format_safetensors__every_bad_fixture_names_its_rule(void **state)
{
  (void)state;
  DIR *d = opendir(FIX);
  struct dirent *e;
  int seen = 0;
  assert_non_null(d);
  while ((e = readdir(d))) {
    if (strncmp(e->d_name, "bad-", 4) != 0)
      continue;
    char path[1024], rule[128], want[256];
    snprintf(path, sizeof path, "%s/%s", FIX, e->d_name);
    const char *sep = strstr(e->d_name, "--");
    assert_non_null(sep);
    snprintf(rule, sizeof rule, "%.*s", (int)(sep - e->d_name - 4), e->d_name + 4);
    snprintf(want, sizeof want, "safetensors: %s: ", rule);
    zllm_st_header *h = NULL;
    int fd = -1;
    int rc = zllm_st_open(&h, &fd, path);
    if (rc == 0)
      fail_msg("%s was accepted", e->d_name);
    assert_null(h);
    if (!strstr(zllm_error_last(), want) || !strstr(zllm_error_last(), e->d_name))
      fail_msg("%s: message '%s' lacks '%s'", e->d_name, zllm_error_last(), want);
    assert_null(strchr(zllm_error_last(), '\n'));
    seen++;
  }
  closedir(d);
  assert_true(seen >= 25);
}

static void test_format_safetensors__good_two_tensors(void **state)
{
  (void)state;
  zllm_st_header *h = NULL;
  int fd = -1;
  assert_int_equal(zllm_st_open(&h, &fd, FIX "/good-two-tensors.safetensors"), 0);
  assert_int_equal(h->ntensors, 2);
  assert_string_equal(h->tensors[0].name, "a");
  assert_int_equal(h->tensors[0].dtype, ZLLM_DT_F32);
  assert_int_equal(h->tensors[1].dtype, ZLLM_DT_BF16);
  assert_int_equal(h->tensors[1].ndim, 2);
  assert_int_equal(h->tensors[1].nelem, 4);
  assert_int_equal(h->data_len, 16);
  assert_int_equal(h->nmeta, 1);
  assert_string_equal(h->meta_keys[0], "format");
  assert_string_equal(h->meta_vals[0], "pt");
  assert_int_equal(zllm_st_find(h, "b"), 1);
  assert_int_equal(zllm_st_find(h, "zz"), -1);
  /* raw header bytes are kept exactly, for byte-exact repacking */
  uint8_t raw[256];
  assert_int_equal(zllm_pread_full(fd, raw, h->data_start, 0, "t"), 0);
  assert_memory_equal(raw, h->raw, h->data_start);
  uint8_t buf[8];
  assert_int_equal(zllm_st_read_tensor(h, fd, 1, 2, buf, 6), 0);
  assert_int_equal(buf[0], 10);
  assert_int_equal(zllm_st_read_tensor(h, fd, 1, 4, buf, 6), ZLLM_EINVAL); /* past the tensor */
  close(fd);
  zllm_st_header_free(h);
}

static void test_format_safetensors__zero_length_and_scalar(void **state)
{
  (void)state;
  zllm_st_header *h = NULL;
  int fd = -1;
  assert_int_equal(zllm_st_open(&h, &fd, FIX "/good-zero-length.safetensors"), 0);
  assert_int_equal(h->ntensors, 2);
  assert_int_equal(h->tensors[0].nelem, 0);
  assert_int_equal(h->tensors[1].ndim, 0);
  assert_int_equal(h->tensors[1].nelem, 1);
  zllm_xxh128 x[2], empty;
  assert_int_equal(zllm_analyze_hash_fd(fd, "t", h, NULL, NULL, x), 0);
  zllm_xxh128_buf(&empty, "", 0);
  assert_memory_equal(x[0].b, empty.b, 16);
  close(fd);
  zllm_st_header_free(h);
  assert_int_equal(zllm_st_open(&h, &fd, FIX "/good-empty.safetensors"), 0);
  assert_int_equal(h->ntensors, 0);
  close(fd);
  zllm_st_header_free(h);
}

static void test_format_safetensors__prefix_shorter_than_header(void **state)
{
  (void)state;
  uint8_t buf[16] = {100, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
  zllm_st_header *h = NULL;
  assert_int_equal(zllm_st_parse(&h, "mem", buf, sizeof buf, 1000), ZLLM_ELIMIT);
  assert_non_null(strstr(zllm_error_last(), "header-length"));
}

/* Tensors that straddle the 4 MiB streaming windows hash as if read whole. */
static void test_analyze_hash__tensors_across_windows(void **state)
{
  (void)state;
  char path[] = "/tmp/zllm-test-st-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  const uint64_t sizes[] = {3000001, 5000003, 0, 1234567, 0};
  char hdr[1024];
  uint64_t off = 0;
  int n = snprintf(hdr, sizeof hdr, "{");
  for (int i = 0; i < 5; i++) {
    n += snprintf(hdr + n, sizeof hdr - (size_t)n, "%s\"t%d\":{\"dtype\":\"U8\",\"shape\":[%llu],\"data_offsets\":[%llu,%llu]}",
                  i ? "," : "", i, (unsigned long long)sizes[i], (unsigned long long)off,
                  (unsigned long long)(off + sizes[i]));
    off += sizes[i];
  }
  n += snprintf(hdr + n, sizeof hdr - (size_t)n, "}");
  uint8_t len8[8] = {(uint8_t)n, (uint8_t)(n >> 8)};
  uint8_t *data = malloc(off);
  for (uint64_t i = 0; i < off; i++)
    data[i] = (uint8_t)(i * 2654435761u >> 13);
  assert_int_equal(write(fd, len8, 8), 8);
  assert_int_equal(write(fd, hdr, (size_t)n), n);
  assert_int_equal(write(fd, data, off), (ssize_t)off);
  zllm_st_header *h = NULL;
  assert_int_equal(zllm_st_read_header(&h, fd, path), 0);
  zllm_xxh128 x[5], want;
  zllm_sha256 sha;
  assert_int_equal(zllm_analyze_hash_fd(fd, path, h, &sha, NULL, x), 0);
  uint64_t at = 0;
  for (int i = 0; i < 5; i++) {
    zllm_xxh128_buf(&want, data + at, sizes[i]);
    assert_memory_equal(x[i].b, want.b, 16);
    at += sizes[i];
  }
  zllm_sha256 file_sha;
  assert_int_equal(zllm_sha256_file(&file_sha, path), 0);
  assert_memory_equal(sha.b, file_sha.b, 32);
  zllm_st_header_free(h);
  free(data);
  close(fd);
  unlink(path);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_format_safetensors__every_bad_fixture_names_its_rule),
    cmocka_unit_test(test_format_safetensors__good_two_tensors),
    cmocka_unit_test(test_format_safetensors__zero_length_and_scalar),
    cmocka_unit_test(test_format_safetensors__prefix_shorter_than_header),
    cmocka_unit_test(test_analyze_hash__tensors_across_windows),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
