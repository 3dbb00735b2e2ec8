/* Fuzz target: what a census reads from a server and from its own state —
 * a listing page with expand[] fields (every row it yields must keep the
 * census's shape: 14 columns, no control character), a line of the page
 * log, a RateLimit / RateLimit-Policy field, and a --select expression.
 * The first byte picks which; the rest is the input.  census.c is included
 * so its static handlers are reachable. */
#include "crawl/census.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every row: the columns, nothing that could break a TSV line. */
static void check_rows(const zllm_buf *rows)
{
  const char *p = rows->data, *end = rows->data + rows->len;
  while (p && p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl)
      abort(); /* a row without its end */
    size_t tabs = 0;
    for (const char *q = p; q < nl; q++) {
      if ((unsigned char)*q < 0x20 && *q != '\t')
        abort();
      tabs += *q == '\t';
    }
    if (tabs != ZLLM_CENSUS_NCOLUMNS - 1)
      abort();
    char line[ZLLM_CENSUS_MAX_LINE + 1];
    size_t n = (size_t)(nl - p);
    if (n <= ZLLM_CENSUS_MAX_LINE) {
      zllm_census_cols cols;
      memcpy(line, p, n);
      line[n] = '\0';
      if (zllm_census_split(line, &cols) != 0)
        abort();
    }
    p = nl + 1;
  }
}

static void fuzz_page(const char *text, size_t len)
{
  zllm_crawl_options o = ZLLM_CRAWL_OPTIONS_INIT;
  zllm_crawl_stats cs = {0};
  zllm_census_stats s = {0};
  crawl_ctx c = {.o = &o, .s = &cs, .endpoint = "http://127.0.0.1:1"};
  census k = {.c = &c, .s = &s, .tsv_fd = -1, .log_fd = -1};
  json_t *page = NULL;
  o.progress = 0;
  if (zllm_json_load(&page, "fuzz", "api-json", text, len, CENSUS_PAGE_MAX) == 0 && json_is_array(page)) {
    zllm_buf rows = ZLLM_BUF_INIT;
    uint64_t n = 0;
    char latest[48];
    page_goes_back(&k, page, latest, sizeof latest);
    if (page_rows(&k, page, &rows, &n) == 0)
      check_rows(&rows);
    zllm_buf_free(&rows);
  }
  json_decref(page);
  free(k.seen.h);
}

static void fuzz_log(const char *text, size_t len)
{
  census k = {.query = "/api/models?x", .log_path = "fuzz"};
  log_reader lr = {&k, 0, 0};
  char *copy = strndup(text, len);
  size_t lineno = 1;
  for (char *save = NULL, *line = copy ? strtok_r(copy, "\n", &save) : NULL; line;
       line = strtok_r(NULL, "\n", &save))
    if (take_log_line(&lr, line, strlen(line), lineno++) < 0)
      break;
  free(copy);
  free(k.next);
  free(k.seen.h);
}

static void fuzz_rate(const char *text)
{
  zl_rl_entry e[8];
  zl_rl_parse(text, e, 8);
  zl_pacer p;
  zl_pacer_init(&p);
  p.shares = 3;
  zl_pacer_observe(&p, ZL_RL_API, text, text, 1.0);
  zl_pacer_spend(&p, ZL_RL_API, 1.0);
  double when = zl_pacer_when(&p, ZL_RL_API, 2.0);
  if (!(when >= 2.0) || when > 2.0 + 2 * ZL_RL_WINDOW_MAX) /* never in the past, never past a window (and its margin) */
    abort();
  zl_pacer_throttled(&p, ZL_RL_API, 5, 1, 3.0);
  zl_pacer_free(&p);
  zl_pacer_init(&p);
  zl_pacer_configure(&p, text);
  zl_pacer_free(&p);
}

static void fuzz_select(const char *text)
{
  zl_select *sel = NULL;
  if (zl_select_parse(text, &sel) == 0) {
    char row[] = "org/ft-1\tabc\t2024-06-03T00:00:00.000Z\t2024-07-01T00:00:00.000Z\ttransformers\ttext-generation\t"
                 "finetune\tmeta/base,meta/other\t8030261253\tBF16=8030261248;F32=5\tfalse\t12\t1500\t3";
    zllm_census_cols cols;
    if (zllm_census_split(row, &cols) == 0)
      zl_select_match(sel, &cols);
    zl_select_free(sel);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  zllm_log_init(-1);
  char *text = strndup((const char *)data + 1, size - 1); /* stops at a NUL: the header and expression readers see C strings */
  if (!text)
    return 0;
  switch (data[0] % 4) {
  case 0: fuzz_page((const char *)data + 1, size - 1); break;
  case 1: fuzz_log(text, strlen(text)); break;
  case 2: fuzz_rate(text); break;
  default: fuzz_select(text); break;
  }
  free(text);
  return 0;
}
