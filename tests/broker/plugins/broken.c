/*
 * Plugins that must be refused, one per BROKEN_* definition: each is built
 * from this file with a different -D flag (see ../CMakeLists.txt).
 */
#include "greenmarket/plugin.h"
#include "testmkt.pb-c.h"

__attribute__((unused)) static gm_status handle(gm_call *call,
                                                const ProtobufCMessage *req,
                                                ProtobufCMessage **reply) {
  (void)call;
  (void)req;
  (void)reply;
  return GM_INTERNAL;
}

__attribute__((unused)) static void tick(gm_call *call, void *arg) {
  (void)call;
  (void)arg;
}

static gm_status init(gm_market *m, const gm_host_api *api) {
  (void)m;
  (void)api;
#ifdef BROKEN_TIMER_THEN_FAIL
  /* A timer registered, then a refusal: the timer must go with the plugin. */
  api->timer_add(m, "tick", 10, tick, NULL);
  return GM_FAILED_PRECONDITION;
#endif
#ifdef BROKEN_INIT_FAILS
  api->log(m, GM_LOG_ERROR, "init refuses on purpose");
  return GM_FAILED_PRECONDITION;
#else
  return GM_OK;
#endif
}

__attribute__((unused)) static void shutdown_plugin(gm_market *m) {
  (void)m;
}

static const gm_method methods[] = {
    {"x", &gm__testmkt__echo_request__descriptor,
#ifdef BROKEN_NO_HANDLER
     &gm__testmkt__echo_reply__descriptor, NULL,
#else
     &gm__testmkt__echo_reply__descriptor, handle,
#endif
     0, NULL, "x"},
};

__attribute__((unused)) static const gm_plugin plugin = {
    .size = sizeof(gm_plugin),
    .name = "broken",
    .methods = methods,
    .n_methods = 1,
    .init = init,
#ifndef BROKEN_NO_SHUTDOWN
    .shutdown = shutdown_plugin,
#endif
};

#if defined(BROKEN_ABI)
GM_PLUGIN_EXPORT const gm_plugin_magic_t *gm_plugin_magic(void) {
  static const gm_plugin_magic_t m = {sizeof(gm_plugin_magic_t),
                                      GM_PLUGIN_MAGIC, 999,
                                      PROTOBUF_C_VERSION_NUMBER};
  return &m;
}
GM_PLUGIN_EXPORT const gm_plugin *gm_plugin_entry(void) {
  return &plugin;
}
#elif defined(BROKEN_NO_MAGIC)
GM_PLUGIN_EXPORT const gm_plugin *gm_plugin_entry(void) {
  return &plugin;
}
#elif defined(BROKEN_NO_ENTRY)
GM_PLUGIN_EXPORT const gm_plugin_magic_t *gm_plugin_magic(void) {
  static const gm_plugin_magic_t m = {sizeof(gm_plugin_magic_t),
                                      GM_PLUGIN_MAGIC, GM_PLUGIN_ABI_VERSION,
                                      PROTOBUF_C_VERSION_NUMBER};
  return &m;
}
#else
GM_PLUGIN_DEFINE(plugin)
#endif
