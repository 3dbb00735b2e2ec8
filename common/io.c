#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int zllm_read_small_file(char **out, size_t *len_out, const char *path, size_t max)
{
  char *data = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
  struct stat st;
  if (fd < 0)
    return zllm_error_set_errno("%s: cannot open", path);
  if (fstat(fd, &st) < 0) {
    rc = zllm_error_set_errno("%s: cannot stat", path);
    goto done;
  }
  if (!S_ISREG(st.st_mode)) {
    rc = zllm_error_set(ZLLM_EFORMAT, "%s: not a regular file", path);
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

int zllm_write_file_atomic(const char *path, const void *data, size_t len)
{
  size_t plen = strlen(path) + 32;
  char *tmp = malloc(plen);
  int fd = -1, rc = 0;
  if (!tmp)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  snprintf(tmp, plen, "%s.tmp.%ld", path, (long)getpid());
  if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
    rc = zllm_error_set_errno("%s: cannot create", tmp);
    goto done;
  }
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
  size_t plen = strlen(dst) + 32;
  char *tmp = malloc(plen), *buf = malloc(ZLLM_IO_CHUNK);
  int in = -1, out = -1, rc = 0;
  if (!tmp || !buf) {
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
    goto done;
  }
  snprintf(tmp, plen, "%s.tmp.%ld", dst, (long)getpid());
  if ((in = open(src, O_RDONLY | O_CLOEXEC)) < 0) {
    rc = zllm_error_set_errno("%s: cannot open", src);
    goto done;
  }
  if ((out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
    rc = zllm_error_set_errno("%s: cannot create", tmp);
    goto done;
  }
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
