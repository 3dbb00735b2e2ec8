/* Fuzz target: what a Hub server sends the crawler — a listing page, a
 * model info, a tree page, response header lines, a safetensors header
 * fetched by Range.  The first byte picks which; the rest is the response.
 * The crawler's sources are included so their static handlers are reachable. */
#include "crawl/crawl.c"
#include "crawl/http.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void feed_headers(zl_req *r, const char *text, size_t len)
{
  for (size_t at = 0; at < len;) {
    const char *nl = memchr(text + at, '\n', len - at);
    size_t n = nl ? (size_t)(nl - (text + at)) + 1 : len - at;
    on_header((char *)text + at, 1, n, r);
    at += n;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  zllm_crawl_options o = ZLLM_CRAWL_OPTIONS_INIT;
  zllm_crawl_stats s = {0};
  crawl_ctx c = {.o = &o, .s = &s, .endpoint = "http://127.0.0.1:1"};
  cr_repo repo = {.id = "org/name", .sha = "0123456789abcdef0123456789abcdef01234567"};
  cr_file f = {.path = "model.safetensors", .size = 1 << 20};
  zl_req r = {.url = "http://127.0.0.1:1/x", .ok = 1, .status = 200, .fd = -1};
  zl_req r8 = r;
  const char *body = (const char *)data + 1;
  size_t len = size - 1;
  o.progress = 0;
  zllm_log_init(-1);
  switch (data[0] % 5) {
  case 0: /* a listing page */
  case 1: /* a model info */
  case 2: /* a tree page */
    zllm_buf_append(&r.body, body, len);
    if (data[0] % 5 == 0) {
      char why[1024];
      json_t *page = parse_json(&r, why, sizeof why);
      if (json_is_array(page))
        take_page(&c, page);
      json_decref(page);
      for (size_t i = 0; i < c.nrepos; i++)
        if (zllm_repo_id_check(c.repos[i].id) < 0)
          abort(); /* an unsafe id never gets through */
    } else if (data[0] % 5 == 1) {
      take_info(&c, &repo, &r);
    } else {
      take_tree_page(&c, &repo, &r);
      for (size_t i = 0; i < repo.nfiles; i++)
        if (zllm_path_check_relative(repo.files[i].path, "fuzz") < 0)
          abort(); /* an unsafe path never gets through */
    }
    break;
  case 3: /* response header lines */
    feed_headers(&r, body, len);
    break;
  case 4: /* 8 length bytes, then the header */
    if (len >= 8) {
      zllm_buf_append(&r8.body, body, 8);
      zllm_buf_append(&r.body, body + 8, len - 8);
      f.header_len = len - 8;
      summarize_header(&c, &repo, &f, &r8, &r);
    }
    break;
  }
  zllm_buf_free(&r.body);
  zllm_buf_free(&r8.body);
  free(r.next_url);
  free(repo.error);
  free(repo.tree_next);
  json_decref(repo.meta);
  for (size_t i = 0; i < repo.nfiles; i++) {
    free(repo.files[i].path);
    free(repo.files[i].error);
    json_decref(repo.files[i].dtypes);
  }
  free(repo.files);
  free(f.error);
  json_decref(f.dtypes);
  for (size_t i = 0; i < c.nrepos; i++)
    free(c.repos[i].id);
  free(c.repos);
  free(c.repo_ids.h);
  return 0;
}
