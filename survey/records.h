/* Private to survey/: this rank's scan records (zllm/analyze.h: an F line
 * and its T lines per file), spilled under OUT as they are made and indexed
 * by file (24 bytes per file of this rank's share), read back in file
 * order.  The records of a repo are all made by the rank that took it. */
#ifndef ZLLM_SURVEY_RECORDS_H
#define ZLLM_SURVEY_RECORDS_H

#include <stddef.h>

#include "zllm/buf.h"

typedef struct sv_records sv_records;

int sv_records_open(sv_records **out, const char *spill);
/* The buffer the next record is made in (emptied). */
zllm_buf *sv_records_begin(sv_records *r);
/* The record made in that buffer is file `file`'s: spilled and indexed. */
int sv_records_end(sv_records *r, size_t file);
/* After the last record: the index sorted by file (a file twice is an error). */
int sv_records_seal(sv_records *r);
size_t sv_records_count(const sv_records *r);
/* The file of the k-th record in file order (SIZE_MAX past the end). */
size_t sv_records_file(const sv_records *r, size_t k);
/* The k-th record in file order: its file and its text, NUL-terminated
 * (borrowed until the next call). */
int sv_records_get(sv_records *r, size_t k, size_t *file, char **text, size_t *len);
void sv_records_free(sv_records *r); /* removes the spill; accepts NULL */

#endif
