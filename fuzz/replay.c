/* Runs a fuzz target over saved inputs (files, or every file of the given
 * directories) without libFuzzer, so the seeds and every crash ever found
 * are replayed by ctest under any compiler. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
  FILE *f = fopen(path, "rb");
  if (!f)
    return perror(path), 1;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
  size_t got = buf ? fread(buf, 1, (size_t)n, f) : 0;
  fclose(f);
  if (!buf || got != (size_t)n)
    return free(buf), fprintf(stderr, "%s: read failed\n", path), 1;
  LLVMFuzzerTestOneInput(buf, got);
  free(buf);
  return 0;
}

int main(int argc, char **argv)
{
  int bad = 0, count = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) < 0)
      continue; /* an empty regression folder may not exist in a checkout */
    if (!S_ISDIR(st.st_mode)) {
      bad |= run_file(argv[i]);
      count++;
      continue;
    }
    DIR *d = opendir(argv[i]);
    struct dirent *e;
    while (d && (e = readdir(d))) {
      char p[4096];
      snprintf(p, sizeof p, "%s/%s", argv[i], e->d_name);
      if (e->d_name[0] != '.' && stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
        bad |= run_file(p);
        count++;
      }
    }
    if (d)
      closedir(d);
  }
  printf("replayed %d inputs\n", count);
  return bad || count == 0;
}
