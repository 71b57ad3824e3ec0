#include "fake_host.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "utf8.h"
#include "wire.h"

static int tape_byte(gm_call *c) {
  return c->pos < c->tape_len ? c->tape[c->pos++] : -1;
}

/* A script reply shaped by the tape: nil, an integer, a string or an
   array of up to 63 of those, four levels deep at most. */
static void tape_value(gm_call *c, gm_value *v, int depth) {
  int t = tape_byte(c);
  memset(v, 0, sizeof *v);
  if (t < 0) return;
  switch (t % 4) {
    case 1: {
      uint64_t u = 0;
      for (int i = 0; i < 8; i++) u = u << 8 | (uint64_t)(tape_byte(c) & 0xff);
      /* What a Lua script can return: a double's integers, |x| < 2^53. */
      int64_t x = (int64_t)(u >> 11) * ((u & 1) ? -1 : 1);
      v->type = GM_VALUE_INT;
      v->integer = u & 2 ? x : x % 100000; /* small numbers matter most */
      break;
    }
    case 2: {
      int n = tape_byte(c);
      n = n < 0 ? 0 : n % 48;
      char *s = gm__arena_alloc(c->arena, (size_t)n + 1);
      for (int i = 0; i < n; i++) {
        int b = tape_byte(c);
        s[i] = (char)(b <= 0 ? 'x' : b); /* Redis strings: no NUL here */
      }
      v->type = GM_VALUE_STR;
      v->str = s;
      v->len = strlen(s);
      break;
    }
    case 3: {
      int n = tape_byte(c);
      /* Up to 63 items: records' later fields (index 15 and on) too. */
      n = n < 0 || depth >= 4 ? 0 : n % 64;
      gm_value *items =
          gm__arena_alloc(c->arena, ((size_t)n + 1) * sizeof *items);
      for (int i = 0; i < n; i++) tape_value(c, &items[i], depth + 1);
      v->type = GM_VALUE_ARRAY;
      v->n = (size_t)n;
      v->items = items;
      break;
    }
    default:
      v->type = GM_VALUE_NIL;
  }
}

static void h_log(gm_market *m, gm_log_level l, const char *fmt, ...) {
  (void)m;
  (void)l;
  (void)fmt;
}
static const char *h_config(gm_market *m, const char *k, const char *def) {
  (void)m;
  (void)k;
  return def;
}
static int64_t h_now(gm_market *m) {
  (void)m;
  return INT64_C(1796176800000); /* 2026-12-02 10:00 in Shanghai: trading */
}
static void *h_alloc(gm_call *c, size_t n) {
  return gm__arena_alloc(c->arena, n);
}
static char *h_sprintf(gm_call *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = gm__arena_vsprintf(c->arena, fmt, ap);
  va_end(ap);
  return s;
}
static gm_status h_fail(gm_call *c, gm_status st, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  c->status = st;
  c->message = gm__arena_vsprintf(c->arena, fmt, ap);
  va_end(ap);
  return st;
}
static const char *h_participant(gm_call *c) {
  (void)c;
  return "alice";
}
static int h_has_role(gm_call *c, const char *role) {
  return c->admin || (c->roles && strcmp(role, "admin") != 0);
}
static const char *h_idem(gm_call *c) {
  return c->idem;
}
static gm_market *h_market(gm_call *c) {
  return c->market;
}
static gm_status h_script_register(gm_market *m, const char *n, const char *l) {
  (void)m;
  return n && *n && l ? GM_OK : GM_INVALID_ARGUMENT;
}
static gm_status h_script_run(gm_call *c, const char *name, const char *tag,
                              size_t nk, const char *const *k, size_t na,
                              const char *const *a, const gm_value **reply) {
  (void)name;
  *reply = NULL;
  /* What a real run would send must be sendable: no NULL key or tag. */
  if (!tag) abort();
  for (size_t i = 0; i < nk; i++)
    if (!k[i]) abort();
  for (size_t i = 0; i < na; i++) (void)strlen(a[i] ? a[i] : "");
  int t = tape_byte(c);
  if (t >= 0 && t % 8 == 7)
    return h_fail(c, t % 16 == 7 ? GM_UNAVAILABLE : GM_FAILED_PRECONDITION,
                  "script refused");
  gm_value *v = gm__arena_alloc(c->arena, sizeof *v);
  tape_value(c, v, 0);
  *reply = v;
  return GM_OK;
}
static gm_status h_migrate(gm_market *m, const gm_migration *mig, size_t n) {
  if (!m->ledger) return GM_OK;
  char err[512];
  gm_status st =
      gm__ledger_migrate(m->ledger, m->plugin->name, mig, n, err, sizeof err);
  if (st != GM_OK) {
    fprintf(stderr, "fuzz: migration refused: %s\n", err);
    abort();
  }
  return st;
}
static gm_status h_settle_register(gm_market *m, gm_settle_fn fn) {
  m->settle = fn;
  return GM_OK;
}
/* Rows for a query: up to 3 of up to 7 columns, from the tape. */
static gm_status h_query(gm_call *c, const char *sql, const gm_param *p,
                         size_t np, gm_row_fn fn, void *arg) {
  (void)sql;
  (void)p;
  (void)np;
  int rows = tape_byte(c);
  rows = rows < 0 ? 0 : rows % 4;
  for (int r = 0; r < rows; r++) {
    int n = tape_byte(c);
    n = n < 0 ? 0 : n % 8;
    gm_param cols[8];
    for (int i = 0; i < n; i++) {
      gm_value v;
      tape_value(c, &v, 3);
      cols[i] = v.type == GM_VALUE_INT   ? GM_INT(v.integer)
                : v.type == GM_VALUE_STR ? GM_TEXT(v.str)
                                         : GM_NULL;
    }
    if (fn(arg, (size_t)n, cols)) break;
  }
  return GM_OK;
}
/* An event must pack into something a strict client decodes. */
static gm_status h_publish(gm_call *c, const char *event,
                           const ProtobufCMessage *msg) {
  if (!event || !*event || !msg) abort();
  size_t n = protobuf_c_message_get_packed_size(msg), out;
  uint8_t *b = gm__arena_alloc(c->arena, n ? n : 1);
  protobuf_c_message_pack(msg, b);
  if (!gm__wire_repair(c->arena, msg->descriptor, b, n, &out)) abort();
  return GM_OK;
}
static gm_status h_publish_to(gm_call *c, gm_audience a, const char *who,
                              const char *event, const ProtobufCMessage *msg) {
  if (a != GM_AUDIENCE_PUBLIC && (!who || !*who)) abort();
  return h_publish(c, event, msg);
}
static gm_status h_timer_add(gm_market *m, const char *n, int64_t ms,
                             gm_timer_fn fn, void *arg) {
  (void)m;
  (void)n;
  (void)fn;
  (void)arg;
  return ms > 0 ? GM_OK : GM_INVALID_ARGUMENT;
}
static gm_status h_deadline_register(gm_market *m, const char *kind,
                                     gm_deadline_fn fn, void *arg) {
  if (!kind || !fn || strlen(kind) >= sizeof m->deadlines[0].kind)
    return GM_INVALID_ARGUMENT;
  /* Kept for fuzz_market, which fires them too. */
  if (m->n_deadlines < sizeof m->deadlines / sizeof m->deadlines[0]) {
    snprintf(m->deadlines[m->n_deadlines].kind, sizeof m->deadlines[0].kind,
             "%s", kind);
    m->deadlines[m->n_deadlines].fn = fn;
    m->deadlines[m->n_deadlines].arg = arg;
    m->n_deadlines++;
  }
  return GM_OK;
}
static gm_status h_deadline_set(gm_call *c, const char *kind, const char *tag,
                                const char *id, int64_t due) {
  (void)c;
  (void)due;
  if (!kind || !tag || !id) abort();
  return GM_OK;
}
static gm_status h_deadline_cancel(gm_call *c, const char *kind,
                                   const char *tag, const char *id) {
  return h_deadline_set(c, kind, tag, id, 0);
}
static const gm_host_api fuzz_host = {
    .size = sizeof(gm_host_api),
    .abi_version = GM_PLUGIN_ABI_VERSION,
    .log = h_log,
    .config = h_config,
    .now_ms = h_now,
    .alloc = h_alloc,
    .sprintf = h_sprintf,
    .fail = h_fail,
    .participant = h_participant,
    .has_role = h_has_role,
    .idempotency_key = h_idem,
    .market = h_market,
    .script_register = h_script_register,
    .script_run = h_script_run,
    .ledger_migrate = h_migrate,
    .settle_register = h_settle_register,
    .ledger_exec = gm__ledger_exec,
    .ledger_query = h_query,
    .publish = h_publish,
    .timer_add = h_timer_add,
    .publish_to = h_publish_to,
    .deadline_register = h_deadline_register,
    .deadline_set = h_deadline_set,
    .deadline_cancel = h_deadline_cancel,
    .ledger_tx_query = gm__ledger_tx_query,
};

gm_market *fuzz_market(int with_ledger) {
  static gm_market m;
  if (m.plugin) return &m;
  const char *path = getenv("GM_FUZZ_PLUGIN");
  if (!path) {
    fprintf(stderr, "fuzz: set GM_FUZZ_PLUGIN to a plugin's .so\n");
    abort();
  }
  void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  const gm_plugin *(*entry)(void) =
      dl ? (const gm_plugin *(*)(void))dlsym(dl, "gm_plugin_entry") : NULL;
  if (!entry) {
    fprintf(stderr, "fuzz: cannot load %s: %s\n", path, dlerror());
    abort();
  }
  m.plugin = entry();
  if (with_ledger) {
    char file[] = "/tmp/gm-fuzz-ledger-XXXXXX";
    int fd = mkstemp(file);
    if (fd < 0) abort();
    close(fd);
    char err[512];
    m.ledger = gm__ledger_open(file, 0, err, sizeof err);
    unlink(file); /* gone when the process ends */
    if (!m.ledger) abort();
  }
  if (m.plugin->init(&m, &fuzz_host) != GM_OK) {
    fprintf(stderr, "fuzz: %s refused to start\n", m.plugin->name);
    abort();
  }
  return &m;
}
