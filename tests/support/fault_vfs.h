/*
 * SQLite failure injection: a VFS over the default one that fails chosen
 * file operations, installed as the process's default VFS so every ledger
 * connection the code under test opens goes through it.  SQLite's own test
 * suite does the same (test_vfs.c); this one is small enough for ours.
 *
 *   gm_fault_vfs_install();                    // once, before opening
 *   gm_fault_arm(GM_FAULT_WRITE, 3, SQLITE_FULL, 1);  // the 3rd write fails
 *   ... run the code; gm_fault_fired() says whether it did
 */
#ifndef GM_TEST_FAULT_VFS_H
#define GM_TEST_FAULT_VFS_H

typedef enum gm_fault_op {
  GM_FAULT_WRITE = 0,   /* xWrite of any file (database, WAL, journal) */
  GM_FAULT_SYNC = 1,    /* xSync */
  GM_FAULT_LOCK = 2,    /* xLock (rollback journal mode) */
  GM_FAULT_READ = 3,    /* xRead */
  GM_FAULT_SHMLOCK = 4, /* xShmLock: how WAL mode locks; SQLITE_BUSY is
                           what a rival holding the lock makes */
  GM_FAULT_OPS
} gm_fault_op;

/* Registers the VFS as the default (idempotent). */
void gm_fault_vfs_install(void);
/* The n-th operation of kind op from now (1: the next) and the times - 1
   after it fail with rc; n = 0 disarms. */
void gm_fault_arm(gm_fault_op op, int n, int rc, int times);
/* Operations of kind op since the last arm or reset. */
int gm_fault_count(gm_fault_op op);
/* How many injected failures have been returned since the last arm. */
int gm_fault_fired(void);
/* Disarms and zeroes the counts. */
void gm_fault_reset(void);

#endif
