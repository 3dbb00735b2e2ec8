#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zllm/error.h"
#include "zllm/path.h"

#define ZLLM_REPO_PATH_MAX 1024
#define ZLLM_REPO_PART_MAX 96
#define ZLLM_REPO_NAME_MAX 255 /* NAME_MAX: a longer component cannot be created on restore */

char *zllm_path_join(const char *a, const char *b)
{
  size_t la = strlen(a), lb = strlen(b);
  char *p = malloc(la + lb + 2);
  if (!p) {
    zllm_error_set(ZLLM_ENOMEM, "out of memory");
    return NULL;
  }
  memcpy(p, a, la);
  size_t o = la;
  if (la && a[la - 1] != '/')
    p[o++] = '/';
  memcpy(p + o, b, lb + 1);
  return p;
}

int zllm_path_check_relative(const char *path, const char *what)
{
  size_t len = strlen(path);
  if (len == 0)
    return zllm_error_set(ZLLM_EUNSAFE, "%s: empty path", what);
  if (len > ZLLM_REPO_PATH_MAX)
    return zllm_error_set(ZLLM_EUNSAFE, "%s: path longer than %d bytes", what, ZLLM_REPO_PATH_MAX);
  char shown[ZLLM_REPO_PATH_MAX * 4 + 1]; /* the path escaped, for messages */
  zllm_escape_text(shown, sizeof shown, path);
  if (path[0] == '/')
    return zllm_error_set(ZLLM_EUNSAFE, "%s: absolute path '%s' not allowed", what, shown);
  size_t n = 0, left = len;
  for (const unsigned char *p = (const unsigned char *)path; *p; p += n, left -= n) {
    if (*p == '\\')
      return zllm_error_set(ZLLM_EUNSAFE, "%s: backslash in path '%s'", what, shown);
    if (*p < 0x20 || *p == 0x7f)
      return zllm_error_set(ZLLM_EUNSAFE, "%s: control character in path '%s'", what, shown);
    /* every output (JSON, HDF5, a terminal) holds UTF-8 only, and the Hub's names are UTF-8 */
    if ((n = zllm_utf8_char_len(p, left)) == 0)
      return zllm_error_set(ZLLM_EUNSAFE, "%s: path '%s' is not UTF-8 (byte 0x%02x at offset %zu)", what, shown, *p,
                            len - left);
  }
  const char *comp = path;
  for (;;) {
    const char *slash = strchr(comp, '/');
    size_t clen = slash ? (size_t)(slash - comp) : strlen(comp);
    if (clen == 0)
      return zllm_error_set(ZLLM_EUNSAFE, "%s: empty component in path '%s'", what, shown);
    if (clen > ZLLM_REPO_NAME_MAX)
      return zllm_error_set(ZLLM_EUNSAFE, "%s: a component of path '%s' is longer than %d bytes", what, shown,
                            ZLLM_REPO_NAME_MAX);
    if ((clen == 1 && comp[0] == '.') || (clen == 2 && comp[0] == '.' && comp[1] == '.'))
      return zllm_error_set(ZLLM_EUNSAFE, "%s: '.' or '..' component in path '%s'", what, shown);
    if (!slash)
      break;
    comp = slash + 1;
  }
  return 0;
}

static int repo_part_check(const char *id, const char *part, size_t len)
{
  if (len == 0 || len > ZLLM_REPO_PART_MAX)
    return zllm_error_set(ZLLM_EUNSAFE, "repo id '%s': each part must have 1..%d characters", id,
                          ZLLM_REPO_PART_MAX);
  if (part[0] == '-' || part[0] == '.' || part[len - 1] == '-' || part[len - 1] == '.')
    return zllm_error_set(ZLLM_EUNSAFE, "repo id '%s': a part starts or ends with '-' or '.'", id);
  for (size_t i = 0; i < len; i++) {
    char c = part[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok)
      return zllm_error_set(ZLLM_EUNSAFE, "repo id '%s': character 0x%02x not allowed", id,
                            (unsigned char)c);
    if (i + 1 < len && ((c == '-' && part[i + 1] == '-') || (c == '.' && part[i + 1] == '.')))
      return zllm_error_set(ZLLM_EUNSAFE, "repo id '%s': '--' and '..' are not allowed", id);
  }
  return 0;
}

int zllm_repo_id_check(const char *id)
{
  const char *slash = strchr(id, '/');
  if (!slash)
    return repo_part_check(id, id, strlen(id));
  if (strchr(slash + 1, '/'))
    return zllm_error_set(ZLLM_EUNSAFE, "repo id '%s': more than one '/'", id);
  int rc = repo_part_check(id, id, (size_t)(slash - id));
  return rc < 0 ? rc : repo_part_check(id, slash + 1, strlen(slash + 1));
}

bool zllm_path_is_within(const char *root_real, const char *resolved)
{
  size_t lr = strlen(root_real);
  if (strncmp(resolved, root_real, lr) != 0)
    return false;
  return resolved[lr] == '\0' || resolved[lr] == '/' || (lr == 1 && root_real[0] == '/');
}
