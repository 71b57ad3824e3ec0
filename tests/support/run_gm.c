#include "run_gm.h"

#include <check.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void slurp(int fd, char *buf, size_t cap) {
  lseek(fd, 0, SEEK_SET);
  ssize_t n = read(fd, buf, cap - 1);
  buf[n > 0 ? n : 0] = '\0';
  close(fd);
}

run_result *gm_test_run_gm(const char *endpoint, char *const *args) {
  static run_result r;
  char *argv[72];
  int argc = 0;
  argv[argc++] = (char *)GM_BUILD_DIR "/cli/gm";
  for (int i = 0; args[i] && argc < 71; i++) argv[argc++] = args[i];
  argv[argc] = NULL;
  char outp[] = "/tmp/gm-cli-out-XXXXXX", errp[] = "/tmp/gm-cli-err-XXXXXX";
  int ofd = mkstemp(outp), efd = mkstemp(errp);
  ck_assert(ofd >= 0 && efd >= 0);
  unlink(outp);
  unlink(errp);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    dup2(ofd, 1);
    dup2(efd, 2);
    unsetenv("GM_AS");
    unsetenv("GM_SERVER_KEY");
    unsetenv("GM_KEY_FILE");
    if (endpoint) setenv("GM_ENDPOINT", endpoint, 1);
    execv(argv[0], argv);
    _exit(127);
  }
  int status;
  waitpid(pid, &status, 0);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  slurp(ofd, r.out, sizeof r.out);
  slurp(efd, r.err, sizeof r.err);
  return &r;
}
