/*
 * One writer process of bench/guestfs, in C so the writer's own cost stays out of the figures:
 * loops open(O_WRONLY|O_CREAT|O_TRUNC) + write(a ~60 B two-line CSV) + close() on one file for
 * DURATION_MS, timing every close(). RATE > 0 paces it to RATE closes per second (0: as fast as it
 * can). Prints one JSON line: closes, elapsedMs, closeP50Us, closeP99Us, failures.
 * Usage: guestfs-writer FILE DURATION_MS WRITER_ID [RATE]
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_ns (void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int by_value (const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main (int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s FILE DURATION_MS WRITER_ID [RATE]\n", argv[0]);
    return 2;
  }
  const char *file = argv[1];
  double duration_ns = atof(argv[2]) * 1e6;
  const char *writer = argv[3];
  double rate = argc > 4 ? atof(argv[4]) : 0;
  size_t capacity = 1 << 16, closes = 0, failures = 0;
  double *close_ns = malloc(capacity * sizeof *close_ns);
  char content[128];
  double started = now_ns();
  double deadline = started + duration_ns;
  for (;;) {
    double at = now_ns();
    if (at >= deadline) break;
    if (rate > 0) {
      double due = started + closes * 1e9 / rate;
      if (at < due) {
        struct timespec pause = { 0, (long)(due - at) };
        nanosleep(&pause, NULL);
        continue;
      }
    }
    int length = snprintf(content, sizeof content, "current_users,load_average,writer\n%zu,0.%zu,%s\n", 100000 + closes, closes % 100, writer);
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { failures++; continue; }
    if (write(fd, content, length) != length) failures++;
    double before = now_ns();
    if (close(fd) != 0) failures++;
    if (closes == capacity) close_ns = realloc(close_ns, (capacity *= 2) * sizeof *close_ns);
    close_ns[closes++] = now_ns() - before;
  }
  double elapsed_ms = (now_ns() - started) / 1e6;
  qsort(close_ns, closes, sizeof *close_ns, by_value);
  double p50 = closes ? close_ns[(size_t)(0.5 * closes)] / 1000 : 0;
  double p99 = closes ? close_ns[(size_t)(0.99 * closes) < closes ? (size_t)(0.99 * closes) : closes - 1] / 1000 : 0;
  printf("{\"closes\":%zu,\"elapsedMs\":%.1f,\"closeP50Us\":%.1f,\"closeP99Us\":%.1f,\"failures\":%zu}\n", closes, elapsed_ms, p50, p99, failures);
  return 0;
}
