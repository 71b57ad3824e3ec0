/*
 * Fibers: a request's handler runs on a stack of its own, so it can wait for
 * its Redis reply while the worker thread runs other requests' handlers and
 * sends their commands in the same pipeline.  The plugin API stays plain
 * synchronous calls; only the host ever switches (core/redis.c, the one place
 * a fiber waits, and the broker's worker loop, the one place fibers resume).
 *
 * One thread's fibers never run at the same time and switch only where the
 * host says so, so state a fiber reads before a switch may have changed after
 * it only through other fibers of the same thread: never hold a lock across
 * gm__fiber_yield().
 */
#ifndef GM_CORE_FIBER_H
#define GM_CORE_FIBER_H

#include <stddef.h>

typedef struct gm__fiber gm__fiber;
typedef void (*gm__fiber_fn)(void *arg);

/* A fiber with a stack of `stack_size` bytes (rounded up to pages, plus a
   guard page below it); NULL when memory is short. */
gm__fiber *gm__fiber_new(size_t stack_size);
/* Frees a fiber that is not running or suspended; nulls *f. */
void gm__fiber_destroy(gm__fiber **f);

/*
 * Starts fn(arg) on f (which must be idle: new or finished) and runs it until
 * it yields or returns.  1 when fn returned (f is idle again), 0 when it
 * yielded (resume it later).
 */
int gm__fiber_start(gm__fiber *f, gm__fiber_fn fn, void *arg);
/* Runs a suspended fiber until it yields again (0) or returns (1). */
int gm__fiber_resume(gm__fiber *f);
/* From inside a fiber: back to the code that started or resumed it. */
void gm__fiber_yield(void);
/* The fiber this thread is running, or NULL on the thread's own stack. */
gm__fiber *gm__fiber_current(void);

#endif
