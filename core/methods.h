/* The handlers of the broker's own methods (market "gm"). */
#ifndef GM_CORE_METHODS_H
#define GM_CORE_METHODS_H

#include "core_methods.h"
#include "greenmarket/plugin.h"

/* The handler of core method `m` (an entry of gm__core_methods), or NULL. */
gm_handler_fn gm__core_handler(const gm_method *m);

#endif
