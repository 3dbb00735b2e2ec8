/* Private to crawl/: one census row from one listing entry (census.c), and
 * the --select expression over census rows (select.c).
 *
 * A census row is a TSV line with the columns of ZLLM_CENSUS_COLUMNS.  Every
 * field comes from the server and is untrusted: a bad id skips the entry, a
 * field that breaks its rule (type, length, characters, count) is left empty
 * and named; nothing in a row can hold a tab, a newline or a control
 * character. */
#ifndef ZLLM_CRAWL_CENSUS_INTERNAL_H
#define ZLLM_CRAWL_CENSUS_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "zllm/buf.h"
#include "zllm/census.h"

/* The expand[] fields a census asks of /api/models. */
#define ZL_CENSUS_EXPAND                                                                              \
  "expand%5B%5D=sha&expand%5B%5D=createdAt&expand%5B%5D=lastModified&expand%5B%5D=library_name"     \
  "&expand%5B%5D=pipeline_tag&expand%5B%5D=baseModels&expand%5B%5D=safetensors&expand%5B%5D=gated" \
  "&expand%5B%5D=siblings&expand%5B%5D=downloads&expand%5B%5D=likes"

/* Appends entry `m`'s row (with its '\n') to `line`.  Returns 1 when the
 * entry is skipped (no valid id: `why` says so), 0 when a row was written
 * (`dropped` gets the names of the fields left empty, "" when none), or
 * ZLLM_ENOMEM. */
int zl_census_row(const json_t *m, zllm_buf *line, char *why, size_t why_cap, char *dropped, size_t dropped_cap);

/* --select: terms joined by ',' (all must hold), each FIELD OP VALUE:
 *   id~GLOB  library=X  pipeline_tag=X  gated=X  relation=X   (=, != on text)
 *   base=ID (one of the declared bases)  dtype=DT (the repo has weights of DT)
 *   params OP N, files OP N, downloads OP N  (=, !=, <, <=, >, >=; N may be 7e9, 7B, 350M, 1.5K)
 *   created OP DATE, modified OP DATE  (ISO dates compared as text: 2024, 2024-06-01)
 * A row without the field's value never matches a term on it. */
typedef struct zl_select zl_select;
int zl_select_parse(const char *expr, zl_select **out);
int zl_select_match(const zl_select *s, const zllm_census_cols *row);
void zl_select_free(zl_select *s);

#endif
