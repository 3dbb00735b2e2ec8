/* format/card.c, config.c, index.c: the small files of a repo. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "zllm/error.h"
#include "zllm/repofiles.h"

static zllm_card *card(const char *text, int want_rc)
{
  zllm_card *c = NULL;
  int rc = zllm_card_parse(&c, "org/m/README.md", text, strlen(text));
  if (rc != want_rc)
    fail_msg("rc %d (%s), wanted %d", rc, zllm_error_last(), want_rc);
  return c;
}

static void test_format_card__base_model_string(void **state)
{
  (void)state;
  zllm_card *c = card("---\nbase_model: meta-llama/Llama-2-7b\nlicense: mit\nlibrary_name: peft\n"
                      "tags:\n- a\n- b\n---\n# body\n",
                      0);
  assert_true(c->has_front_matter);
  assert_int_equal(c->nbase, 1);
  assert_string_equal(c->base_models[0], "meta-llama/Llama-2-7b");
  assert_string_equal(c->license, "mit");
  assert_string_equal(c->library_name, "peft");
  assert_int_equal(c->ntags, 2);
  assert_string_equal(c->tags[1], "b");
  zllm_card_free(c);
}

static void test_format_card__base_model_list_crlf_bom(void **state)
{
  (void)state;
  zllm_card *c = card("\xEF\xBB\xBF---\r\nbase_model:\r\n  - x/a\r\n  - \"x/b\"\r\nbase_model_relation: merge\r\n...\r\nbody",
                      0);
  assert_int_equal(c->nbase, 2);
  assert_string_equal(c->base_models[0], "x/a");
  assert_string_equal(c->base_models[1], "x/b");
  assert_string_equal(c->base_model_relation, "merge");
  zllm_card_free(c);
}

static void test_format_card__missing_and_null(void **state)
{
  (void)state;
  zllm_card *c = card("# just a readme\n---\nbase_model: not/front-matter\n---\n", 0);
  assert_false(c->has_front_matter);
  assert_int_equal(c->nbase, 0);
  zllm_card_free(c);
  c = card("---\nbase_model:\nlicense: ~\n---\n", 0);
  assert_true(c->has_front_matter);
  assert_int_equal(c->nbase, 0);
  assert_null(c->license);
  zllm_card_free(c);
  c = card("---\n---\n", 0);
  assert_true(c->has_front_matter);
  zllm_card_free(c);
}

static void test_format_card__errors_name_file_and_rule(void **state)
{
  (void)state;
  card("---\nbase_model: [a, b\n---\n", ZLLM_EFORMAT);
  assert_non_null(strstr(zllm_error_last(), "org/m/README.md: yaml: line"));
  card("---\nbase_model: a\n", ZLLM_EFORMAT);
  assert_non_null(strstr(zllm_error_last(), "front-matter"));
  card("---\n- a\n- b\n---\n", ZLLM_EFORMAT);
  assert_non_null(strstr(zllm_error_last(), "card-shape"));
  card("---\nbase_model: {a: 1}\n---\n", ZLLM_EFORMAT);
  assert_non_null(strstr(zllm_error_last(), "card-shape"));
  card("---\nbase_model: a\nbase_model: b\n---\n", ZLLM_EFORMAT);
  assert_non_null(strstr(zllm_error_last(), "duplicate key"));
  card("---\ntags:\n- [nested]\n---\n", ZLLM_EFORMAT);
}

/* Aliases are references in libyaml's document model, so a "billion laughs"
 * card costs what it weighs, and nested lists are not walked. */
static void test_format_card__alias_bomb_is_cheap(void **state)
{
  (void)state;
  zllm_card *c = card("---\na: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
                      "c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c]\n"
                      "base_model: &m org/base\ntags: *a\n---\n",
                      0);
  assert_string_equal(c->base_models[0], "org/base");
  assert_int_equal(c->ntags, 9);
  zllm_card_free(c);
}

/* What a card may cost: aliases are counted where used, nesting and events
 * are bounded, and an alias of a list reads as the list. */
static void test_format_card__budgets(void **state)
{
  (void)state;
  zllm_card *c = card("---\ncommon: &c [org/a, org/b]\nbase_model: *c\nl: &l mit\nlicense: [*l, *l]\n"
                      "e: &e []\ntags: *e\n---\n", 0);
  assert_int_equal(c->nbase, 2);
  assert_string_equal(c->base_models[1], "org/b");
  assert_string_equal(c->license, "mit,mit");
  assert_int_equal(c->ntags, 0);
  zllm_card_free(c);
  char deep[400] = "---\na: ", *p = deep + strlen(deep);
  for (int i = 0; i < 65; i++)
    *p++ = '[';
  strcpy(p, "\n---\n");
  assert_null(card(deep, ZLLM_ELIMIT));
  assert_non_null(strstr(zllm_error_last(), "card-depth: more than 64 brackets open at once"));
  assert_null(card("---\nbase_model: *nowhere\n---\n", ZLLM_EFORMAT));
  assert_non_null(strstr(zllm_error_last(), "found undefined alias"));
  assert_null(card("---\nx: &x [[a]]\ntags: *x\n---\n", ZLLM_EFORMAT)); /* an alias of a list of lists */
  /* 64 levels of block nesting are fine, 65 are not */
  char block[600] = "---\na:\n  ";
  for (int i = 0; i < 63; i++)
    strcat(block, "- ");
  strcat(block, "x\n---\n");
  zllm_card_free(card(block, 0));
  block[strlen(block) - 6] = '\0';
  strcat(block, "- - x\n---\n");
  assert_null(card(block, ZLLM_ELIMIT));
  assert_non_null(strstr(zllm_error_last(), "card-depth: nested deeper than 64 levels"));
}

static void test_format_config__fields(void **state)
{
  (void)state;
  const char *j = "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"torch_dtype\": \"bfloat16\"}";
  zllm_config *c = NULL;
  assert_int_equal(zllm_config_parse(&c, "m/config.json", j, strlen(j)), 0);
  assert_int_equal(c->narch, 1);
  assert_string_equal(c->architectures[0], "LlamaForCausalLM");
  assert_string_equal(c->torch_dtype, "bfloat16");
  zllm_config_free(c);
  j = "{\"dtype\": \"float16\", \"architectures\": null}";
  assert_int_equal(zllm_config_parse(&c, "m/config.json", j, strlen(j)), 0);
  assert_string_equal(c->torch_dtype, "float16");
  assert_int_equal(c->narch, 0);
  zllm_config_free(c);
  j = "{\"torch_dtype\": 3}";
  assert_int_equal(zllm_config_parse(&c, "m/config.json", j, strlen(j)), ZLLM_EFORMAT);
  j = "{\"a\": 1, \"a\": 2}";
  assert_int_equal(zllm_config_parse(&c, "m/config.json", j, strlen(j)), ZLLM_EFORMAT);
  assert_non_null(strstr(zllm_error_last(), "m/config.json: config-json:"));
  j = "[1]";
  assert_int_equal(zllm_config_parse(&c, "m/config.json", j, strlen(j)), ZLLM_EFORMAT);
}

static void test_format_index__weight_map(void **state)
{
  (void)state;
  const char *j = "{\"metadata\": {\"total_size\": 100}, \"weight_map\": {\"b\": \"s2.safetensors\", "
                  "\"a\": \"s1.safetensors\", \"c\": \"s1.safetensors\"}}";
  zllm_shard_index *x = NULL;
  assert_int_equal(zllm_index_parse(&x, "m/idx.json", j, strlen(j)), 0);
  assert_int_equal(x->n, 3);
  assert_int_equal(x->nfiles, 2);
  assert_string_equal(x->files[0], "s1.safetensors");
  assert_true(x->has_total_size);
  assert_int_equal(x->total_size, 100);
  assert_string_equal(zllm_index_lookup(x, "b"), "s2.safetensors");
  assert_null(zllm_index_lookup(x, "zz"));
  zllm_index_free(x);
}

static void test_format_index__hostile_paths(void **state)
{
  (void)state;
  const char *bad[] = {
    "{\"weight_map\": {\"a\": \"../../etc/passwd\"}}",
    "{\"weight_map\": {\"a\": \"/abs.safetensors\"}}",
    "{\"weight_map\": {\"a\": \"x\\\\y.safetensors\"}}",
    "{\"weight_map\": {\"a\": \"x\\ny\"}}",
    "{\"weight_map\": {\"a\": 3}}",
    "{\"weight_map\": []}",
    "{\"metadata\": {\"total_size\": -1}, \"weight_map\": {}}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    zllm_shard_index *x = NULL;
    int rc = zllm_index_parse(&x, "m/idx.json", bad[i], strlen(bad[i]));
    if (rc >= 0)
      fail_msg("accepted: %s", bad[i]);
    assert_null(x);
    assert_non_null(strstr(zllm_error_last(), "m/idx.json: "));
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_format_card__base_model_string),
    cmocka_unit_test(test_format_card__base_model_list_crlf_bom),
    cmocka_unit_test(test_format_card__missing_and_null),
    cmocka_unit_test(test_format_card__errors_name_file_and_rule),
    cmocka_unit_test(test_format_card__alias_bomb_is_cheap),
    cmocka_unit_test(test_format_card__budgets),
    cmocka_unit_test(test_format_config__fields),
    cmocka_unit_test(test_format_index__weight_map),
    cmocka_unit_test(test_format_index__hostile_paths),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
