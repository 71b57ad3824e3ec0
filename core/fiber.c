/* Fibers over ucontext (POSIX, in glibc on every Debian architecture). */
#include "fiber.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define GM_FIBER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GM_FIBER_ASAN 1
#endif
#endif

#ifdef GM_FIBER_ASAN
/* AddressSanitizer must be told when the stack changes, or it reports the
   other stack's frames as overflows. */
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom,
                                    size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save,
                                     const void **bottom_old, size_t *size_old);
#endif

struct gm__fiber {
  ucontext_t ctx;    /* the fiber's registers while suspended */
  void *map;         /* guard page + stack */
  size_t map_size;   /* bytes mapped */
  void *stack;       /* lowest usable stack byte */
  size_t stack_size; /* usable bytes */
  gm__fiber_fn fn;   /* what start runs */
  void *arg;
  int finished; /* fn returned */
#ifdef GM_FIBER_ASAN
  void *fake_stack; /* ASan's fake stack while switched away */
#endif
};

/* Per thread: the context to go back to, and the fiber running. */
static _Thread_local ucontext_t gm__fiber_home;
static _Thread_local gm__fiber *gm__fiber_running;
#ifdef GM_FIBER_ASAN
static _Thread_local const void *gm__fiber_home_bottom;
static _Thread_local size_t gm__fiber_home_size;
#endif

gm__fiber *gm__fiber_new(size_t stack_size) {
  long page = sysconf(_SC_PAGESIZE);
  if (page <= 0) page = 4096;
  size_t p = (size_t)page;
  size_t usable = (stack_size + p - 1) / p * p;
  gm__fiber *f = calloc(1, sizeof *f);
  if (!f) return NULL;
  f->map_size = usable + p;
  f->map = mmap(NULL, f->map_size, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (f->map == MAP_FAILED) {
    free(f);
    return NULL;
  }
  /* Stacks grow down on every architecture Debian ships: the guard page at
     the low end turns an overflow into SIGSEGV instead of corruption. */
  mprotect(f->map, p, PROT_NONE);
  f->stack = (char *)f->map + p;
  f->stack_size = usable;
  f->finished = 1;
  return f;
}

void gm__fiber_destroy(gm__fiber **fp) {
  gm__fiber *f = *fp;
  if (!f) return;
  munmap(f->map, f->map_size);
  free(f);
  *fp = NULL;
}

gm__fiber *gm__fiber_current(void) {
  return gm__fiber_running;
}

/* Switch from the thread's own stack into f. */
static int gm__fiber_enter(gm__fiber *f) {
  gm__fiber_running = f;
#ifdef GM_FIBER_ASAN
  void *fake = NULL;
  __sanitizer_start_switch_fiber(&fake, f->stack, f->stack_size);
#endif
  swapcontext(&gm__fiber_home, &f->ctx);
#ifdef GM_FIBER_ASAN
  __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
  gm__fiber_running = NULL;
  return f->finished;
}

/* Switch from f back home; finishing says f will never be resumed. */
static void gm__fiber_leave(gm__fiber *f, int finishing) {
#ifdef GM_FIBER_ASAN
  __sanitizer_start_switch_fiber(finishing ? NULL : &f->fake_stack,
                                 gm__fiber_home_bottom, gm__fiber_home_size);
#endif
  if (finishing) {
    setcontext(&gm__fiber_home);
    abort(); /* setcontext does not return */
  }
  swapcontext(&f->ctx, &gm__fiber_home);
#ifdef GM_FIBER_ASAN
  __sanitizer_finish_switch_fiber(f->fake_stack, &gm__fiber_home_bottom,
                                  &gm__fiber_home_size);
#endif
}

/* makecontext passes ints only: the fiber pointer travels in two halves. */
static void gm__fiber_main(unsigned hi, unsigned lo) {
  gm__fiber *f = (gm__fiber *)(((uintptr_t)hi << 16 << 16) | (uintptr_t)lo);
#ifdef GM_FIBER_ASAN
  __sanitizer_finish_switch_fiber(NULL, &gm__fiber_home_bottom,
                                  &gm__fiber_home_size);
#endif
  f->fn(f->arg);
  f->finished = 1;
  gm__fiber_leave(f, 1);
}

int gm__fiber_start(gm__fiber *f, gm__fiber_fn fn, void *arg) {
  if (!f->finished) abort(); /* host bug: starting a suspended fiber */
  if (getcontext(&f->ctx) != 0) abort();
  f->ctx.uc_stack.ss_sp = f->stack;
  f->ctx.uc_stack.ss_size = f->stack_size;
  f->ctx.uc_link = NULL;
  f->fn = fn;
  f->arg = arg;
  f->finished = 0;
  uintptr_t p = (uintptr_t)f;
  makecontext(&f->ctx, (void (*)(void))gm__fiber_main, 2,
              (unsigned)(p >> 16 >> 16), (unsigned)(p & 0xffffffffu));
  return gm__fiber_enter(f);
}

int gm__fiber_resume(gm__fiber *f) {
  if (f->finished) abort(); /* host bug: resuming a finished fiber */
  return gm__fiber_enter(f);
}

void gm__fiber_yield(void) {
  gm__fiber *f = gm__fiber_running;
  if (!f) abort(); /* host bug: yield outside a fiber */
  gm__fiber_leave(f, 0);
}
