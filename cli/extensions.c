/*
 * The market extensions compiled into `gm`.  Add one X(<market>) line to the
 * list for each cli/<market>.c defining gm_cli_<market>_extension (and make
 * sure cli/CMakeLists.txt compiles that file).
 */
#include <stddef.h>

#include "cli.h"

/* clang-format off */
#define GM_CLI__EXTENSION_LIST(X) \
  X(carbon) \
  /* one X(market) line per extension, e.g. X(carbon) */
/* clang-format on */

#define GM_CLI__DECLARE(name) \
  extern const struct gm_cli_extension gm_cli_##name##_extension;
#define GM_CLI__ENTRY(name) &gm_cli_##name##_extension,

GM_CLI__EXTENSION_LIST(GM_CLI__DECLARE)

const struct gm_cli_extension *const gm_cli_extensions[] = {
    GM_CLI__EXTENSION_LIST(GM_CLI__ENTRY) NULL};
