/*
 * gm-client-example: a complete libgmclient program, market-neutral.
 *
 * Connects to gmd (CURVE keys, or a development broker's --as NAME), asks
 * who it is, optionally calls any method with a body read from a file
 * (packed protobuf) under one idempotency key until the broker answers, and
 * prints the public and private events it sees.  docs/client.md explains
 * each step.
 *
 *   gm-client-example --endpoint tcp://127.0.0.1:7470 \
 *       --server-key server.pub --key-file me.key \
 *       [--call MARKET METHOD [--body FILE] [--key KEY]] [--listen SECONDS]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* explicit_bzero */
#endif
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <greenmarket/client.h>
#include <greenmarket/greenmarket.pb-c.h>

/* What a program should do about each status (docs/client.md, "Errors"). */
static const char *advice(gm_status s, int answered) {
  switch (s) {
    case GM_OK:
      return "done";
    case GM_UNAVAILABLE:
      return answered ? "the broker cannot serve now (Redis or the ledger "
                        "away): retry later with the same idempotency key"
                      : "no answer: outcome unknown, retry with the same "
                        "idempotency key";
    case GM_RESOURCE_EXHAUSTED:
      return answered ? "a limit was hit: retry later with the same key, or "
                        "ask for less"
                      : "the reply is larger than this client takes (its "
                        "max_reply): ask for less, or raise max_reply";
    case GM_INVALID_ARGUMENT:
      return "the request is wrong: fix it (the message says what); do not "
             "retry as is";
    case GM_FAILED_PRECONDITION:
      return "the state does not allow it now: fix the cause, then retry";
    case GM_PERMISSION_DENIED:
      return "this participant lacks the role, or its key is not registered";
    case GM_NOT_FOUND:
      return "no such market or record";
    case GM_ALREADY_EXISTS:
      return "it exists already";
    case GM_UNIMPLEMENTED:
      return "the market has no such method: check the broker's version";
    case GM_INTERNAL:
      return "a bug or a mismatched .proto: report it with the message";
  }
  return "a status this program does not know: treat it as an error";
}

static void report(const char *what, const gm_result *r) {
  printf("%-10s %s%s%s (%s)\n", what, gm_status_name(r->status),
         r->message && *r->message ? ": " : "", r->message ? r->message : "",
         advice(r->status, r->answered));
}

/*
 * Calls market.method under `key` until the broker answers or `deadline_s`
 * passes.  The library already resends within one call (retries); this loop
 * covers a broker that is down for longer (a restart).  Every attempt sends
 * the same key and the same body: the broker carries the operation out at
 * most once and answers every retry with the first reply.
 */
static gm_status call_until_answered(gm_client *c, const char *market,
                                     const char *method, const char *key,
                                     const void *body, size_t len,
                                     int deadline_s, gm_result *r) {
  time_t end = time(NULL) + deadline_s;
  for (;;) {
    gm_status s =
        gm_client_call_raw(c, market, method, key, body, len, NULL, r);
    /* A RESOURCE_EXHAUSTED the broker did not send (answered = 0) is this
       library refusing a reply over max_reply: the same call gets the same
       reply, so sending it again cannot help. */
    int again =
        (s == GM_UNAVAILABLE || (s == GM_RESOURCE_EXHAUSTED && r->answered)) &&
        time(NULL) < end;
    if (!again) return s;
    fprintf(stderr, "retrying %s %s with key %s: %s\n", market, method,
            key ? key : "-", r->message ? r->message : "");
    gm_result_clear(r);
    struct timespec pause = {1, 0};
    nanosleep(&pause, NULL);
  }
}

static unsigned char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  unsigned char *buf = NULL;
  size_t cap = 0;
  *len = 0;
  for (;;) {
    if (*len == cap) {
      unsigned char *n = realloc(buf, cap = cap ? 2 * cap : 4096);
      if (!n) break;
      buf = n;
    }
    size_t got = fread(buf + *len, 1, cap - *len, f);
    if (!got) break;
    *len += got;
  }
  fclose(f);
  return buf;
}

/* Prints events for `seconds`, noting gaps in each audience's seq. */
static void listen_feed(gm_feed *f, int seconds) {
  struct {
    char audience[160];
    uint64_t seq;
  } last[32];
  size_t nlast = 0;
  time_t end = time(NULL) + seconds;
  while (time(NULL) < end) {
    char *topic;
    Gm__Event *ev;
    gm_status s = gm_feed_recv(f, &topic, &ev, 500);
    if (s == GM_OK) {
      /* One count per audience and broker: the part before the space of
         a private topic, "public" otherwise. */
      char audience[160];
      gm_audience who = GM_AUDIENCE_PUBLIC; /* unset for a malformed topic */
      char id[65];
      if (!gm_feed_topic_audience(topic, &who, id, sizeof id))
        snprintf(id, sizeof id, "?");
      snprintf(audience, sizeof audience, "%s|%s",
               who == GM_AUDIENCE_PUBLIC ? "public" : id, ev->broker);
      size_t i = 0;
      while (i < nlast && strcmp(last[i].audience, audience)) i++;
      if (i < nlast && ev->seq != last[i].seq + 1)
        printf("  (gap: %s seq %llu after %llu: reread the state)\n", audience,
               (unsigned long long)ev->seq, (unsigned long long)last[i].seq);
      if (i == nlast && nlast < 32) strcpy(last[nlast++].audience, audience);
      if (i < nlast) last[i].seq = ev->seq;
      printf("event      %s seq=%llu %s (%zu bytes)\n", topic,
             (unsigned long long)ev->seq, ev->type, ev->body.len);
    } else if (s == GM_PERMISSION_DENIED) {
      printf("refused    %s: %s\n", topic, gm_client_last_error());
    } else if (s != GM_UNAVAILABLE) {
      printf("feed       %s\n", gm_status_name(s));
    }
    free(topic);
    gm_feed_event_free(&ev);
  }
}

int main(int argc, char **argv) {
  const char *endpoint = "tcp://127.0.0.1:7470", *feed_ep = NULL;
  const char *server_file = NULL, *key_file = NULL, *as = NULL;
  const char *market = NULL, *method = NULL, *body_file = NULL, *key = NULL;
  int listen_s = 0;
  static const struct option longs[] = {
      {"endpoint", 1, 0, 'e'},   {"feed", 1, 0, 'f'},
      {"server-key", 1, 0, 's'}, {"key-file", 1, 0, 'k'},
      {"as", 1, 0, 'a'},         {"call", 1, 0, 'c'},
      {"body", 1, 0, 'b'},       {"key", 1, 0, 'i'},
      {"listen", 1, 0, 'l'},     {0, 0, 0, 0}};
  for (int o; (o = getopt_long(argc, argv, "", longs, NULL)) != -1;) {
    switch (o) {
      case 'e':
        endpoint = optarg;
        break;
      case 'f':
        feed_ep = optarg;
        break;
      case 's':
        server_file = optarg;
        break;
      case 'k':
        key_file = optarg;
        break;
      case 'a':
        as = optarg;
        break;
      case 'c':
        market = optarg;
        if (optind >= argc) goto usage;
        method = argv[optind++];
        break;
      case 'b':
        body_file = optarg;
        break;
      case 'i':
        key = optarg;
        break;
      case 'l':
        listen_s = atoi(optarg);
        break;
      default:
        goto usage;
    }
  }
  if (optind != argc || !server_file != !key_file) goto usage;

  /* Options: zero is default, so init first; strings are copied. */
  gm_client_options o;
  gm_client_options_init(&o);
  o.timeout_ms = 2000; /* per attempt; 3 attempts by default */
  char server_pub[41], pub[41], sec[41];
  if (server_file) {
    if (gm_key_file_read(server_file, server_pub, NULL) != GM_OK ||
        gm_key_file_read(key_file, pub, sec) != GM_OK) {
      fprintf(stderr, "error: %s\n", gm_client_last_error());
      return 2;
    }
    o.server_public_key = server_pub;
    o.public_key = pub;
    o.secret_key = sec;
  } else {
    o.dev_participant = as; /* development brokers only */
  }
  gm_client *c = gm_client_new(endpoint, &o);
  if (!c) {
    fprintf(stderr, "error: %s\n", gm_client_last_error());
    return 2;
  }

  /* The feed first, so it is subscribed before our own call's events. */
  char feed_buf[512];
  if (!feed_ep) { /* the request endpoint's port + 1, as gmd's default */
    const char *colon = strrchr(endpoint, ':');
    snprintf(feed_buf, sizeof feed_buf, "%.*s:%d",
             colon ? (int)(colon - endpoint) : 0, endpoint,
             colon ? atoi(colon + 1) + 1 : 7471);
    feed_ep = feed_buf;
  }
  gm_feed *f = listen_s > 0 ? gm_feed_new(feed_ep, &o) : NULL;
  explicit_bzero(sec, sizeof sec); /* the client and feed hold copies */
  if (listen_s > 0 && (!f || gm_feed_subscribe(f, "") != GM_OK)) {
    fprintf(stderr, "error: %s\n", gm_client_last_error());
    gm_client_destroy(&c);
    return 2;
  }

  int rc = 0;
  gm_result r = {0};
  Gm__WhoamiRequest who = GM__WHOAMI_REQUEST__INIT;
  if (gm_client_call(c, "gm", "whoami", NULL, &who.base,
                     &gm__whoami_reply__descriptor, &r) == GM_OK) {
    const Gm__WhoamiReply *w = (const Gm__WhoamiReply *)r.reply;
    const Gm__Participant *p = w->participant; /* NULL when absent */
    printf("whoami     %s%s, roles:", p ? p->id : "?",
           w->dev_mode ? " (development broker)" : "");
    for (size_t i = 0; p && i < p->n_roles; i++) printf(" %s", p->roles[i]);
    printf("\n");
  } else {
    report("whoami", &r);
    rc = 1;
  }
  gm_result_clear(&r); /* before the next call: a result is overwritten */

  if (market && !rc) {
    size_t len = 0;
    unsigned char *body = body_file ? read_file(body_file, &len) : NULL;
    if (body_file && !body) {
      fprintf(stderr, "error: cannot read %s\n", body_file);
      rc = 2;
    } else {
      /* One key per operation: keep it with the operation (a database row,
         a log) so a retry after a crash of this program reuses it too. */
      char fresh[33];
      if (!key && gm_client_new_idempotency_key(fresh) == GM_OK) key = fresh;
      printf("key        %s\n", key);
      gm_status s =
          call_until_answered(c, market, method, key, body, len, 60, &r);
      report(method, &r);
      if (s == GM_OK) printf("reply      %zu bytes\n", r.body_len);
      rc = s == GM_OK ? 0 : 1;
      gm_result_clear(&r);
    }
    free(body);
  }

  if (f) listen_feed(f, listen_s);
  gm_feed_destroy(&f);
  gm_client_destroy(&c);
  return rc;

usage:
  fprintf(stderr,
          "usage: %s [--endpoint URL] [--feed URL]\n"
          "          [--server-key FILE --key-file FILE | --as NAME]\n"
          "          [--call MARKET METHOD [--body FILE] [--key KEY]]\n"
          "          [--listen SECONDS]\n",
          argv[0]);
  return 2;
}
