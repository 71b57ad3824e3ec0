/*
 * gm_bench_fiber: what one request's fiber switches cost, gmd's own switch
 * against ucontext (the baseline, measured in the same run).  A request
 * costs a start and a finish, plus a yield and a resume per Redis step.
 * Prints figures; never a test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "fiber.h"

/* The same functions built over ucontext (CMakeLists.txt renames them). */
gm__fiber *uc_fiber_new(size_t stack_size);
void uc_fiber_destroy(gm__fiber **f);
int uc_fiber_start(gm__fiber *f, gm__fiber_fn fn, void *arg);
int uc_fiber_resume(gm__fiber *f);
void uc_fiber_yield(void);

typedef struct impl {
  const char *name;
  gm__fiber *(*make)(size_t);
  void (*destroy)(gm__fiber **);
  int (*start)(gm__fiber *, gm__fiber_fn, void *);
  int (*resume)(gm__fiber *);
  void (*yield)(void);
} impl;

static const impl *cur;

static void one_step(void *arg) {
  (void)arg;
  cur->yield(); /* waits for its Redis reply once */
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ns per request (start, yield, resume, finish) over n requests. */
static double run(const impl *im, long n) {
  cur = im;
  gm__fiber *f = im->make(64 * 1024);
  if (!f) {
    fprintf(stderr, "gm_bench_fiber: no memory for a fiber\n");
    exit(1);
  }
  double t0 = now_s();
  for (long i = 0; i < n; i++) {
    if (im->start(f, one_step, NULL) != 0 || im->resume(f) != 1) {
      fprintf(stderr, "gm_bench_fiber: %s: a fiber misbehaved\n", im->name);
      exit(1);
    }
  }
  double ns = (now_s() - t0) * 1e9 / (double)n;
  im->destroy(&f);
  return ns;
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 1000000;
  if (n < 1) n = 1000000;
  static const impl asm_impl = {
      "gmd",           gm__fiber_new,    gm__fiber_destroy,
      gm__fiber_start, gm__fiber_resume, gm__fiber_yield};
  static const impl uc_impl = {"ucontext",       uc_fiber_new,
                               uc_fiber_destroy, uc_fiber_start,
                               uc_fiber_resume,  uc_fiber_yield};
  /* Interleaved rounds, so both see the same machine. */
  double best_g = 1e30, best_u = 1e30;
  for (int round = 0; round < 3; round++) {
    double g = run(&asm_impl, n), u = run(&uc_impl, n);
    if (g < best_g) best_g = g;
    if (u < best_u) best_u = u;
  }
  printf(
      "fiber switches per request (start, yield, resume, finish), best of "
      "3 x %ld:\n",
      n);
  printf("  gmd's switch  %8.1f ns\n  ucontext      %8.1f ns\n", best_g,
         best_u);
  printf("  ucontext / gmd = %.0fx\n", best_u / best_g);
  return 0;
}
