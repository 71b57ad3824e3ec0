#include "fault_vfs.h"

#include <sqlite3.h>
#include <stdatomic.h>
#include <string.h>

/* The plan: one kind of operation, which one fails, how, how many times. */
static atomic_int plan_op = -1, plan_at, plan_rc, plan_times, fired;
static atomic_int counts[GM_FAULT_OPS];

static sqlite3_vfs *base; /* the default VFS underneath */
static sqlite3_vfs fault; /* ours */

typedef struct fault_file {
  sqlite3_file f;     /* methods: fault_io */
  sqlite3_file *real; /* the base VFS's file, right after this struct */
} fault_file;

/* Counts an operation; non-zero rc when it is to fail. */
static int fault_hit(gm_fault_op op) {
  int n = atomic_fetch_add(&counts[op], 1) + 1;
  if (atomic_load(&plan_op) != (int)op) return 0;
  int at = atomic_load(&plan_at);
  if (at <= 0 || n < at || n >= at + atomic_load(&plan_times)) return 0;
  atomic_fetch_add(&fired, 1);
  return atomic_load(&plan_rc);
}

#define REAL(p) (((fault_file *)(p))->real)

static int f_close(sqlite3_file *p) {
  int rc = REAL(p)->pMethods ? REAL(p)->pMethods->xClose(REAL(p)) : SQLITE_OK;
  return rc;
}
static int f_read(sqlite3_file *p, void *b, int n, sqlite3_int64 o) {
  int rc = fault_hit(GM_FAULT_READ);
  return rc ? rc : REAL(p)->pMethods->xRead(REAL(p), b, n, o);
}
static int f_write(sqlite3_file *p, const void *b, int n, sqlite3_int64 o) {
  int rc = fault_hit(GM_FAULT_WRITE);
  return rc ? rc : REAL(p)->pMethods->xWrite(REAL(p), b, n, o);
}
static int f_truncate(sqlite3_file *p, sqlite3_int64 s) {
  return REAL(p)->pMethods->xTruncate(REAL(p), s);
}
static int f_sync(sqlite3_file *p, int flags) {
  int rc = fault_hit(GM_FAULT_SYNC);
  return rc ? rc : REAL(p)->pMethods->xSync(REAL(p), flags);
}
static int f_size(sqlite3_file *p, sqlite3_int64 *s) {
  return REAL(p)->pMethods->xFileSize(REAL(p), s);
}
static int f_lock(sqlite3_file *p, int l) {
  int rc = fault_hit(GM_FAULT_LOCK);
  return rc ? rc : REAL(p)->pMethods->xLock(REAL(p), l);
}
static int f_unlock(sqlite3_file *p, int l) {
  return REAL(p)->pMethods->xUnlock(REAL(p), l);
}
static int f_check(sqlite3_file *p, int *out) {
  return REAL(p)->pMethods->xCheckReservedLock(REAL(p), out);
}
static int f_control(sqlite3_file *p, int op, void *arg) {
  return REAL(p)->pMethods->xFileControl(REAL(p), op, arg);
}
static int f_sector(sqlite3_file *p) {
  return REAL(p)->pMethods->xSectorSize(REAL(p));
}
static int f_chars(sqlite3_file *p) {
  return REAL(p)->pMethods->xDeviceCharacteristics(REAL(p));
}
static int f_shm_map(sqlite3_file *p, int i, int sz, int ext,
                     void volatile **pp) {
  return REAL(p)->pMethods->xShmMap(REAL(p), i, sz, ext, pp);
}
static int f_shm_lock(sqlite3_file *p, int off, int n, int flags) {
  /* Only taking a lock can meet a rival; releasing one never fails. */
  int rc = (flags & SQLITE_SHM_LOCK) ? fault_hit(GM_FAULT_SHMLOCK) : 0;
  return rc ? rc : REAL(p)->pMethods->xShmLock(REAL(p), off, n, flags);
}
static void f_shm_barrier(sqlite3_file *p) {
  REAL(p)->pMethods->xShmBarrier(REAL(p));
}
static int f_shm_unmap(sqlite3_file *p, int del) {
  return REAL(p)->pMethods->xShmUnmap(REAL(p), del);
}
static int f_fetch(sqlite3_file *p, sqlite3_int64 o, int n, void **pp) {
  return REAL(p)->pMethods->xFetch(REAL(p), o, n, pp);
}
static int f_unfetch(sqlite3_file *p, sqlite3_int64 o, void *pg) {
  return REAL(p)->pMethods->xUnfetch(REAL(p), o, pg);
}

static const sqlite3_io_methods fault_io = {
    3,        f_close,   f_read,     f_write,       f_truncate,  f_sync,
    f_size,   f_lock,    f_unlock,   f_check,       f_control,   f_sector,
    f_chars,  f_shm_map, f_shm_lock, f_shm_barrier, f_shm_unmap, f_fetch,
    f_unfetch};

static int fault_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *p,
                      int flags, int *out_flags) {
  (void)vfs;
  fault_file *ff = (fault_file *)p;
  ff->real = (sqlite3_file *)(ff + 1);
  memset(ff->real, 0, (size_t)base->szOsFile);
  int rc = base->xOpen(base, name, ff->real, flags, out_flags);
  /* A file the base failed to open has no methods: SQLite calls no close
     on ours either then. */
  p->pMethods = ff->real->pMethods ? &fault_io : NULL;
  return rc;
}

static int fault_delete(sqlite3_vfs *v, const char *n, int sync) {
  (void)v;
  return base->xDelete(base, n, sync);
}
static int fault_access(sqlite3_vfs *v, const char *n, int f, int *out) {
  (void)v;
  return base->xAccess(base, n, f, out);
}
static int fault_full(sqlite3_vfs *v, const char *n, int len, char *out) {
  (void)v;
  return base->xFullPathname(base, n, len, out);
}
static void *fault_dlopen(sqlite3_vfs *v, const char *n) {
  (void)v;
  return base->xDlOpen(base, n);
}
static void fault_dlerror(sqlite3_vfs *v, int n, char *out) {
  (void)v;
  base->xDlError(base, n, out);
}
static void (*fault_dlsym(sqlite3_vfs *v, void *h, const char *s))(void) {
  (void)v;
  return base->xDlSym(base, h, s);
}
static void fault_dlclose(sqlite3_vfs *v, void *h) {
  (void)v;
  base->xDlClose(base, h);
}
static int fault_random(sqlite3_vfs *v, int n, char *out) {
  (void)v;
  return base->xRandomness(base, n, out);
}
static int fault_sleep(sqlite3_vfs *v, int us) {
  (void)v;
  return base->xSleep(base, us);
}
static int fault_time(sqlite3_vfs *v, double *out) {
  (void)v;
  return base->xCurrentTime(base, out);
}
static int fault_lasterr(sqlite3_vfs *v, int n, char *out) {
  (void)v;
  return base->xGetLastError ? base->xGetLastError(base, n, out) : 0;
}
static int fault_time64(sqlite3_vfs *v, sqlite3_int64 *out) {
  (void)v;
  return base->xCurrentTimeInt64(base, out);
}

void gm_fault_vfs_install(void) {
  if (base) return;
  base = sqlite3_vfs_find(NULL);
  fault = (sqlite3_vfs){.iVersion = 2,
                        .szOsFile = (int)sizeof(fault_file) + base->szOsFile,
                        .mxPathname = base->mxPathname,
                        .zName = "gm-fault",
                        .xOpen = fault_open,
                        .xDelete = fault_delete,
                        .xAccess = fault_access,
                        .xFullPathname = fault_full,
                        .xDlOpen = fault_dlopen,
                        .xDlError = fault_dlerror,
                        .xDlSym = fault_dlsym,
                        .xDlClose = fault_dlclose,
                        .xRandomness = fault_random,
                        .xSleep = fault_sleep,
                        .xCurrentTime = fault_time,
                        .xGetLastError = fault_lasterr,
                        .xCurrentTimeInt64 = fault_time64};
  sqlite3_vfs_register(&fault, 1);
}

void gm_fault_arm(gm_fault_op op, int n, int rc, int times) {
  atomic_store(&plan_op, -1);
  for (int i = 0; i < GM_FAULT_OPS; i++) atomic_store(&counts[i], 0);
  atomic_store(&fired, 0);
  atomic_store(&plan_at, n);
  atomic_store(&plan_rc, rc);
  atomic_store(&plan_times, times > 0 ? times : 1);
  atomic_store(&plan_op, n > 0 ? (int)op : -1);
}

int gm_fault_count(gm_fault_op op) {
  return atomic_load(&counts[op]);
}

int gm_fault_fired(void) {
  return atomic_load(&fired);
}

void gm_fault_reset(void) {
  gm_fault_arm(GM_FAULT_WRITE, 0, 0, 0);
}
