/* Shared by the unit tests that build small hubs on disk: include after
 * cmocka.h. */
#ifndef ZLLM_TESTS_UNIT_FILES_H
#define ZLLM_TESTS_UNIT_FILES_H

#include <stdio.h>
#include <string.h>

#include "zllm/io.h"

/* Writes `content` to `root`/`rel`, making the directories on the way. */
static inline void unit_write_at(const char *root, const char *rel, const char *content)
{
  char path[1024], dir[1024];
  snprintf(path, sizeof path, "%s/%s", root, rel);
  snprintf(dir, sizeof dir, "%s", path);
  *strrchr(dir, '/') = '\0';
  assert_int_equal(zllm_mkdir_p(dir, 0755), 0);
  assert_int_equal(zllm_write_file_atomic(path, content, strlen(content)), 0);
}

#endif
