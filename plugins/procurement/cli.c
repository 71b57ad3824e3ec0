#include <greenmarket/cli.h>
static int run(gm_cli *cli, const gm_cli_api *api, int argc, char **argv) {
  (void)cli;
  (void)api;
  (void)argc;
  (void)argv;
  return GM_CLI_NOT_MINE;
}
const struct gm_cli_extension gm__procurement_cli_extension = {
    .size = sizeof(struct gm_cli_extension), .run = run, .help = 0};
