/*
 * Paged walks with cursors: order.list, block.list and mass cancel go
 * through a participant's things a bounded page at a time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon.h"

char *carbon__cursor_text(gm_call *call, const carbon__cursor *c) {
  char side[3] = {c->side, ':', 0};
  return host->sprintf(call, "%s:%s%s%s%s", c->sym, c->side ? side : "", c->pos,
                       c->carry[0] ? ":" : "", c->carry);
}

/* The walk is over: the scan ended and nothing is carried. */
int carbon__cursor_done(const char *pos, const char *carry) {
  return strcmp(pos, "-") == 0 && carry[0] == '\0';
}

/* Ids as the scripts make them: `prefix` (none for orders, 'B' for block
 * offers) then 12 lowercase hex digits, separated by ','. */
static int carbon__valid_ids(const char *s, char prefix) {
  while (*s) {
    if (prefix && *s++ != prefix) return 0;
    size_t n = strspn(s, "0123456789abcdef");
    if (n != 12 || (s[n] != ',' && s[n] != '\0')) return 0;
    s += n + (s[n] == ',');
  }
  return 1;
}

/* Parses `text` (with a side field when with_side; carried ids start with
 * `prefix`) into *c. */
gm_status carbon__cursor_parse(gm_call *call, const char *method,
                               const char *text, int with_side, char prefix,
                               carbon__cursor *c) {
  size_t len = strlen(text);
  char shown[96];
  char *f[4] = {NULL}, *copy = host->sprintf(call, "%s", text);
  size_t nf = 0, need = with_side ? 3 : 2;
  for (char *p = copy; p && nf < 4; nf++) {
    f[nf] = p;
    if ((p = strchr(p, ':'))) *p++ = '\0';
  }
  if (len > CARBON_CURSOR_MAX || nf < need || nf > need + 1 ||
      strchr(f[nf - 1], ':'))
    goto bad;
  c->sym = f[0];
  c->side = with_side ? f[1][0] : 0;
  c->pos = f[need - 1];
  c->carry = nf > need ? f[need] : "";
  if (!gm__carbon_valid_symbol(c->sym) ||
      (with_side && (strlen(f[1]) != 1 || !strchr("bsa", c->side))))
    goto bad;
  if (strcmp(c->pos, "-")) {
    size_t nd = strspn(c->pos, "0123456789");
    /* An SSCAN cursor is an unsigned 64-bit number: 20 digits at most. */
    if (nd == 0 || nd > 20 || c->pos[nd] ||
        (nd == 20 && strcmp(c->pos, "18446744073709551615") > 0))
      goto bad;
  }
  if (carbon__valid_ids(c->carry, prefix)) return GM_OK;
bad:
  return host->fail(call, GM_INVALID_ARGUMENT,
                    "cursor \"%s\" is not one %s returned; pass "
                    "next_cursor back unchanged, or leave cursor empty to "
                    "start from the beginning",
                    gm__carbon_shown(text, shown), method);
}

/*
 * One page of walk `w`: of one instrument, or of every instrument in symbol
 * order.  Each script run reads at most the items the page still needs
 * (lib.lua, page()), so a page costs the same however many there are.  A
 * run that ends its bounded scan before the page is full ends the page
 * early: the cursor says where to go on.  Sets items[0..*n) (room for
 * limit) and *next ("" on the last page).
 */
gm_status carbon__walk_page(gm_call *call, const carbon__walk *w,
                            const char *symbol, int32_t limit_in,
                            const char *cursor, void ***items, size_t *n,
                            char **next) {
  int32_t limit = limit_in ? limit_in : CARBON_LIST_DEFAULT;
  carbon__cursor cur = {NULL, 0, "0", ""};
  const gm_value *list = NULL, *v;
  gm_status st;
  size_t nsym = 1, k = 0;
  *n = 0;
  *next = "";
  if (limit < 1 || limit > CARBON_LIST_MAX)
    return host->fail(call, GM_INVALID_ARGUMENT,
                      "limit %d is out of range: a page holds 1..%d %s (0 "
                      "or unset: %d); follow next_cursor for more",
                      (int)limit_in, CARBON_LIST_MAX, w->op,
                      CARBON_LIST_DEFAULT);
  if (symbol[0] && (st = carbon__need_symbol(call, symbol)) != GM_OK) return st;
  if (cursor[0]) {
    st = carbon__cursor_parse(call, w->method, cursor, 0, w->prefix, &cur);
    if (st != GM_OK) return st;
    if (symbol[0] && strcmp(cur.sym, symbol))
      return host->fail(call, GM_INVALID_ARGUMENT,
                        "cursor is for %s, not %s; pass next_cursor back with "
                        "the symbol it came with",
                        cur.sym, symbol);
  }
  if (!symbol[0]) {
    if ((st = carbon__registry(call, &list)) != GM_OK) return st;
    nsym = list->n;
    /* The registry is sorted: resume at the cursor's instrument, or at the
     * first after it should it be gone. */
    while (cur.sym && k < nsym &&
           (!list->items[k].str || strcmp(list->items[k].str, cur.sym) < 0))
      k++;
    if (cur.sym && k < nsym && strcmp(list->items[k].str, cur.sym))
      cur.pos = "0", cur.carry = "";
  }
  *items = host->alloc(call, ((size_t)limit + 1) * sizeof **items);
  for (; k < nsym; k++, cur.pos = "0", cur.carry = "") {
    cur.sym = list ? list->items[k].str : symbol;
    if (!cur.sym) continue;
    size_t need = (size_t)limit - *n;
    if (need == 0) {
      *next = carbon__cursor_text(call, &cur);
      break;
    }
    const char *args[] = {w->op, w->who, carbon__num(call, (int64_t)need),
                          cur.pos, cur.carry};
    int walked = 0;
    if ((st = carbon__run(call, "read", cur.sym, 5, args, &v)) != GM_OK) {
      if (list) continue; /* an instrument listed but gone: skip it */
      return st;
    }
    for (size_t i = 0; i < v->n; i++) {
      char tag = carbon__tag(v, i);
      if (tag == w->tag && *n < (size_t)limit)
        (*items)[(*n)++] = w->item(call, cur.sym, &v->items[i]);
      else if (tag == 'C') {
        cur.pos = carbon__s(&v->items[i], 1);
        cur.carry = carbon__s(&v->items[i], 2);
        walked = 1;
      }
    }
    if (!walked)
      return host->fail(call, GM_INTERNAL,
                        "the read script returned no position for %s's %s; "
                        "check the gmd log",
                        cur.sym, w->op);
    if (!carbon__cursor_done(cur.pos, cur.carry)) {
      *next = carbon__cursor_text(call, &cur);
      break;
    }
  }
  return GM_OK;
}
