/*
 * Where the time goes: CPU of this process, gmd and redis-server, and Redis
 * INFO commandstats, snapshotted around each phase (bench.h).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench.h"

redisContext *bench_redis_connect(const char *path) {
  struct timeval tv = {5, 0};
  redisContext *rc = redisConnectUnixWithTimeout(path, tv);
  if (!rc || rc->err) {
    fprintf(stderr,
            "carbon-bench: cannot connect to Redis at %s (%s); pass the "
            "socket gmd uses with --redis (plugins/carbon/bench/run does)\n",
            path, rc ? rc->errstr : "out of memory");
    if (rc) redisFree(rc);
    return NULL;
  }
  /* The 1M-order memory figure samples big keys: allow slow replies. */
  struct timeval io = {120, 0};
  redisSetTimeout(rc, io);
  return rc;
}

/* CPU seconds of process `pid` from /proc: the sum of its threads' run
 * time in /proc/<pid>/task/<tid>/schedstat (nanoseconds: a phase of a few
 * thousand orders at 10 us each is a few clock ticks in /proc/<pid>/stat),
 * else user + system time from /proc/<pid>/stat; -1 unknown.  Threads are
 * long-lived in gmd and redis-server: one that ended between two snapshots
 * would drop out of the first sum. */
static double bench__proc_cpu(long pid) {
  char path[64], buf[1024];
  if (pid <= 0) return -1;
  snprintf(path, sizeof path, "/proc/%ld/task", pid);
  DIR *d = opendir(path);
  if (d) {
    unsigned long long ns = 0;
    int ok = 1, n = 0;
    struct dirent *t;
    while ((t = readdir(d)) != NULL) {
      char tpath[320];
      unsigned long long run;
      if (t->d_name[0] == '.') continue;
      snprintf(tpath, sizeof tpath, "/proc/%ld/task/%s/schedstat", pid,
               t->d_name);
      FILE *f = fopen(tpath, "r");
      if (!f || fscanf(f, "%llu", &run) != 1) ok = 0;
      if (f) fclose(f);
      if (!ok) break;
      ns += run;
      n++;
    }
    closedir(d);
    if (ok && n > 0) return (double)ns / 1e9;
  }
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  /* Fields after the ")" that closes the command name: state is 3rd,
   * utime 14th and stime 15th. */
  char *p = strrchr(buf, ')');
  unsigned long long ut, st;
  if (!p ||
      sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
             &ut, &st) != 2)
    return -1;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

long long bench_info_field(redisContext *rc, const char *section,
                           const char *field) {
  redisReply *r = redisCommand(rc, "INFO %s", section);
  long long v = -1;
  if (r && r->type == REDIS_REPLY_STRING) {
    size_t fl = strlen(field);
    for (char *line = r->str; line && *line;) {
      if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
        v = strtoll(line + fl + 1, NULL, 10);
        break;
      }
      line = strchr(line, '\n');
      if (line) line++;
    }
  }
  if (r) freeReplyObject(r);
  return v;
}

int bench_probe_take(redisContext *rc, const bench_opts *o, bench_probe *p) {
  struct rusage ru;
  memset(p, 0, sizeof *p);
  p->wall_s = (double)bench_now_us() / 1e6;
  getrusage(RUSAGE_SELF, &ru);
  p->cpu_bench_s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                   (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
  p->cpu_gmd_s = bench__proc_cpu(o->gmd_pid);
  p->cpu_redis_s = bench__proc_cpu(o->redis_pid);
  redisReply *r = redisCommand(rc, "INFO commandstats");
  if (!r || r->type != REDIS_REPLY_STRING) {
    if (r) freeReplyObject(r);
    return -1;
  }
  /* cmdstat_evalsha:calls=10,usec=500,usec_per_call=50.00,... */
  for (char *line = r->str; line && *line && p->ncmds < BENCH_MAX_CMDS;) {
    char name[40];
    unsigned long long calls, usec;
    if (sscanf(line, "cmdstat_%39[^:]:calls=%llu,usec=%llu", name, &calls,
               &usec) == 3) {
      snprintf(p->cmds[p->ncmds].name, sizeof p->cmds[0].name, "%s", name);
      p->cmds[p->ncmds].calls = calls;
      p->cmds[p->ncmds].usec = usec;
      p->ncmds++;
    }
    line = strchr(line, '\n');
    if (line) line++;
  }
  freeReplyObject(r);
  return 0;
}

static void bench__cpu_line(const char *who, double a, double b, double wall,
                            long orders) {
  if (a < 0 || b < 0) {
    printf("    %-13s     (pid unknown: pass --%s-pid)\n", who, who);
    return;
  }
  double s = b - a;
  printf("    %-13s %6.2f s CPU = %5.0f%% of one core, %6.1f us/order\n", who,
         s, 100.0 * s / wall, orders ? 1e6 * s / (double)orders : 0.0);
}

void bench_probe_print(const bench_probe *a, const bench_probe *b,
                       long orders) {
  double wall = b->wall_s - a->wall_s;
  printf("  where the time went (%.2f s wall):\n", wall);
  bench__cpu_line("redis", a->cpu_redis_s, b->cpu_redis_s, wall, orders);
  bench__cpu_line("gmd", a->cpu_gmd_s, b->cpu_gmd_s, wall, orders);
  bench__cpu_line("bench", a->cpu_bench_s, b->cpu_bench_s, wall, orders);
  /* Redis time inside commands, biggest first. */
  struct {
    const char *name;
    uint64_t calls, usec;
  } d[BENCH_MAX_CMDS];
  size_t nd = 0;
  uint64_t total = 0;
  for (size_t i = 0; i < b->ncmds; i++) {
    uint64_t c0 = 0, u0 = 0;
    for (size_t j = 0; j < a->ncmds; j++)
      if (!strcmp(a->cmds[j].name, b->cmds[i].name)) {
        c0 = a->cmds[j].calls;
        u0 = a->cmds[j].usec;
      }
    if (b->cmds[i].calls == c0) continue;
    d[nd].name = b->cmds[i].name;
    d[nd].calls = b->cmds[i].calls - c0;
    d[nd].usec = b->cmds[i].usec - u0;
    total += d[nd].usec;
    nd++;
  }
  for (size_t i = 0; i < nd; i++) /* selection sort: a handful of rows */
    for (size_t j = i + 1; j < nd; j++)
      if (d[j].usec > d[i].usec) {
        __typeof__(d[0]) t = d[i];
        d[i] = d[j];
        d[j] = t;
      }
  printf(
      "    redis time inside commands: %.2f s (%.1f us/order); by command:\n",
      (double)total / 1e6, orders ? (double)total / (double)orders : 0.0);
  for (size_t i = 0; i < nd && i < 8; i++)
    printf("      %-14s %9llu calls %8.2f s %7.1f us/call %6.1f us/order\n",
           d[i].name, (unsigned long long)d[i].calls, (double)d[i].usec / 1e6,
           (double)d[i].usec / (double)d[i].calls,
           orders ? (double)d[i].usec / (double)orders : 0.0);
}

/* Script commands: each order is one call of one of these. */
static int bench__is_script(const char *name) {
  return !strcmp(name, "evalsha") || !strcmp(name, "eval") ||
         !strcmp(name, "fcall") || !strcmp(name, "fcall_ro") ||
         !strcmp(name, "evalsha_ro") || !strcmp(name, "eval_ro");
}

void bench_probe_cost(const bench_probe *a, const bench_probe *b,
                      bench_cost *c) {
  memset(c, 0, sizeof *c);
  c->wall_s = b->wall_s - a->wall_s;
  c->cpu_redis_s = a->cpu_redis_s < 0 || b->cpu_redis_s < 0
                       ? -1
                       : b->cpu_redis_s - a->cpu_redis_s;
  c->cpu_gmd_s =
      a->cpu_gmd_s < 0 || b->cpu_gmd_s < 0 ? -1 : b->cpu_gmd_s - a->cpu_gmd_s;
  for (size_t i = 0; i < b->ncmds; i++) {
    uint64_t c0 = 0, u0 = 0;
    for (size_t j = 0; j < a->ncmds; j++)
      if (!strcmp(a->cmds[j].name, b->cmds[i].name)) {
        c0 = a->cmds[j].calls;
        u0 = a->cmds[j].usec;
      }
    const char *name = b->cmds[i].name;
    if (bench__is_script(name)) {
      c->script_calls += b->cmds[i].calls - c0;
      c->script_usec += b->cmds[i].usec - u0;
    } else if (strcmp(name, "info") != 0 && !strchr(name, '|')) {
      /* INFO is the probe itself; "script|exists", "memory|usage" and the
       * other container subcommands are the bench's, not the market's. */
      c->data_calls += b->cmds[i].calls - c0;
    }
  }
}
