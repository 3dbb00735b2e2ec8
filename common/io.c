#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zllm/error.h"
#include "zllm/io.h"

int zllm_pread_full(int fd, void *buf, size_t len, uint64_t off, const char *name)
{
  size_t done = 0;
  while (done < len) {
    ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return zllm_error_set_errno("%s: read of %zu bytes at offset %llu failed", name, len,
                                  (unsigned long long)off);
    if (n == 0)
      return zllm_error_set(ZLLM_EFORMAT, "%s: truncated: wanted %zu bytes at offset %llu, file ends",
                            name, len, (unsigned long long)off);
    done += (size_t)n;
  }
  return 0;
}

/* "a FIFO", "a device", "a socket", "a directory", ... for messages. */
static const char *mode_kind(mode_t mode)
{
  return S_ISREG(mode) ? "a regular file" : S_ISDIR(mode) ? "a directory" : S_ISFIFO(mode) ? "a FIFO"
         : S_ISCHR(mode) || S_ISBLK(mode) ? "a device" : S_ISSOCK(mode) ? "a socket"
         : S_ISLNK(mode) ? "a symlink" : "not a file";
}

static int not_regular(const char *shown, mode_t mode)
{
  return zllm_error_set(ZLLM_EFORMAT, "%s: not a regular file (%s); refused", shown, mode_kind(mode));
}

int zllm_open_regular(int dirfd, const char *name, int flags, const char *shown, int *fd_out)
{
  struct stat st;
  int nofollow = flags & O_NOFOLLOW, fd = -1, rc = 0;
  *fd_out = -1;
  /* what is there, before opening it: opening a device can have effects */
  if (fstatat(dirfd, name, &st, nofollow ? AT_SYMLINK_NOFOLLOW : 0) < 0)
    return errno == ENOENT ? zllm_error_set(ZLLM_ENOTFOUND, "%s: missing", shown)
                           : zllm_error_set_errno("%s: cannot stat", shown);
  if (nofollow && S_ISLNK(st.st_mode))
    return zllm_error_set(ZLLM_EUNSAFE, "%s: is a symlink; not followed", shown);
  if (!S_ISREG(st.st_mode))
    return not_regular(shown, st.st_mode);
  /* O_NONBLOCK: something swapped in since the stat (a FIFO) cannot block
   * the open; the descriptor is checked again below */
  if ((fd = openat(dirfd, name, flags | O_NONBLOCK | O_CLOEXEC)) < 0)
    return errno == ELOOP ? zllm_error_set(ZLLM_EUNSAFE, "%s: is a symlink; not followed", shown)
           : errno == ENOENT ? zllm_error_set(ZLLM_ENOTFOUND, "%s: missing", shown)
           : errno == ENXIO ? zllm_error_set(ZLLM_EFORMAT, "%s: not a regular file (a socket or a FIFO); refused", shown)
                             : zllm_error_set_errno("%s: cannot open", shown);
  if ((rc = zllm_fd_regular(fd, shown)) < 0)
    close(fd);
  else
    *fd_out = fd;
  return rc;
}

int zllm_fd_regular(int fd, const char *shown)
{
  struct stat st;
  if (fstat(fd, &st) < 0)
    return zllm_error_set_errno("%s: cannot stat", shown);
  if (!S_ISREG(st.st_mode))
    return not_regular(shown, st.st_mode);
  if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0)
    return zllm_error_set_errno("%s: cannot clear O_NONBLOCK", shown);
  return 0;
}

int zllm_check_regular_if_present(int dirfd, const char *name, const char *shown)
{
  struct stat st;
  if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? 0 : zllm_error_set_errno("%s: cannot stat", shown);
  if (S_ISLNK(st.st_mode))
    return zllm_error_set(ZLLM_EUNSAFE, "%s: is a symlink; not followed", shown);
  return S_ISREG(st.st_mode) ? 0 : not_regular(shown, st.st_mode);
}

int zllm_read_small_file(char **out, size_t *len_out, const char *path, size_t max)
{
  char *data = NULL;
  int fd = -1, rc = zllm_open_regular(AT_FDCWD, path, O_RDONLY, path, &fd);
  struct stat st;
  if (rc < 0)
    return rc == ZLLM_ENOTFOUND ? zllm_error_set(ZLLM_ENOTFOUND, "%s: cannot open: No such file or directory", path)
                                : rc;
  if (fstat(fd, &st) < 0) {
    rc = zllm_error_set_errno("%s: cannot stat", path);
    goto done;
  }
  if ((uint64_t)st.st_size > max) {
    rc = zllm_error_set(ZLLM_ELIMIT, "%s: size-limit: %lld bytes is more than the %zu allowed",
                        path, (long long)st.st_size, max);
    goto done;
  }
  size_t len = (size_t)st.st_size;
  if (!(data = malloc(len + 1))) {
    rc = zllm_error_set(ZLLM_ENOMEM, "%s: out of memory", path);
    goto done;
  }
  if ((rc = zllm_pread_full(fd, data, len, 0, path)) < 0)
    goto done;
  data[len] = '\0';
  *out = data;
  *len_out = len;
  data = NULL;
done:
  free(data);
  close(fd);
  return rc;
}

int zllm_read_lines(const char *path, size_t max_line, zllm_line_fn fn, void *ctx)
{
  char *line = malloc(max_line + 1), *chunk = malloc(ZLLM_LINE_CHUNK);
  int fd = -1, rc = line && chunk ? zllm_open_regular(AT_FDCWD, path, O_RDONLY, path, &fd)
                                  : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  size_t len = 0, lineno = 0;
  int too_long = 0;
  ssize_t got = 0;
  while (rc == 0 && (got = read(fd, chunk, ZLLM_LINE_CHUNK)) != 0) {
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0) {
      rc = zllm_error_set_errno("%s: cannot read", path);
      break;
    }
    for (const char *p = chunk, *end = chunk + got; rc == 0 && p < end;) {
      const char *nl = memchr(p, '\n', (size_t)(end - p));
      size_t n = (size_t)((nl ? nl : end) - p), room = max_line - len;
      /* a line past the cap is skipped to its end, never held */
      memcpy(line + len, p, n < room ? n : room);
      len += n < room ? n : room;
      too_long |= n > room;
      p += n;
      if (!nl)
        break;
      p++; /* past the newline */
      line[len] = '\0';
      rc = fn(ctx, too_long ? NULL : line, too_long ? 0 : len, ++lineno);
      len = 0;
      too_long = 0;
    }
  }
  if (rc == 0 && (len || too_long)) { /* the last line, without its newline */
    line[len] = '\0';
    rc = fn(ctx, too_long ? NULL : line, too_long ? 0 : len, ++lineno);
  }
  if (fd >= 0)
    close(fd);
  free(line);
  free(chunk);
  return rc;
}

static int write_all(int fd, const void *data, size_t len, const char *name)
{
  size_t done = 0;
  while (done < len) {
    ssize_t n = write(fd, (const char *)data + done, len - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return zllm_error_set_errno("%s: write failed", name);
    done += (size_t)n;
  }
  return 0;
}

int zllm_pwrite_full(int fd, const void *data, size_t len, uint64_t off, const char *name)
{
  size_t done = 0;
  while (done < len) {
    ssize_t n = pwrite(fd, (const char *)data + done, len - done, (off_t)(off + done));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return zllm_error_set_errno("%s: write failed", name);
    done += (size_t)n;
  }
  return 0;
}

int zllm_append_synced(int fd, const void *data, size_t len, const char *name)
{
  const char *p = data;
  while (len) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return zllm_error_set_errno("%s: write failed", name);
    p += n;
    len -= (size_t)n;
  }
  return fdatasync(fd) < 0 ? zllm_error_set_errno("%s: fdatasync failed", name) : 0;
}

/* "<base>.zllm-tmp.<12 random letters>" created with O_EXCL|O_NOFOLLOW in
 * dirfd: a name nobody can predict, and a symlink planted under it is never
 * followed (the create fails and another name is tried). */
int zllm_tmp_create(int dirfd, const char *base, char **name_out, int *fd_out)
{
  static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  size_t len = strlen(base) + 24;
  char *name = malloc(len);
  *name_out = NULL;
  *fd_out = -1;
  if (!name)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (int attempt = 0; attempt < 100; attempt++) {
    unsigned char rnd[12];
    char suffix[13];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) /* a predictable name would defeat the point */
      break;
    for (size_t i = 0; i < sizeof rnd; i++)
      suffix[i] = letters[rnd[i] % (sizeof letters - 1)];
    suffix[12] = '\0';
    snprintf(name, len, "%s.zllm-tmp.%s", base, suffix);
    int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd >= 0) {
      *name_out = name;
      *fd_out = fd;
      return 0;
    }
    if (errno != EEXIST && errno != ELOOP)
      break;
  }
  int rc = zllm_error_set_errno("%s.zllm-tmp.*: cannot create a temporary file", base);
  free(name);
  return rc;
}

int zllm_write_file_atomic(const char *path, const void *data, size_t len)
{
  char *tmp = NULL;
  int fd = -1, rc = zllm_tmp_create(AT_FDCWD, path, &tmp, &fd);
  if (rc < 0)
    return rc;
  if ((rc = write_all(fd, data, len, tmp)) < 0)
    goto done;
  if (close(fd) < 0) {
    fd = -1;
    rc = zllm_error_set_errno("%s: close failed", tmp);
    goto done;
  }
  fd = -1;
  if (rename(tmp, path) < 0)
    rc = zllm_error_set_errno("%s: rename to %s failed", tmp, path);
done:
  if (fd >= 0)
    close(fd);
  if (rc < 0)
    unlink(tmp);
  free(tmp);
  return rc;
}

int zllm_copy_file(const char *src, const char *dst)
{
  char *tmp = NULL, *buf = malloc(ZLLM_IO_CHUNK);
  int in = -1, out = -1, rc = 0;
  if (!buf) {
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
    goto done;
  }
  if ((in = open(src, O_RDONLY | O_CLOEXEC)) < 0) {
    rc = zllm_error_set_errno("%s: cannot open", src);
    goto done;
  }
  if ((rc = zllm_tmp_create(AT_FDCWD, dst, &tmp, &out)) < 0)
    goto done;
  for (;;) {
    ssize_t n = read(in, buf, ZLLM_IO_CHUNK);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      rc = zllm_error_set_errno("%s: read failed", src);
      goto done;
    }
    if (n == 0)
      break;
    if ((rc = write_all(out, buf, (size_t)n, tmp)) < 0)
      goto done;
  }
  /* on disk before it gets its name: a catalog may reference it next */
  if (fsync(out) < 0)
    rc = zllm_error_set_errno("%s: fsync failed", tmp);
  if (close(out) < 0 && rc == 0)
    rc = zllm_error_set_errno("%s: close failed", tmp);
  out = -1;
  if (rc == 0 && rename(tmp, dst) < 0)
    rc = zllm_error_set_errno("%s: rename to %s failed", tmp, dst);
done:
  if (in >= 0)
    close(in);
  if (out >= 0)
    close(out);
  if (rc < 0 && tmp)
    unlink(tmp);
  free(tmp);
  free(buf);
  return rc;
}

int zllm_mkdir_p(const char *path, mode_t mode)
{
  char *p = strdup(path);
  int rc = 0;
  if (!p)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (char *s = p + 1;; s++) {
    if (*s != '/' && *s != '\0')
      continue;
    char saved = *s;
    *s = '\0';
    if (mkdir(p, mode) < 0 && errno != EEXIST) {
      rc = zllm_error_set_errno("%s: cannot create directory", p);
      break;
    }
    *s = saved;
    if (saved == '\0')
      break;
  }
  free(p);
  return rc;
}

int zllm_sync_path(const char *path)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
  if (fd < 0)
    return zllm_error_set_errno("%s: cannot open to sync", path);
  if (fsync(fd) < 0)
    rc = zllm_error_set_errno("%s: fsync failed", path);
  close(fd);
  return rc;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

int zllm_rm_rf(const char *path)
{
  if (access(path, F_OK) < 0)
    return 0;
  if (nftw(path, rm_entry, 32, FTW_DEPTH | FTW_PHYS) < 0)
    return zllm_error_set_errno("%s: cannot remove", path);
  return 0;
}

/* One component: a directory, never through a symlink unless follow. */
static int open_dir_component(int dirfd, const char *name, int create, int follow, int *out)
{
  int nofollow = follow ? 0 : O_NOFOLLOW;
  int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | nofollow | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT && create) {
    if (mkdirat(dirfd, name, 0755) < 0 && errno != EEXIST)
      return -1;
    fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | nofollow | O_CLOEXEC);
  }
  *out = fd;
  return fd < 0 ? -1 : 0;
}

int zllm_open_dir_beneath(const char *top, const char *rel, int create, int follow_links, int *out)
{
  char *copy = strdup(rel), *save = NULL;
  const char *sep = top[0] && top[strlen(top) - 1] == '/' ? "" : "/"; /* for messages */
  int cur = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;
  *out = -1;
  if (cur < 0 || !copy) {
    rc = cur < 0 ? zllm_error_set_errno("%s: cannot open directory", top) : zllm_error_set(ZLLM_ENOMEM, "out of memory");
    free(copy);
    if (cur >= 0)
      close(cur);
    return rc;
  }
  for (char *comp = strtok_r(copy, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
    int next = -1;
    if (strcmp(comp, ".") == 0 || strcmp(comp, "..") == 0) {
      rc = zllm_error_set(ZLLM_EUNSAFE, "%s%s%s: '.' or '..' component", top, sep, rel);
      break;
    }
    if (open_dir_component(cur, comp, create, follow_links, &next) < 0) {
      size_t at = (size_t)(comp - copy) + strlen(comp);
      rc = errno == ELOOP || errno == ENOTDIR
               ? zllm_error_set(ZLLM_EUNSAFE, "%s%s%.*s: is a symlink or not a directory; not followed", top,
                                sep, (int)at, rel)
               : zllm_error_set_errno("%s%s%.*s: cannot open directory", top, sep, (int)at, rel);
      break;
    }
    close(cur);
    cur = next;
  }
  free(copy);
  if (rc < 0) {
    close(cur);
    return rc;
  }
  *out = cur;
  return 0;
}

int zllm_open_nofollow(const char *path, int *fd_out)
{
  int dir = -1, fd = -1, rc = 0;
  const char *slash = strrchr(path, '/');
  *fd_out = -1;
  if (path[0] != '/' || !slash || !slash[1])
    return zllm_error_set(ZLLM_EINVAL, "%s: not an absolute file path", path);
  char *parent = strndup(path + 1, (size_t)(slash - path - 1));
  if (!parent)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  rc = zllm_open_dir_beneath("/", parent, 0, 0, &dir);
  /* O_NONBLOCK: a FIFO put in the file's place must not block the open */
  if (rc == 0 && (fd = openat(dir, slash + 1, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) < 0)
    rc = errno == ELOOP ? zllm_error_set(ZLLM_EUNSAFE, "%s: is a symlink; not followed", path)
                        : zllm_error_set_errno("%s: cannot open", path);
  if (rc == 0 && fcntl(fd, F_SETFL, 0) < 0)
    rc = zllm_error_set_errno("%s: cannot clear O_NONBLOCK", path);
  if (rc < 0 && fd >= 0)
    close(fd);
  else
    *fd_out = fd;
  if (dir >= 0)
    close(dir);
  free(parent);
  return rc;
}

uint64_t zllm_io_bytes_read(void)
{
  char line[128];
  unsigned long long v = 0;
  FILE *f = fopen("/proc/self/io", "re");
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "rchar: %llu", &v) == 1)
      break;
  if (f)
    fclose(f);
  return (uint64_t)v;
}
