/* Replays every file of a corpus directory through LLVMFuzzerTestOneInput, so the
 * fuzz targets run in `make test` without libFuzzer. Prints "N passed, 0 failed";
 * a crash or sanitizer report fails the test. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  uint8_t *buf = malloc(1 << 20);
  if (!buf) { fclose(f); return -1; }
  size_t n = fread(buf, 1, 1 << 20, f);
  fclose(f);
  LLVMFuzzerTestOneInput(buf, n);
  free(buf);
  return 0;
}

int main(int argc, char **argv)
{
  unsigned count = 0;
  for (int i = 1; i < argc; i++) {
    DIR *d = opendir(argv[i]);
    if (!d) {
      if (replay_file(argv[i]) == 0) count++;
      else { fprintf(stderr, "cannot read %s\n", argv[i]); return 1; }
      continue;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (e->d_name[0] == '.') continue;
      char path[4096];
      snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
      if (replay_file(path) == 0) count++;
    }
    closedir(d);
  }
  /* An empty input is always replayed too, so a target with no corpus still runs. */
  LLVMFuzzerTestOneInput((const uint8_t *)"", 0);
  count++;
  printf("%u passed, 0 failed\n", count);
  return 0;
}
