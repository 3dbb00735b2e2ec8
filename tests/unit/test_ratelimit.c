/* crawl/ratelimit.c: the RateLimit / RateLimit-Policy fields as the Hub
 * sends them and as a hostile server might, and the pacer's decisions on a
 * clock the test drives: a class's share of a quota per window, the
 * server's remainder and reset, the sliding window before the server says
 * where its windows end, a 429 waited out for at most one window, the
 * first request of a class going alone, and --rate. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "crawl/ratelimit_internal.h"

static void test_parse_the_hubs_fields(void **state)
{
  (void)state;
  zl_rl_entry e[4];
  assert_int_equal(zl_rl_parse("\"api\";r=491;t=187", e, 4), 1);
  assert_string_equal(e[0].name, "api");
  assert_int_equal(e[0].r, 491);
  assert_true(fabs(e[0].t - 187) < 1e-9);
  assert_int_equal(e[0].q, -1);
  assert_int_equal(zl_rl_parse("\"fixed window\";\"resolvers\";q=5000;w=300", e, 4), 1);
  assert_string_equal(e[0].name, "resolvers"); /* the class is named last */
  assert_int_equal(e[0].q, 5000);
  assert_true(fabs(e[0].w - 300) < 1e-9);
  /* spaces, two entries, a parameter we do not know, a quoted comma */
  assert_int_equal(zl_rl_parse(" \"a,b\" ; r=1 ; pk=:x: , \"pages\";r=2;t=3", e, 4), 2);
  assert_string_equal(e[0].name, "a,b");
  assert_int_equal(e[0].r, 1);
  assert_string_equal(e[1].name, "pages");
}

static void test_parse_rejects_what_it_cannot_believe(void **state)
{
  (void)state;
  zl_rl_entry e[2];
  const char *bad[] = {"", "garbage", "\"api\";r=-1;t=-5", "\"api\";r=x1;t=-5e999", "\"api\";r=1e300",
                       "\"api\";t=nan", "\"api\";t=inf", "\"api\";r=99999999999999999999"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_int_equal(zl_rl_parse(bad[i], e, 2), 0);
  char huge[4096];
  memset(huge, 'x', sizeof huge - 1);
  huge[sizeof huge - 1] = '\0';
  huge[0] = '"';
  assert_int_equal(zl_rl_parse(huge, e, 2), 0); /* an unterminated quote ends at the end */
  assert_int_equal(zl_rl_parse(NULL, e, 2), 0);
  /* many entries: only as many as asked for */
  assert_int_equal(zl_rl_parse("\"api\";r=1,\"api\";r=2,\"api\";r=3", e, 2), 2);
}

static void test_class_of_a_url(void **state)
{
  (void)state;
  assert_int_equal(zl_rl_class_of("https://huggingface.co/api/models?limit=1000"), ZL_RL_API);
  assert_int_equal(zl_rl_class_of("http://127.0.0.1:9/org/name/resolve/abc/model.safetensors"), ZL_RL_RESOLVERS);
  assert_int_equal(zl_rl_class_of("http://127.0.0.1:9/org/name"), ZL_RL_PAGES);
  assert_int_equal(zl_rl_class_of("http://127.0.0.1:9/x?q=/resolve/"), ZL_RL_PAGES);
}

/* The Hub's answers: a share of the quota per window, then the window's end. */
static void test_paces_inside_the_servers_windows(void **state)
{
  (void)state;
  zl_pacer p;
  zl_pacer_init(&p);
  double now = 100;
  assert_true(zl_pacer_when(&p, ZL_RL_API, now) == now);
  zl_pacer_spend(&p, ZL_RL_API, now);
  /* the first request goes alone until its answer tells the policy */
  assert_true(zl_pacer_when(&p, ZL_RL_API, now) > now);
  zl_pacer_observe(&p, ZL_RL_API, "\"api\";r=3;t=10", "\"fixed window\";\"api\";q=4;w=10", now);
  for (int i = 0; i < 3; i++) {
    assert_true(zl_pacer_when(&p, ZL_RL_API, now) == now);
    zl_pacer_spend(&p, ZL_RL_API, now);
  }
  /* four spent: wait for the reset (and a margin of 2% of the window for a server that rounds t down) */
  assert_true(fabs(zl_pacer_when(&p, ZL_RL_API, now) - 110.2) < 1e-9);
  assert_true(zl_pacer_when(&p, ZL_RL_RESOLVERS, now) == now);    /* another class is not held */
  assert_true(zl_pacer_when(&p, ZL_RL_API, 110.2) == 110.2);      /* a new window */
  /* the server says none are left (another client spent them): wait */
  zl_pacer_observe(&p, ZL_RL_API, "\"api\";r=0;t=4", NULL, 111);
  assert_true(fabs(zl_pacer_when(&p, ZL_RL_API, 111) - 115.2) < 1e-9);
  /* a reset further than a window is not believed */
  zl_pacer_observe(&p, ZL_RL_API, "\"api\";r=0;t=100000", NULL, 116);
  assert_true(zl_pacer_when(&p, ZL_RL_API, 116) <= 126.2 + 1e-9);
  zl_pacer_free(&p);
}

static void test_ranks_split_the_quota(void **state)
{
  (void)state;
  zl_pacer p;
  zl_pacer_init(&p);
  p.shares = 4;
  zl_pacer_observe(&p, ZL_RL_RESOLVERS, "\"resolvers\";r=100;t=300", "\"fixed window\";\"resolvers\";q=100;w=300", 0);
  int started = 0;
  while (zl_pacer_when(&p, ZL_RL_RESOLVERS, 1) == 1 && started < 1000) {
    zl_pacer_spend(&p, ZL_RL_RESOLVERS, 1);
    started++;
  }
  assert_int_equal(started, 25);
  assert_true(fabs(zl_pacer_eta(&p, ZL_RL_RESOLVERS, 50) - 600) < 1e-9); /* 50 more: two windows of 25 */
  zl_pacer_free(&p);
}

/* --rate on a server that says nothing: no span of one window holds more than the quota. */
static void test_rate_without_headers_slides(void **state)
{
  (void)state;
  zl_pacer p;
  zl_pacer_init(&p);
  assert_int_equal(zl_pacer_configure(&p, "api=3,window=10"), 0);
  double t[] = {0, 4, 8};
  for (int i = 0; i < 3; i++) {
    assert_true(zl_pacer_when(&p, ZL_RL_API, t[i]) == t[i]);
    zl_pacer_spend(&p, ZL_RL_API, t[i]);
    zl_pacer_observe(&p, ZL_RL_API, NULL, NULL, t[i]);
  }
  assert_true(fabs(zl_pacer_when(&p, ZL_RL_API, 9) - 10) < 1e-9); /* the first leaves the window at 10 */
  assert_true(fabs(zl_pacer_when(&p, ZL_RL_API, 10.5) - 10.5) < 1e-9);
  zl_pacer_spend(&p, ZL_RL_API, 10.5);
  assert_true(fabs(zl_pacer_when(&p, ZL_RL_API, 11) - 14) < 1e-9);
  /* a policy header does not override --rate */
  zl_pacer_observe(&p, ZL_RL_API, NULL, "\"fixed window\";\"api\";q=1000;w=1", 11);
  assert_int_equal(p.b[ZL_RL_API].quota, 3);
  zl_pacer_free(&p);
}

static void test_rate_spec(void **state)
{
  (void)state;
  zl_pacer p;
  zl_pacer_init(&p);
  assert_int_equal(zl_pacer_configure(&p, "api=500,resolvers=3000,pages=100,window=300"), 0);
  assert_int_equal(p.b[ZL_RL_RESOLVERS].quota, 3000);
  const char *bad[] = {"api", "api=0", "api=x", "bogus=5", "window=0", "api=5,", "api=5,,resolvers=3", "=5",
                       "window=99999"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_true(zl_pacer_configure(&p, bad[i]) < 0);
  zl_pacer_free(&p);
}

static void test_a_429_waits_at_most_a_window(void **state)
{
  (void)state;
  zl_pacer p;
  zl_pacer_init(&p);
  zl_pacer_observe(&p, ZL_RL_API, NULL, "\"fixed window\";\"api\";q=10;w=5", 0);
  /* the answer's own reset first */
  zl_pacer_observe(&p, ZL_RL_API, "\"api\";r=0;t=2", NULL, 1);
  assert_true(fabs(zl_pacer_throttled(&p, ZL_RL_API, 30, 1, 1) - 2.1) < 1e-9);
  /* else Retry-After, but never more than the window */
  assert_true(fabs(zl_pacer_throttled(&p, ZL_RL_API, 30, 0, 4) - 5) < 1e-9);
  assert_true(fabs(zl_pacer_throttled(&p, ZL_RL_API, 1, 0, 20) - 1) < 1e-9);
  assert_int_equal(p.b[ZL_RL_API].throttled, 3);
  assert_true(zl_pacer_when(&p, ZL_RL_API, 20.5) > 20.5); /* the class waits as a whole */
  /* a bare 429 (Retry-After only) on a class without a known limit holds its request only */
  zl_pacer_spend(&p, ZL_RL_RESOLVERS, 30);
  zl_pacer_observe(&p, ZL_RL_RESOLVERS, NULL, NULL, 30);
  assert_true(fabs(zl_pacer_throttled(&p, ZL_RL_RESOLVERS, 1, 0, 30) - 1) < 1e-9);
  assert_true(fabs(zl_pacer_when(&p, ZL_RL_RESOLVERS, 30) - 30) < 1e-9);
  zl_pacer_free(&p);
}

/* t in whole seconds, rounded up: the lowest bound of a window's answers is kept. */
static void test_the_closest_reset_is_kept(void **state)
{
  (void)state;
  zl_pacer p;
  zl_pacer_init(&p);
  zl_pacer_observe(&p, ZL_RL_API, "\"api\";r=50;t=3", "\"fixed window\";\"api\";q=100;w=3", 0.0);
  zl_pacer_observe(&p, ZL_RL_API, "\"api\";r=40;t=1", NULL, 1.9);  /* the reset is at most 2.9 */
  zl_pacer_observe(&p, ZL_RL_API, "\"api\";r=30;t=1", NULL, 2.5);  /* a looser bound: 3.5 */
  assert_true(fabs(p.b[ZL_RL_API].reset_at - (2.9 + 0.06)) < 1e-9);
  zl_pacer_free(&p);
}

/* What the server says is left is the whole client's: each rank takes its share. */
static void test_ranks_split_what_is_left(void **state)
{
  (void)state;
  zl_pacer p;
  zl_pacer_init(&p);
  p.shares = 2;
  zl_pacer_observe(&p, ZL_RL_API, "\"api\";r=5;t=1", "\"fixed window\";\"api\";q=100;w=1", 0);
  assert_int_equal(p.b[ZL_RL_API].remaining, 2);
  for (int i = 0; i < 2; i++) {
    assert_true(fabs(zl_pacer_when(&p, ZL_RL_API, 0.1) - 0.1) < 1e-9);
    zl_pacer_spend(&p, ZL_RL_API, 0.1);
  }
  assert_true(fabs(zl_pacer_when(&p, ZL_RL_API, 0.2) - 1.02) < 1e-9); /* the rest is the other rank's */
  zl_pacer_free(&p);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_the_hubs_fields),
      cmocka_unit_test(test_parse_rejects_what_it_cannot_believe),
      cmocka_unit_test(test_class_of_a_url),
      cmocka_unit_test(test_paces_inside_the_servers_windows),
      cmocka_unit_test(test_ranks_split_the_quota),
      cmocka_unit_test(test_rate_without_headers_slides),
      cmocka_unit_test(test_rate_spec),
      cmocka_unit_test(test_a_429_waits_at_most_a_window),
      cmocka_unit_test(test_ranks_split_what_is_left),
      cmocka_unit_test(test_the_closest_reset_is_kept),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
