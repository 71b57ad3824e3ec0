/*
 * The gm_cli_api table: what a market's friendly commands, running inside
 * `gm` from the market's own plugin, may ask of gm (<greenmarket/cli.h>).
 * Each entry is a thin door onto what gm's own commands use, so a market's
 * commands call, print and fail exactly as gm's do.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"

static void gm__api_progress_end(gm_cli *cli);

static int gm__api_call(gm_cli *cli, const char *market, const char *method,
                        const ProtobufCMessage *req, ProtobufCMessage **reply) {
  if (!cli->progress.shown) return gm_cli_call(cli, market, method, req, reply);
  /* The error goes on a line of its own, under the progress line. */
  gm_result r;
  int code = gm_cli_call_ex(cli, market, method, req, reply, &r, 1);
  if (code != GM_CLI_EXIT_OK) {
    gm__api_progress_end(cli);
    gm_cli_fail(&r);
  }
  gm_result_clear(&r);
  return code;
}

static int gm__api_call_quiet(gm_cli *cli, const char *market,
                              const char *method, const ProtobufCMessage *req,
                              ProtobufCMessage **reply, gm_status *status,
                              const char **message) {
  gm_result r;
  int code = gm_cli_call_ex(cli, market, method, req, reply, &r, 1);
  snprintf(cli->message, sizeof cli->message, "%s",
           r.status != GM_OK && r.message ? r.message : "");
  *status = r.status;
  *message = cli->message;
  gm_result_clear(&r);
  return code;
}

static int gm__api_error(gm_cli *cli, gm_status status, const char *fmt, ...) {
  va_list ap;
  gm__api_progress_end(cli);
  fflush(stdout);
  fprintf(stderr, "error: %s: ", gm_status_name(status));
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return GM_CLI_EXIT_ERROR;
}

static int gm__api_json(gm_cli *cli) {
  return cli->output == GM_CLI_OUTPUT_JSON;
}

static int gm__api_verbose(gm_cli *cli) {
  return cli->verbose;
}

static int64_t gm__monotonic_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Draws the progress line over itself ("\r" + erase to the end). */
static void gm__progress_draw(gm_cli_progress *p, int64_t now) {
  double secs = (double)(now - p->start_ms) / 1000.0;
  double rate = secs > 0.05 ? (double)p->done / secs : 0.0;
  fprintf(stderr, "\r\033[K%s  %lld", p->what, (long long)p->done);
  if (p->total > 0) {
    int pct = (int)((double)p->done * 100.0 / (double)p->total);
    fprintf(stderr, "/%lld  %d%%", (long long)p->total, pct > 100 ? 100 : pct);
  }
  if (rate > 0) fprintf(stderr, "  %.0f/s", rate);
  if (rate > 0 && p->total > p->done)
    fprintf(stderr, "  about %.0f s left",
            (double)(p->total - p->done) / rate + 0.5);
  fflush(stderr);
  p->drawn_ms = now;
}

static void gm__api_progress_end(gm_cli *cli) {
  gm_cli_progress *p = &cli->progress;
  if (p->shown) {
    gm__progress_draw(p, gm__monotonic_ms());
    fputc('\n', stderr);
  }
  memset(p, 0, sizeof *p);
}

static void gm__api_progress(gm_cli *cli, const char *what, int64_t done,
                             int64_t total) {
  gm_cli_progress *p = &cli->progress;
  /* A log or a pipe would fill with redrawn lines: draw on terminals only. */
  if (!isatty(STDERR_FILENO)) return;
  if (!what) what = "";
  if (p->shown && strncmp(p->what, what, sizeof p->what - 1))
    gm__api_progress_end(cli); /* a new job: keep the last one's line */
  int64_t now = gm__monotonic_ms();
  if (!p->shown) {
    p->shown = 1;
    p->start_ms = now;
    snprintf(p->what, sizeof p->what, "%s", what);
  }
  p->done = done;
  p->total = total > 0 ? total : 0;
  if (p->drawn_ms == 0 || now - p->drawn_ms >= 100) gm__progress_draw(p, now);
}

static void gm__api_print(gm_cli *cli, const ProtobufCMessage *msg) {
  gm__api_progress_end(cli);
  gm_cli_print(cli, msg);
}

/* The folder part of path ("." when none), in out. */
static void gm__dir_of(const char *path, char *out, size_t outlen) {
  const char *slash = strrchr(path, '/');
  if (!slash)
    snprintf(out, outlen, ".");
  else if (slash == path)
    snprintf(out, outlen, "/");
  else
    snprintf(out, outlen, "%.*s", (int)(slash - path), path);
}

/* The temporary file write_file has open, for the signal handler: a
   Ctrl-C (or a kill) while it exists removes it before gm ends. */
static char gm__wf_tmp[PATH_MAX + 32];
static const int gm__wf_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
#define GM__WF_NSIG (sizeof gm__wf_signals / sizeof gm__wf_signals[0])

static void gm__wf_on_signal(int sig) {
  unlink(gm__wf_tmp);
  /* SA_RESETHAND put the default back: ends gm as the signal would have
     once this handler returns. */
  raise(sig);
}

/* What the user does about errno e of write_file. */
static const char *gm__wf_advice(int e) {
  switch (e) {
    case ENOSPC:
    case EDQUOT:
      return "free space on that disk (or raise your quota) or write "
             "elsewhere";
    case EFBIG:
      return "it is larger than this process may write (ulimit -f) or the "
             "file system holds: raise the limit or write elsewhere";
    case ENAMETOOLONG:
      return "choose a shorter path";
    case EACCES:
    case EPERM:
    case EROFS:
      return "choose a path you may write (its folder must be writable)";
    default:
      return "choose a writable path (its folder must exist)";
  }
}

/* Where path leads through symbolic links (each resolved from its own
   folder), into out: the file to replace, even one a link names that does
   not exist yet.  0, or an errno (ELOOP, ENAMETOOLONG). */
static int gm__wf_follow(const char *path, char *out, size_t outlen) {
  if (snprintf(out, outlen, "%s", path) >= (int)outlen) return ENAMETOOLONG;
  for (int hops = 0;; hops++) {
    struct stat lst;
    if (lstat(out, &lst) != 0 || !S_ISLNK(lst.st_mode)) return 0;
    if (hops == 40) return ELOOP;
    char to[PATH_MAX];
    ssize_t n = readlink(out, to, sizeof to - 1);
    if (n < 0) return errno;
    to[n] = '\0';
    char dir[PATH_MAX];
    gm__dir_of(out, dir, sizeof dir);
    int w = to[0] == '/' ? snprintf(out, outlen, "%s", to)
                         : snprintf(out, outlen, "%s/%s", dir, to);
    if (w >= (int)outlen) return ENAMETOOLONG;
  }
}

static int gm__api_write_file(gm_cli *cli, const char *path, const void *data,
                              size_t len) {
  /* A link is written through: the file it names is replaced (made when
     it does not exist yet), not the link. */
  if (!*path)
    return gm__api_error(cli, GM_INVALID_ARGUMENT,
                         "cannot write to an empty path; give a file's name "
                         "(e.g. --out export.json)");
  char target[PATH_MAX];
  int err = gm__wf_follow(path, target, sizeof target);
  /* Only a file is replaced: never a device (renamed over, /dev/null would
     be gone for every program), a folder or a pipe. */
  struct stat cur;
  int exists = !err && stat(target, &cur) == 0;
  if (exists && !S_ISREG(cur.st_mode))
    return gm__api_error(cli, GM_INVALID_ARGUMENT,
                         "cannot write %s: it is not a regular file (a "
                         "folder, device or pipe); give a file's path",
                         path);
  /* A file its owner made read-only is kept, as cp and a shell's > keep
     it (renaming over it would not ask, and root's access() says yes to
     everything). */
  if (exists && (cur.st_mode & 0222) == 0)
    return gm__api_error(cli, GM_INVALID_ARGUMENT,
                         "cannot write %s: the file is read-only (mode %04o); "
                         "make it writable (chmod u+w) or give another name",
                         path, (unsigned)(cur.st_mode & 07777));
  if (exists && access(target, W_OK) != 0) {
    int why = errno;
    return gm__api_error(
        cli, GM_INVALID_ARGUMENT, "cannot write %s: %s; give another name",
        path,
        why == EROFS ? "its file system is mounted read-only"
                     : "you may not write it (another user's file, or its "
                       "folder's)");
  }
  char dir[PATH_MAX];
  gm__dir_of(target, dir, sizeof dir);
  if (!err && snprintf(gm__wf_tmp, sizeof gm__wf_tmp, "%s/.gm-write-XXXXXX",
                       dir) >= (int)sizeof gm__wf_tmp)
    err = ENAMETOOLONG;
  /* Until the temporary file is renamed or removed: a signal that would
     end gm removes it first, and a write over the file size limit fails
     with EFBIG (said, the temporary file removed) instead of SIGXFSZ
     killing gm with the file left behind. */
  sigset_t block, was;
  sigemptyset(&block);
  for (size_t i = 0; i < GM__WF_NSIG; i++) sigaddset(&block, gm__wf_signals[i]);
  sigprocmask(SIG_BLOCK, &block, &was);
  struct sigaction on = {.sa_handler = gm__wf_on_signal,
                         .sa_flags = SA_RESETHAND},
                   old[GM__WF_NSIG], ign = {.sa_handler = SIG_IGN}, old_xfsz;
  sigemptyset(&on.sa_mask);
  sigemptyset(&ign.sa_mask);
  int fd = -1;
  if (!err && (fd = mkstemp(gm__wf_tmp)) < 0) err = errno;
  if (fd >= 0) {
    for (size_t i = 0; i < GM__WF_NSIG; i++) {
      sigaction(gm__wf_signals[i], NULL, &old[i]);
      /* A signal ignored by whoever started gm stays ignored. */
      if (old[i].sa_handler != SIG_IGN) sigaction(gm__wf_signals[i], &on, NULL);
    }
    sigaction(SIGXFSZ, &ign, &old_xfsz);
    sigprocmask(SIG_SETMASK, &was, NULL);
    mode_t mode;
    if (exists) {
      mode = cur.st_mode & 07777;
    } else {
      mode_t mask = umask(0);
      umask(mask);
      mode = 0666 & ~mask;
    }
    const char *p = data;
    size_t left = len;
    while (left && !err) {
      ssize_t n = write(fd, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0)
        err = errno;
      else
        p += n, left -= (size_t)n;
    }
    if (!err && fchmod(fd, mode) != 0) err = errno;
    if (!err && fsync(fd) != 0) err = errno;
    if (close(fd) != 0 && !err) err = errno;
    if (!err && rename(gm__wf_tmp, target) != 0) err = errno;
    if (!err) {
      /* The rename itself on disk, as the data before it. */
      int dfd = open(dir, O_RDONLY | O_DIRECTORY);
      if (dfd >= 0) {
        if (fsync(dfd) != 0 && errno != EINVAL) err = errno;
        close(dfd);
      }
    }
    sigprocmask(SIG_BLOCK, &block, NULL);
    if (err) unlink(gm__wf_tmp);
    for (size_t i = 0; i < GM__WF_NSIG; i++)
      if (old[i].sa_handler != SIG_IGN)
        sigaction(gm__wf_signals[i], &old[i], NULL);
    sigaction(SIGXFSZ, &old_xfsz, NULL);
  }
  gm__wf_tmp[0] = '\0';
  sigprocmask(SIG_SETMASK, &was, NULL);
  if (err == EFBIG)
    return gm__api_error(cli, GM_INVALID_ARGUMENT,
                         "cannot write %s: %s (%zu bytes); %s", path,
                         strerror(err), len, gm__wf_advice(err));
  if (err)
    return gm__api_error(cli, GM_INVALID_ARGUMENT, "cannot write %s: %s; %s",
                         path, strerror(err), gm__wf_advice(err));
  return GM_CLI_EXIT_OK;
}

static const gm_cli_api gm__api = {
    .size = sizeof(gm_cli_api),
    .abi_version = GM_PLUGIN_ABI_VERSION,
    .call = gm__api_call,
    .call_quiet = gm__api_call_quiet,
    .error = gm__api_error,
    .print = gm__api_print,
    .json = gm__api_json,
    .verbose = gm__api_verbose,
    .progress = gm__api_progress,
    .progress_end = gm__api_progress_end,
    .parse_time = gm_cli_parse_time,
    .write_file = gm__api_write_file,
};

const gm_cli_api *gm_cli_services(void) {
  return &gm__api;
}
