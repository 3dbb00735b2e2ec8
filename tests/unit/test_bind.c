/* bind/: what the Python package asks the library before it maps a struct. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "zllm/archive.h"
#include "zllm/bind.h"
#include "zllm/safetensors.h"

static void test_sizes_of_the_mapped_structs(void **state)
{
  (void)state;
  assert_int_equal(zllm_bind_sizeof("zllm_archive_repo"), sizeof(zllm_archive_repo));
  assert_int_equal(zllm_bind_sizeof("zllm_archive_file"), sizeof(zllm_archive_file));
  assert_int_equal(zllm_bind_sizeof("zllm_st_header"), sizeof(zllm_st_header));
  assert_int_equal(zllm_bind_sizeof("zllm_st_tensor"), sizeof(zllm_st_tensor));
  assert_int_equal(zllm_bind_sizeof("zllm_slice_store_stats"), sizeof(zllm_slice_store_stats));
  /* a struct the list does not hold is 0, so a binding refuses it */
  assert_int_equal(zllm_bind_sizeof("zllm_archive"), 0);
  assert_int_equal(zllm_bind_sizeof(""), 0);
  assert_int_equal(zllm_bind_sizeof(NULL), 0);
}

static void test_dtype_names(void **state)
{
  (void)state;
  assert_string_equal(zllm_bind_dtype_name(ZLLM_DT_BF16), "BF16");
  assert_int_equal(zllm_bind_dtype_size(ZLLM_DT_BF16), 2);
  assert_string_equal(zllm_bind_dtype_name(ZLLM_DT_C64), "C64");
  assert_int_equal(zllm_bind_dtype_size(ZLLM_DT_F64), 8);
  assert_null(zllm_bind_dtype_name(ZLLM_DT_COUNT));
  assert_null(zllm_bind_dtype_name(-1));
  assert_int_equal(zllm_bind_dtype_size(-1), 0);
  assert_string_equal(zllm_bind_version(), ZLLM_VERSION);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sizes_of_the_mapped_structs),
      cmocka_unit_test(test_dtype_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
