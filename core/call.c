#include "call.h"

#include <string.h>

#include <greenmarket/text.h>

#include "utf8.h"

static const struct {
  gm_status status;
  const char *name;
} status_names[] = {
    {GM_OK, "OK"},
    {GM_INVALID_ARGUMENT, "INVALID_ARGUMENT"},
    {GM_NOT_FOUND, "NOT_FOUND"},
    {GM_ALREADY_EXISTS, "ALREADY_EXISTS"},
    {GM_PERMISSION_DENIED, "PERMISSION_DENIED"},
    {GM_RESOURCE_EXHAUSTED, "RESOURCE_EXHAUSTED"},
    {GM_FAILED_PRECONDITION, "FAILED_PRECONDITION"},
    {GM_UNIMPLEMENTED, "UNIMPLEMENTED"},
    {GM_INTERNAL, "INTERNAL"},
    {GM_UNAVAILABLE, "UNAVAILABLE"},
};

const char *gm__status_name(gm_status status) {
  for (size_t i = 0; i < sizeof status_names / sizeof *status_names; i++)
    if (status_names[i].status == status) return status_names[i].name;
  return "INTERNAL";
}

int gm__status_parse(const char *name, size_t len) {
  for (size_t i = 0; i < sizeof status_names / sizeof *status_names; i++)
    if (strlen(status_names[i].name) == len &&
        memcmp(status_names[i].name, name, len) == 0)
      return (int)status_names[i].status;
  return -1;
}

gm_status gm__call_vfail(gm_call *call, gm_status status, const char *fmt,
                         va_list ap) {
  call->status = status;
  call->message = gm__arena_vsprintf(call->arena, fmt, ap);
  return status;
}

gm_status gm__call_fail(gm_call *call, gm_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  gm__call_vfail(call, status, fmt, ap);
  va_end(ap);
  return status;
}

static int list_has(const char *list, const char *item) {
  size_t n = strlen(item);
  const char *p = list;
  while (p && *p) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len == n && memcmp(p, item, n) == 0) return 1;
    p = end ? end + 1 : NULL;
  }
  return 0;
}

int gm__roles_grant(const char *roles, const char *role) {
  if (!roles) return 0;
  return list_has(roles, role) || list_has(roles, "admin");
}

int gm__call_has_role(const gm_call *call, const char *role) {
  return gm__roles_grant(call->roles, role);
}

const char *gm__call_quote(gm_call *call, const char *s, size_t max) {
  size_t n = strlen(s), cut = gm__utf8_cut(s, n, max), i, len;
  const unsigned char *p = (const unsigned char *)s;
  for (i = 0; i < cut; i += len)
    if (gm_text_control(gm_utf8_decode(p + i, cut - i, &len))) break;
  if (i == cut && cut == n) return s;
  /* A control character (an escape sequence would drive the terminal that
     prints the message) or a byte that is not UTF-8 shows as '?'. */
  char *out = gm__arena_alloc(call->arena, cut + 4);
  size_t o = 0;
  for (i = 0; i < cut; i += len) {
    long c = gm_utf8_decode(p + i, cut - i, &len);
    if (c < 0 || gm_text_control(c))
      out[o++] = '?';
    else
      memcpy(out + o, p + i, len), o += len;
  }
  memcpy(out + o, cut < n ? "..." : "", cut < n ? 4 : 1);
  return out;
}
