/* zllm/census.h - the rows of a hub's census (zllm crawl --census,
 * zllm/crawl.h): OUT/census.tsv, a header row, then one row per repo with
 * the columns of ZLLM_CENSUS_COLUMNS, tab-separated.  No field holds a tab,
 * a newline or a control character (the crawl checked each against its
 * rule); an empty field is a value the listing did not give or that broke
 * its rule.  base_models is a comma-separated list of repo ids;
 * params_by_dtype is "DTYPE=N;DTYPE=N" sorted by dtype. */
#ifndef ZLLM_CENSUS_H
#define ZLLM_CENSUS_H

#include <stddef.h>
#include <stdint.h>

#define ZLLM_CENSUS_COLUMNS                                                                                  \
  "id\tsha\tcreated_at\tlast_modified\tlibrary\tpipeline_tag\tbase_relation\tbase_models\tparams_total\t" \
  "params_by_dtype\tgated\tfiles\tdownloads\tlikes"
#define ZLLM_CENSUS_NCOLUMNS 14
#define ZLLM_CENSUS_MAX_BASES 64   /* declared base models per repo kept */
#define ZLLM_CENSUS_MAX_DTYPES 32  /* dtypes per repo */
#define ZLLM_CENSUS_MAX_LINE 8192  /* one row: 64 bases of at most 96 bytes each fit */

/* A census row split into its columns (pointers into a writable copy of the
 * line).  Returns 0, or -1 when it does not have the columns. */
typedef struct {
  char *col[ZLLM_CENSUS_NCOLUMNS];
} zllm_census_cols;
int zllm_census_split(char *line, zllm_census_cols *out);
/* One line of a census as zllm_read_lines hands it (`path` names the file
 * in messages): 1 with *cols split from a copy of it in `copy`
 * (ZLLM_CENSUS_MAX_LINE + 1 bytes); 0 for the header line, or for a row too
 * long or without the columns (counted in *bad when bad is not NULL); an
 * error when the first line is not the census's header. */
int zllm_census_take(const char *line, size_t len, size_t lineno, const char *path, char *copy,
                     zllm_census_cols *cols, uint64_t *bad);

enum {
  ZLLM_CC_ID, ZLLM_CC_SHA, ZLLM_CC_CREATED, ZLLM_CC_MODIFIED, ZLLM_CC_LIBRARY, ZLLM_CC_PIPELINE, ZLLM_CC_RELATION, ZLLM_CC_BASES,
  ZLLM_CC_PARAMS, ZLLM_CC_DTYPES, ZLLM_CC_GATED, ZLLM_CC_FILES, ZLLM_CC_DOWNLOADS, ZLLM_CC_LIKES
};

#endif
