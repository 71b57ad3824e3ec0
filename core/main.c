/* gmd: the greenmarket broker daemon. */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "config.h"
#include "log.h"
#include "redis.h"

/*
 * SIGINT and SIGTERM are blocked in every thread from the first line of
 * main on and taken by one thread (sigwait), so a signal at any moment
 * stops gmd instead of killing it, and the stop may do what a handler may
 * not (take a lock, cut sockets): while gmd starts, it cuts what the start
 * waits for from Redis (a Redis that does not answer); once it serves, the
 * broker stops as usual (broker.h).  A second signal during a stop cuts
 * every Redis connection at once (gm__redis_stop_force), without the
 * stop's grace and probe: an operator pressing Ctrl-C twice will not wait.
 */
static pthread_mutex_t sig_mu = PTHREAD_MUTEX_INITIALIZER;
static gm__broker *running;        /* under sig_mu */
static gm__redis_stop *start_stop; /* the broker's Redis connections */
static int asked;                  /* a signal came (under sig_mu) */

static void *signal_thread(void *arg) {
  const sigset_t *set = arg;
  for (;;) {
    int sig;
    if (sigwait(set, &sig) != 0) continue;
    /* Cancelled (at exit) only while waiting, never holding sig_mu. */
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
    pthread_mutex_lock(&sig_mu);
    const char *name = sig == SIGINT ? "SIGINT" : "SIGTERM";
    if (asked) {
      /* A second signal (Ctrl-C twice, `kill` again): the operator will
         not wait for the stop's grace and probe. */
      gm__log(GM_LOG_INFO, "gmd",
              "%s again while stopping: cutting every Redis connection now, "
              "without waiting for Redis to answer; outbox entries read but "
              "not acknowledged are settled by the next settler",
              name);
      gm__redis_stop_force(start_stop);
    } else {
      gm__log(GM_LOG_INFO, "gmd",
              "%s: stopping (send it again to cut what waits on Redis at "
              "once)",
              name);
      asked = 1;
      if (running)
        gm__broker_interrupt(running);
      else
        gm__redis_stop_now(start_stop);
    }
    pthread_mutex_unlock(&sig_mu);
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
  }
  return NULL;
}

/* The line for a start a signal ended; why: what failed then ("" none;
   the cut's own "gmd is stopping" says nothing more). */
static void stopped_while_starting(const char *why) {
  int plain = !*why || !strcmp(why, "gmd is stopping");
  gm__log(GM_LOG_INFO, "gmd",
          "stopped while starting, as asked: nothing was served%s%s%s",
          plain ? "" : " (the start ended with: ", plain ? "" : why,
          plain ? "" : ")");
}

static int stop_asked(void) {
  pthread_mutex_lock(&sig_mu);
  int a = asked;
  pthread_mutex_unlock(&sig_mu);
  return a;
}

static void usage(FILE *out) {
  fprintf(out,
          "usage: gmd -c FILE [--check]\n"
          "       gmd --version\n"
          "\n"
          "Runs the greenmarket broker with the configuration in FILE\n"
          "(see deploy/gmd.conf.example and docs/operations.md).\n"
          "\n"
          "  -c, --config FILE   the configuration file (required)\n"
          "      --check         load the config and the plugins, then exit:\n"
          "                      0 when all load, 1 when any is refused or\n"
          "                      a [market.NAME] section names no market\n"
          "  -l, --log-level L   debug, info, warn or error (overrides [log])\n"
          "  -h, --help          this help\n"
          "  -V, --version       the version\n");
}

/* --check: 0 when every market [plugins] load names was loaded; else 1,
   logged (with load empty, the loader's warning names a folder without
   plugins).  gmd itself serves on without
   a refused plugin, but a check is asked whether the config is right. */
static int check_markets(const gm__broker *b, const gm__config *cfg,
                         const char *path) {
  const char *load = gm__config_get(cfg, "plugins", "load", "");
  char missing[1024] = "";
  size_t used = 0;
  /* Split as the loader splits it (broker.c, plugin_paths): at commas and
     spaces, so "alpha beta" names two markets here too. */
  for (const char *p = load; *p;) {
    p += strspn(p, " \t,");
    size_t n = strcspn(p, ", \t");
    if (n) {
      char name[128];
      snprintf(name, sizeof name, "%.*s", (int)n, p);
      if (!gm__broker_find_market(b, name) && used < sizeof missing)
        used += (size_t)snprintf(missing + used, sizeof missing - used, "%s%s",
                                 used ? ", " : "", name);
    }
    p += n;
  }
  if (*missing) {
    gm__log(GM_LOG_ERROR, "gmd",
            "%s: [plugins] load names %s, which did not load (the lines "
            "above say why): fix the plugin or take it out of the list",
            path, missing);
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  /* Before anything: no thread may take them with the default action. */
  static sigset_t stop_set;
  gm__broker_block_signals(&stop_set);
  signal(SIGPIPE, SIG_IGN);
  static const struct option opts[] = {
      {"config", required_argument, NULL, 'c'},
      {"check", no_argument, NULL, 'k'},
      {"log-level", required_argument, NULL, 'l'},
      {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'V'},
      {NULL, 0, NULL, 0}};
  const char *path = NULL, *level = NULL;
  int check = 0, c;
  while ((c = getopt_long(argc, argv, "c:l:hV", opts, NULL)) != -1) {
    switch (c) {
      case 'c':
        path = optarg;
        break;
      case 'k':
        check = 1;
        break;
      case 'l':
        /* Checked here: a bad one would be reported as [log] level. */
        if (gm__log_set_level(optarg) != 0) {
          fprintf(stderr, "gmd: -l %s: use debug, info, warn or error\n\n",
                  optarg);
          usage(stderr);
          return 2;
        }
        level = optarg;
        break;
      case 'h':
        usage(stdout);
        return 0;
      case 'V':
        printf("gmd %s\n", GM_VERSION);
        return 0;
      default:
        usage(stderr);
        return 2;
    }
  }
  if (!path || optind != argc) {
    if (optind != argc)
      fprintf(stderr, "gmd: unexpected argument '%s'\n\n", argv[optind]);
    else
      fprintf(stderr, "gmd: no configuration file: give -c FILE\n\n");
    usage(stderr);
    return 2;
  }
  char err[1024] = "";
  gm__config *cfg = gm__config_load(path, err, sizeof err);
  if (!cfg) {
    gm__log(GM_LOG_ERROR, "gmd", "%s", err);
    return 1;
  }
  if (level) gm__config_set(cfg, "log", "level", level);
  if (gm__config_check(cfg, err, sizeof err) != 0) {
    gm__log(GM_LOG_ERROR, "gmd", "%s: %s", path, err);
    gm__config_destroy(&cfg);
    return 1;
  }
  start_stop = gm__redis_stop_new();
  pthread_t sig_thread;
  if (pthread_create(&sig_thread, NULL, signal_thread, &stop_set) != 0) {
    gm__log(GM_LOG_ERROR, "gmd", "cannot start the signal thread");
    gm__redis_stop_destroy(&start_stop);
    gm__config_destroy(&cfg);
    return 1;
  }
  pthread_setname_np(sig_thread, "gmd-signals");
  gm__broker *b = gm__broker_new(cfg, start_stop, err, sizeof err);
  pthread_mutex_lock(&sig_mu);
  running = b;
  int stopped_early = asked;
  pthread_mutex_unlock(&sig_mu);
  int rc = 0;
  if (!b || stopped_early) {
    if (stopped_early)
      stopped_while_starting(b ? "" : err);
    else
      gm__log(GM_LOG_ERROR, "gmd", "cannot start: %s", err);
    /* A check a signal cut short checked nothing: its 0 would say valid
       (`timeout --preserve-status`, a script that kills a slow check). */
    if (stopped_early && check)
      fprintf(stderr,
              "gmd: %s: the check was stopped before it finished (SIGINT or "
              "SIGTERM): nothing was checked; run it again\n",
              path);
    rc = stopped_early && !check ? 0 : 1;
    check = -1; /* neither checked nor run */
  }
  if (check == 1) {
    rc = check_markets(b, cfg, path);
    if (gm__broker_refused(b)) {
      /* A refused plugin does not stop a running gmd (the others serve),
         but --check is where its author looks: it must not say "valid". */
      fprintf(stderr,
              "gmd: %s: %zu plugin(s) refused (the lines above say why), %zu "
              "market(s) loaded; fix them, or take them out of [plugins] "
              "load\n",
              path, gm__broker_refused(b), gm__broker_markets(b));
      rc = 1;
    }
    if (gm__broker_unread_sections(b)) {
      /* gmd runs with them (their markets' keys take their defaults), but
         a check must not call a setting nobody reads valid. */
      fprintf(stderr,
              "gmd: %s: %zu [market.NAME] section(s) name no market (the "
              "lines above say which); fix their names or delete them\n",
              path, gm__broker_unread_sections(b));
      rc = 1;
    }
    if (rc == 0)
      printf("gmd: %s is valid; %zu market(s) loaded\n", path,
             gm__broker_markets(b));
  } else if (check == 0) {
    if (gm__broker_run(b, err, sizeof err) != 0) {
      /* A start a signal cut short says why it ended, not as a failure. */
      if (stop_asked() && !gm__broker_served(b)) {
        stopped_while_starting(err);
      } else {
        gm__log(GM_LOG_ERROR, "gmd", "%s", err);
        rc = 1;
      }
    }
  }
  pthread_mutex_lock(&sig_mu);
  running = NULL;
  pthread_mutex_unlock(&sig_mu);
  pthread_cancel(sig_thread);
  pthread_join(sig_thread, NULL);
  gm__broker_destroy(&b);
  gm__redis_stop_destroy(&start_stop);
  gm__config_destroy(&cfg);
  return rc;
}
