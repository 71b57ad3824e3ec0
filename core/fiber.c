/*
 * Fibers.  On x86-64 a switch saves and restores the callee-saved registers
 * in a few instructions (gm__fiber_switch below); elsewhere, or when built
 * with -DGM_FIBER_UCONTEXT, it uses ucontext, whose swapcontext also saves
 * the signal mask with a system call each time (about 1 us per switch on
 * the virtual machines measured, 4 switches per request).  Signal masks are
 * per thread and never changed by the host inside a request, so not saving
 * them loses nothing.
 */
#include "fiber.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* Not with CET shadow stacks (-fcf-protection=return): the switch returns
   onto another stack, which a shadow stack refuses; glibc's ucontext
   handles them. */
#if defined(__x86_64__) && !defined(GM_FIBER_UCONTEXT) && \
    !(defined(__CET__) && (__CET__ & 2))
#define GM_FIBER_ASM 1
#else
#include <ucontext.h>
#endif

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
#ifdef GM_FIBER_ASM
  void *sp; /* saved stack pointer while suspended */
#else
  ucontext_t ctx; /* the fiber's registers while suspended */
#endif
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
#ifdef GM_FIBER_ASM
static _Thread_local void *gm__fiber_home_sp;
#else
static _Thread_local ucontext_t gm__fiber_home;
#endif
static _Thread_local gm__fiber *gm__fiber_running;
#ifdef GM_FIBER_ASAN
static _Thread_local const void *gm__fiber_home_bottom;
static _Thread_local size_t gm__fiber_home_size;
#endif

static void gm__fiber_main(gm__fiber *f);

#ifdef GM_FIBER_ASM
/*
 * gm__fiber_switch(void **save_sp, void *load_sp): pushes the callee-saved
 * registers (SysV: rbp, rbx, r12-r15, and the MXCSR and x87 control words),
 * stores the stack pointer in *save_sp, loads load_sp and pops the same
 * frame from there.  A new fiber's stack holds such a frame whose return
 * address is gm__fiber_boot, with the fiber in r12.
 */
void gm__fiber_switch(void **save_sp, void *load_sp);
void gm__fiber_boot(void);
__asm__(
    ".text\n"
    ".globl gm__fiber_switch\n"
    ".hidden gm__fiber_switch\n"
    ".type gm__fiber_switch,@function\n"
    "gm__fiber_switch:\n"
    "  .cfi_startproc\n"
    "  endbr64\n"
    "  pushq %rbp\n"
    "  pushq %rbx\n"
    "  pushq %r12\n"
    "  pushq %r13\n"
    "  pushq %r14\n"
    "  pushq %r15\n"
    "  subq $8, %rsp\n"
    "  stmxcsr (%rsp)\n"
    "  fnstcw 4(%rsp)\n"
    "  movq %rsp, (%rdi)\n"
    "  movq %rsi, %rsp\n"
    "  ldmxcsr (%rsp)\n"
    "  fldcw 4(%rsp)\n"
    "  addq $8, %rsp\n"
    "  popq %r15\n"
    "  popq %r14\n"
    "  popq %r13\n"
    "  popq %r12\n"
    "  popq %rbx\n"
    "  popq %rbp\n"
    "  ret\n"
    "  .cfi_endproc\n"
    ".size gm__fiber_switch,.-gm__fiber_switch\n"
    ".globl gm__fiber_boot\n"
    ".hidden gm__fiber_boot\n"
    ".type gm__fiber_boot,@function\n"
    "gm__fiber_boot:\n"
    "  endbr64\n"
    "  movq %r12, %rdi\n"
    "  andq $-16, %rsp\n"
    "  call gm__fiber_entry\n"
    "  ud2\n"
    ".size gm__fiber_boot,.-gm__fiber_boot\n");

/* Called by gm__fiber_boot on the new stack; never returns. */
/* Referenced only from the asm above: `used` keeps it under -flto. */
void gm__fiber_entry(gm__fiber *f) __attribute__((visibility("hidden"), used));
void gm__fiber_entry(gm__fiber *f) {
  gm__fiber_main(f);
}

/* Lays out a frame gm__fiber_switch will pop: MXCSR/x87 words (this
   thread's), six registers (r12 = the fiber), return address = boot. */
static void gm__fiber_prepare(gm__fiber *f) {
  uintptr_t top = ((uintptr_t)f->stack + f->stack_size) & ~(uintptr_t)15;
  uint64_t *sp = (uint64_t *)top;
  *--sp = 0; /* alignment: boot realigns anyway */
  *--sp = (uint64_t)(uintptr_t)gm__fiber_boot; /* return address */
  *--sp = 0;                                   /* rbp */
  *--sp = 0;                                   /* rbx */
  *--sp = (uint64_t)(uintptr_t)f;              /* r12 */
  *--sp = 0;                                   /* r13 */
  *--sp = 0;                                   /* r14 */
  *--sp = 0;                                   /* r15 */
  uint32_t mxcsr;
  uint16_t fpucw;
  __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
  __asm__ volatile("fnstcw %0" : "=m"(fpucw));
  *--sp = (uint64_t)mxcsr | ((uint64_t)fpucw << 32);
  f->sp = sp;
}
#else
/* makecontext passes ints only: the fiber pointer travels in two halves. */
static void gm__fiber_uc_main(unsigned hi, unsigned lo) {
  gm__fiber_main((gm__fiber *)(((uintptr_t)hi << 16 << 16) | (uintptr_t)lo));
}

static void gm__fiber_prepare(gm__fiber *f) {
  if (getcontext(&f->ctx) != 0) abort();
  f->ctx.uc_stack.ss_sp = f->stack;
  f->ctx.uc_stack.ss_size = f->stack_size;
  f->ctx.uc_link = NULL;
  uintptr_t p = (uintptr_t)f;
  makecontext(&f->ctx, (void (*)(void))gm__fiber_uc_main, 2,
              (unsigned)(p >> 16 >> 16), (unsigned)(p & 0xffffffffu));
}
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
  if (mprotect(f->map, p, PROT_NONE) != 0) {
    munmap(f->map, f->map_size);
    free(f);
    return NULL;
  }
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
  if (gm__fiber_running) abort(); /* host bug: fibers do not nest */
  gm__fiber_running = f;
#ifdef GM_FIBER_ASAN
  void *fake = NULL;
  __sanitizer_start_switch_fiber(&fake, f->stack, f->stack_size);
#endif
#ifdef GM_FIBER_ASM
  gm__fiber_switch(&gm__fiber_home_sp, f->sp);
#else
  swapcontext(&gm__fiber_home, &f->ctx);
#endif
#ifdef GM_FIBER_ASAN
  __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
  gm__fiber_running = NULL;
  return f->finished;
}

/* Switch from f back home; finishing says f will not be resumed (its stack
   is laid out afresh by the next start). */
static void gm__fiber_leave(gm__fiber *f, int finishing) {
#ifdef GM_FIBER_ASAN
  __sanitizer_start_switch_fiber(finishing ? NULL : &f->fake_stack,
                                 gm__fiber_home_bottom, gm__fiber_home_size);
#endif
#ifdef GM_FIBER_ASM
  gm__fiber_switch(&f->sp, gm__fiber_home_sp);
#else
  if (finishing) {
    setcontext(&gm__fiber_home);
    abort(); /* setcontext does not return */
  }
  swapcontext(&f->ctx, &gm__fiber_home);
#endif
  if (finishing) abort(); /* a finished fiber is never resumed */
#ifdef GM_FIBER_ASAN
  __sanitizer_finish_switch_fiber(f->fake_stack, &gm__fiber_home_bottom,
                                  &gm__fiber_home_size);
#endif
}

static void gm__fiber_main(gm__fiber *f) {
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
  f->fn = fn;
  f->arg = arg;
  f->finished = 0;
  gm__fiber_prepare(f);
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
