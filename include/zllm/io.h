/* zllm/io.h - file helpers with bounded memory.  Local calls. */
#ifndef ZLLM_IO_H
#define ZLLM_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Size of the streaming window used when hashing or copying data. */
#define ZLLM_IO_CHUNK ((size_t)4 << 20)

/* Reads exactly `len` bytes at `off` (retrying short reads and EINTR).
 * A file shorter than off+len is ZLLM_EFORMAT ("truncated"). */
int zllm_pread_full(int fd, void *buf, size_t len, uint64_t off, const char *name);

/* Writes all `len` bytes at `off` (retrying short writes and EINTR). */
int zllm_pwrite_full(int fd, const void *data, size_t len, uint64_t off, const char *name);
/* Appends all `len` bytes at fd's offset (a file opened O_APPEND, or at its
 * end) and syncs the data: once it returns 0, a crash keeps them. */
int zllm_append_synced(int fd, const void *data, size_t len, const char *name);

/* Opens `name` under dirfd (AT_FDCWD: a path) with `flags` (O_RDONLY or
 * O_RDWR, with O_NOFOLLOW where a final symlink must not be followed) and
 * refuses anything but a regular file by `shown` ("not a regular file (a
 * FIFO); refused"): a FIFO, device or socket put where zllm expects a file
 * would otherwise block the open or the read forever.  The file is
 * looked at before it is opened, opened with O_NONBLOCK (then cleared) and
 * checked again.  ENOENT is ZLLM_ENOTFOUND, a refused symlink ZLLM_EUNSAFE,
 * anything not regular ZLLM_EFORMAT.  *fd_out: caller closes. */
int zllm_open_regular(int dirfd, const char *name, int flags, const char *shown, int *fd_out);

/* The check zllm_open_regular makes of what it opened, for a descriptor
 * opened with O_NONBLOCK elsewhere (with O_CREAT, say): refuses anything
 * but a regular file by `shown`, then clears O_NONBLOCK.  The caller closes
 * fd either way. */
int zllm_fd_regular(int fd, const char *shown);

/* 0 when `name` under dirfd is missing or a regular file (not followed if
 * a symlink: a link is refused too), else the same refusal as above. */
int zllm_check_regular_if_present(int dirfd, const char *name, const char *shown);


/* Reads a text file line by line in bounded memory (one line of at most
 * `max_line` bytes and a read window): fn gets each line without its '\n'
 * (and its 1-based number); a longer line is skipped to its end and given
 * as NULL, 0.  A non-zero return from fn stops the read and is returned. */
#define ZLLM_LINE_CHUNK ((size_t)1 << 20)
typedef int (*zllm_line_fn)(void *ctx, const char *line, size_t len, size_t lineno);
int zllm_read_lines(const char *path, size_t max_line, zllm_line_fn fn, void *ctx);

/* Reads a whole file of at most `max` bytes into a NUL-terminated buffer the
 * caller frees.  A larger file is ZLLM_ELIMIT; anything but a regular file
 * (a FIFO, a device) is refused as zllm_open_regular does. */
int zllm_read_small_file(char **out, size_t *len_out, const char *path, size_t max);

/* Writes `len` bytes to `path` through a temporary name and rename(2), so a
 * crash never leaves a half-written file under the final name. */
int zllm_write_file_atomic(const char *path, const void *data, size_t len);

/* Copies a file's bytes in ZLLM_IO_CHUNK windows (through a temporary name). */
int zllm_copy_file(const char *src, const char *dst);

/* Creates "<base>.zllm-tmp.<random>" in dirfd (AT_FDCWD: relative to the
 * working directory) with O_CREAT|O_EXCL|O_NOFOLLOW, so a symlink planted at
 * a temporary name can never redirect a write.  *name_out is malloc'ed
 * (relative to dirfd, caller frees) and *fd_out open for writing. */
int zllm_tmp_create(int dirfd, const char *base, char **name_out, int *fd_out);

/* Opens directory `rel` ('/'-separated) under directory `top` (a path the
 * caller names, opened as given), one component at a time with
 * O_NOFOLLOW|O_DIRECTORY (mkdirat first when `create`), so no symlink on the
 * way is followed unless `follow_links`.  A symlink is ZLLM_EUNSAFE naming
 * "<top>/<the prefix>".  *out: the new fd (caller closes). */
int zllm_open_dir_beneath(const char *top, const char *rel, int create, int follow_links, int *out);

/* Opens an absolute path for reading without following any symlink on the
 * way (each directory, then the file: O_NOFOLLOW; a symlink is EUNSAFE) and
 * without blocking on a FIFO.  The caller checks what it opened (fstat). */
int zllm_open_nofollow(const char *path, int *fd_out);

/* fsync(2) of a file or a directory by name (a directory after a rename in
 * it, so the new name survives a power cut). */
int zllm_sync_path(const char *path);

/* mkdir -p; existing directories are fine. */
int zllm_mkdir_p(const char *path, mode_t mode);

/* Removes a directory tree (for tests and scratch dirs); missing is fine. */
int zllm_rm_rf(const char *path);

/* Bytes this process has read through read-family system calls so far
 * (/proc/self/io "rchar", page-cache hits included; reaped children too),
 * or 0 where the kernel does not say. */
uint64_t zllm_io_bytes_read(void);

#endif
