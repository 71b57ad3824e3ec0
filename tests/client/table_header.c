/*
 * greenmarket/table.h compiled as a plugin author might: ISO C with only
 * POSIX.1-2008 (no _GNU_SOURCE, no _XOPEN_SOURCE: wcwidth is X/Open), and
 * as C++ (table_header.cc includes this file).  Runs a row through it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <greenmarket/table.h>

int main(void) {
  static const char *const head[] = {"NAME", "N"};
  gm_table t = {2, head, 0x2, NULL, 0, 0};
  size_t cols = 0;
  int cut = 0;
  char *c = gm_table_cell("a\tb\xe4\xb8\xad", 4, &cols, &cut);
  int ok = c && !strcmp(c, "a...") && cols == 4 && cut == 1;
  free(c);
  gm_table_row(&t, "\xe4\xb8\xad", "1");
  gm_table_print(&t, stdout);
  if (!ok) fprintf(stderr, "gm_table_cell cut \"a\\tb...\" wrongly\n");
  return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
