#include <stdlib.h>
#include <string.h>

#include "zllm/error.h"
#include "zllm/json.h"
#include "zllm/repofiles.h"

void zllm_config_free(zllm_config *c)
{
  if (!c)
    return;
  zllm_strv_free(c->architectures, c->narch);
  free(c->model_type);
  free(c->torch_dtype);
  free(c);
}

/* An optional string field: absent or null is fine, anything else must be a string. */
static int opt_string(char **dst, const json_t *root, const char *key, const char *name)
{
  const json_t *v = json_object_get(root, key);
  if (!v || json_is_null(v))
    return 0;
  if (!json_is_string(v))
    return zllm_error_set(ZLLM_EFORMAT, "%s: config-shape: '%s' is not a string", name, key);
  if (!(*dst = zllm_json_strdup(v)))
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  return 0;
}

int zllm_config_parse(zllm_config **out, const char *name, const char *text, size_t len)
{
  json_t *root = NULL;
  zllm_config *c = calloc(1, sizeof *c);
  int rc;
  *out = NULL;
  if (!c)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if ((rc = zllm_json_load(&root, name, "config-json", text, len, ZLLM_JSON_FILE_MAX)) < 0)
    goto done;
  if (!json_is_object(root)) {
    rc = zllm_error_set(ZLLM_EFORMAT, "%s: config-shape: top level is not an object", name);
    goto done;
  }
  const json_t *arch = json_object_get(root, "architectures");
  if (arch && !json_is_null(arch) &&
      (rc = zllm_json_string_list(&c->architectures, &c->narch, arch, name, "architectures")) < 0)
    goto done;
  if ((rc = opt_string(&c->model_type, root, "model_type", name)) < 0 ||
      (rc = opt_string(&c->torch_dtype, root, "torch_dtype", name)) < 0)
    goto done;
  if (!c->torch_dtype && (rc = opt_string(&c->torch_dtype, root, "dtype", name)) < 0)
    goto done;
  *out = c;
  c = NULL;
done:
  json_decref(root);
  zllm_config_free(c);
  return rc;
}
