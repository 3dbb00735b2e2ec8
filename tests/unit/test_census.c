/* crawl/census_row.c and crawl/select.c: a census row from a listing entry
 * as the Hub sends it and as a hostile server might (every field checked,
 * a bad one left empty and named, a bad id skipping the entry, nothing in a
 * row able to break the TSV), and --select over rows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crawl/census_internal.h"
#include "zllm/error.h"

/* The row of one JSON entry; `dropped` gets the fields left empty. */
static int row_of(const char *json, char *out, size_t cap, char *dropped)
{
  json_error_t e;
  json_t *m = json_loads(json, 0, &e);
  assert_non_null(m);
  zllm_buf b = ZLLM_BUF_INIT;
  char why[256];
  int rc = zl_census_row(m, &b, why, sizeof why, dropped, 256);
  if (rc == 0) {
    assert_true(b.len < cap);
    memcpy(out, b.data, b.len);
    out[b.len] = '\0';
  } else {
    snprintf(out, cap, "%s", why);
  }
  zllm_buf_free(&b);
  json_decref(m);
  return rc;
}

static int count_char(const char *s, char c)
{
  int n = 0;
  for (; *s; s++)
    n += *s == c;
  return n;
}

static void test_a_hub_entry(void **state)
{
  (void)state;
  char row[4096], dropped[256];
  assert_int_equal(row_of("{\"id\":\"meta-llama/Llama-3.1-8B\",\"sha\":\"0123456789abcdef0123456789abcdef01234567\","
                          "\"createdAt\":\"2024-07-18T08:56:00.000Z\",\"lastModified\":\"2024-09-25T17:00:57.000Z\","
                          "\"library_name\":\"transformers\",\"pipeline_tag\":\"text-generation\","
                          "\"baseModels\":{\"relation\":\"finetune\",\"models\":[{\"_id\":\"x\",\"id\":\"org/base\"},"
                          "{\"id\":\"org/other\"}]},\"safetensors\":{\"parameters\":{\"F32\":5,\"BF16\":8030261248},"
                          "\"total\":8030261253},\"gated\":\"manual\",\"siblings\":[{\"rfilename\":\"a\"},"
                          "{\"rfilename\":\"b\"}],\"downloads\":7,\"likes\":0}",
                          row, sizeof row, dropped),
                   0);
  assert_string_equal(row, "meta-llama/Llama-3.1-8B\t0123456789abcdef0123456789abcdef01234567\t"
                           "2024-07-18T08:56:00.000Z\t2024-09-25T17:00:57.000Z\ttransformers\ttext-generation\t"
                           "finetune\torg/base,org/other\t8030261253\tBF16=8030261248;F32=5\tmanual\t2\t7\t0\n");
  assert_string_equal(dropped, "");
  /* nothing but the id: every other column empty, the shape kept */
  assert_int_equal(row_of("{\"id\":\"a/b\",\"gated\":false}", row, sizeof row, dropped), 0);
  assert_string_equal(row, "a/b\t\t\t\t\t\t\t\t\t\tfalse\t\t\t\n");
  assert_int_equal(count_char(row, '\t'), ZLLM_CENSUS_NCOLUMNS - 1);
}

static void test_bad_ids_skip_the_entry(void **state)
{
  (void)state;
  char row[4096], dropped[256];
  assert_int_equal(row_of("{\"id\":\"../evil\"}", row, sizeof row, dropped), 1);
  assert_non_null(strstr(row, "../evil"));
  assert_int_equal(row_of("{\"id\":\"a/b/c\"}", row, sizeof row, dropped), 1);
  assert_int_equal(row_of("{\"id\":7}", row, sizeof row, dropped), 1);
  assert_int_equal(row_of("{\"modelId\":\"a/b\"}", row, sizeof row, dropped), 1);
  assert_int_equal(row_of("[1,2]", row, sizeof row, dropped), 1);
  assert_int_equal(row_of("{\"id\":\"a\\tb/c\"}", row, sizeof row, dropped), 1);
}

static void test_hostile_fields_are_left_empty_and_named(void **state)
{
  (void)state;
  char row[65536], dropped[256];
  /* too many bases, a bad base id, a relation that is not a token */
  zllm_buf big = ZLLM_BUF_INIT;
  assert_int_equal(zllm_buf_puts(&big, "{\"id\":\"a/b\",\"baseModels\":{\"relation\":\"finetune\",\"models\":["), 0);
  for (int i = 0; i < ZLLM_CENSUS_MAX_BASES + 1; i++)
    assert_int_equal(zllm_buf_printf(&big, "%s{\"id\":\"o/m%d\"}", i ? "," : "", i), 0);
  assert_int_equal(zllm_buf_puts(&big, "]}}"), 0);
  assert_int_equal(row_of(big.data, row, sizeof row, dropped), 0);
  assert_string_equal(dropped, "baseModels");
  zllm_buf_free(&big);
  assert_int_equal(row_of("{\"id\":\"a/b\",\"baseModels\":{\"relation\":\"fine\\ttune\",\"models\":[]}}", row, sizeof row,
                          dropped), 0);
  assert_string_equal(dropped, "baseModels");
  assert_int_equal(row_of("{\"id\":\"a/b\",\"baseModels\":{\"relation\":\"x\",\"models\":[{\"id\":\"../x\"}]}}", row,
                          sizeof row, dropped), 0);
  assert_string_equal(dropped, "baseModels");
  /* parameters: negative, fractional, past 2^53, a dtype name that is not one, a sum that overflows */
  const char *bad_params[] = {
      "{\"id\":\"a/b\",\"safetensors\":{\"parameters\":{\"BF16\":-5}}}",
      "{\"id\":\"a/b\",\"safetensors\":{\"parameters\":{\"BF16\":1.5}}}",
      "{\"id\":\"a/b\",\"safetensors\":{\"parameters\":{\"BF16\":9007199254740993}}}",
      "{\"id\":\"a/b\",\"safetensors\":{\"parameters\":{\"bf\\n16\":5}}}",
      "{\"id\":\"a/b\",\"safetensors\":{\"parameters\":{\"XXXXXXXXXXXXXXXXXXXX\":5}}}",
      "{\"id\":\"a/b\",\"safetensors\":{\"parameters\":{\"A\":9007199254740992,\"B\":9007199254740992}}}",
      "{\"id\":\"a/b\",\"safetensors\":{\"parameters\":{\"A\":1},\"total\":\"many\"}}",
      "{\"id\":\"a/b\",\"safetensors\":\"none\"}",
  };
  for (size_t i = 0; i < sizeof bad_params / sizeof *bad_params; i++) {
    assert_int_equal(row_of(bad_params[i], row, sizeof row, dropped), 0);
    assert_string_equal(dropped, "safetensors");
    assert_int_equal(count_char(row, '\t'), ZLLM_CENSUS_NCOLUMNS - 1);
  }
  /* text with control characters, too long, of the wrong type; a sha that is not one */
  assert_int_equal(row_of("{\"id\":\"a/b\",\"pipeline_tag\":\"text\\tgen\\neration\",\"library_name\":{\"an\":\"object\"},"
                          "\"sha\":\"zz\",\"createdAt\":\"2024\\u0001\",\"gated\":[1],\"siblings\":\"many\","
                          "\"downloads\":-1,\"likes\":1e3}",
                          row, sizeof row, dropped),
                   0);
  assert_string_equal(dropped, "sha,createdAt,library_name,pipeline_tag,gated,siblings,downloads,likes");
  assert_string_equal(row, "a/b\t\t\t\t\t\t\t\t\t\t\t\t\t\n");
}

static zllm_census_cols cols_of(char *line)
{
  zllm_census_cols c;
  assert_int_equal(zllm_census_split(line, &c), 0);
  return c;
}

static int matches(const char *expr, const char *row)
{
  zl_select *s = NULL;
  assert_int_equal(zl_select_parse(expr, &s), 0);
  char *copy = strdup(row);
  zllm_census_cols c = cols_of(copy);
  int m = zl_select_match(s, &c);
  free(copy);
  zl_select_free(s);
  return m;
}

static void test_select(void **state)
{
  (void)state;
  const char *row = "org/ft-1\tabc\t2024-06-03T00:00:00.000Z\t2024-07-01T00:00:00.000Z\ttransformers\ttext-generation\t"
                    "finetune\tmeta/base,meta/other\t8030261253\tBF16=8030261248;F32=5\tfalse\t12\t1500\t3";
  assert_true(matches("library=transformers", row));
  assert_false(matches("library=peft", row));
  assert_true(matches("library!=peft,pipeline_tag=text-generation", row));
  assert_true(matches("params>=7B,params<9e9", row));
  assert_false(matches("params>8.1B", row));
  assert_true(matches("dtype=BF16", row));
  assert_true(matches("dtype=F32", row));
  assert_false(matches("dtype=F16", row));
  assert_false(matches("dtype=BF", row)); /* a dtype, not a prefix of one */
  assert_true(matches("base=meta/other", row));
  assert_false(matches("base=meta/oth", row));
  assert_true(matches("relation=finetune,gated=false", row));
  assert_true(matches("created>=2024,created<2025", row));
  assert_true(matches("created=2024-06", row));
  assert_false(matches("created<2024-06", row));
  assert_true(matches("id~org/ft-*", row));
  assert_false(matches("id~other/*", row));
  assert_true(matches("files<=12,downloads>1.4K", row));
  /* a row without the field never matches a term on it */
  const char *bare = "a/b\t\t\t\t\t\t\t\t\t\t\t\t\t";
  assert_false(matches("params>=0", bare));
  assert_false(matches("library=transformers", bare));
  assert_true(matches("library!=transformers", bare));
  /* what is refused, with the reason */
  const char *bad[] = {"", ",", "colour=red", "params>=lots", "library>x", "base<a/b", "library~x*", "params",
                       "id>a"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    zl_select *s = (zl_select *)1;
    assert_int_equal(zl_select_parse(bad[i], &s), ZLLM_EINVAL);
    assert_null(s);
    assert_non_null(strstr(zllm_error_last(), "--select"));
  }
}

static void test_split_wants_every_column(void **state)
{
  (void)state;
  char short_row[] = "a/b\tonly two";
  char long_row[] = "a\tb\tc\td\te\tf\tg\th\ti\tj\tk\tl\tm\tn\to";
  zllm_census_cols c;
  assert_int_equal(zllm_census_split(short_row, &c), -1);
  assert_int_equal(zllm_census_split(long_row, &c), -1);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_a_hub_entry),
      cmocka_unit_test(test_bad_ids_skip_the_entry),
      cmocka_unit_test(test_hostile_fields_are_left_empty_and_named),
      cmocka_unit_test(test_select),
      cmocka_unit_test(test_split_wants_every_column),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
