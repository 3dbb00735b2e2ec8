/* Fuzz target: what a client sends zllm serve — a request path, a Range
 * header against a file size, a paths-info body (JSON or form).  The first
 * byte picks which; the rest is the input.  (libmicrohttpd parses the HTTP
 * framing; these are zllm's own parsers of what it hands over.) */
#include <stdlib.h>
#include <string.h>

#include "serve/serve_internal.h"
#include "zllm/json.h"
#include "zllm/le.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  char *text = malloc(size); /* the rest as a C string, as the server gets it */
  if (!text)
    return 0;
  memcpy(text, data + 1, size - 1);
  text[size - 1] = '\0';
  switch (data[0] % 4) {
  case 0: {
    zs_route r;
    if (zs_route_parse(text, &r) == 0 && (strlen(r.repo) >= sizeof r.repo || strlen(r.path) >= sizeof r.path))
      abort();
    break;
  }
  case 1: {
    uint64_t fsize = size > 9 ? zllm_le64(data + 1) : 100, lo = 0, hi = 0;
    const char *h = size > 9 ? text + 8 : text;
    if (zs_range_parse(h, fsize, &lo, &hi) == 1 && (lo > hi || hi >= fsize))
      abort(); /* a range the response would read past the file with */
    break;
  }
  default: {
    char **paths = NULL;
    size_t n = 0;
    if (zs_paths_parse((const char *)data + 1, size - 1, data[0] % 4 == 3, &paths, &n) == 0)
      zllm_strv_free(paths, n);
    break;
  }
  }
  free(text);
  return 0;
}
