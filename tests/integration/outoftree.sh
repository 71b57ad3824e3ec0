#!/usr/bin/env bash
# The out-of-tree plugin test: a plugin author's whole path.
#   outoftree.sh <source dir> <build dir>
# 1. cmake --install the build into a temporary prefix;
# 2. build examples/hello against that prefix only (CMAKE_PREFIX_PATH) and
#    install the plugin there; a plugin with an undefined symbol fails its
#    link (gm_add_plugin's --no-undefined), naming the symbol;
# 3. start a private redis-server and the installed gmd with only hello;
# 4. call hello with the installed gm: a read (generic path), the plugin's
#    own friendly `gm hello sign` (a mutation, a rejection, an idempotent
#    retry, a file of lines with progress on a terminal and its replay);
#    check the settled rows in the SQLite ledger;
# 5. stop exactly the processes started here, by pid.
set -euo pipefail

src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gm-outoftree.XXXXXX")
prefix=$tmp/prefix
redis_pid=
gmd_pid=

fail() {
  printf 'outoftree: FAIL: %s\n' "$*" >&2
  exit 1
}
step() { printf 'outoftree: %s\n' "$*"; }

stop() { # stop <pid>: TERM, wait up to 20 s, then KILL
  local pid=$1 i
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 200; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "outoftree: pid $pid ignored TERM for 20 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  stop "$gmd_pid"
  stop "$redis_pid"
  if [ $rc -ne 0 ] && [ -f "$tmp/gmd.log" ]; then
    echo "--- gmd log (last 30 lines) ---" >&2
    tail -30 "$tmp/gmd.log" >&2
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

step "installing $build into a temporary prefix"
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log" >&2; fail "cmake --install failed"; }
gmd=$prefix/bin/gmd
gm=$prefix/bin/gm
for f in "$gmd" "$gm" "$prefix/include/greenmarket/plugin.h" \
  "$prefix/include/greenmarket/cli.h"; do
  [ -e "$f" ] || fail "cmake --install did not install $f"
done
config=$(find "$prefix" -name greenmarket-config.cmake | head -1)
[ -n "$config" ] || fail "cmake --install did not install greenmarket-config.cmake"
if grep -q 'not found' <<<"$(ldd "$gm")"; then
  fail "the installed gm cannot find its libraries outside the system" \
    "prefix: $(ldd "$gm" | grep 'not found' | tr -s ' \t' ' ');" \
    "give gm an INSTALL_RPATH of \$ORIGIN/../<libdir>"
fi

step "building examples/hello against the installed SDK"
cmake -S "$src/examples/hello" -B "$tmp/hello" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_INSTALL_PREFIX="$prefix" >"$tmp/hello.log" 2>&1 ||
  { cat "$tmp/hello.log" >&2; fail "configuring examples/hello failed"; }
found=$(sed -n 's/^greenmarket_DIR:PATH=//p' "$tmp/hello/CMakeCache.txt")
[[ $found == "$prefix"/* ]] ||
  fail "find_package(greenmarket) found '$found', not the prefix $prefix"
cmake --build "$tmp/hello" >>"$tmp/hello.log" 2>&1 ||
  { cat "$tmp/hello.log" >&2; fail "building examples/hello failed"; }
cmake --install "$tmp/hello" >>"$tmp/hello.log" 2>&1 ||
  { cat "$tmp/hello.log" >&2; fail "installing gm_hello.so failed"; }
plugin=$(find "$prefix" -name gm_hello.so | head -1)
[ -n "$plugin" ] || fail "gm_hello.so was not installed under $prefix"
plugins=$(dirname "$plugin")

step "a plugin using a function nobody defines fails its link, naming it"
mkdir -p "$tmp/undef"
cat >"$tmp/undef/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.18)
project(undef LANGUAGES C)
find_package(greenmarket REQUIRED)
gm_add_plugin(undef SOURCES undef.c)
EOF
cat >"$tmp/undef/undef.c" <<'EOF'
#include <greenmarket/plugin.h>
void undef_nobody_defines_this(void);
static gm_status undef__init(gm_market *m, const gm_host_api *h) {
  (void)m;
  (void)h;
  undef_nobody_defines_this();
  return GM_OK;
}
static void undef__shutdown(gm_market *m) { (void)m; }
static const gm_plugin undef__plugin = {.size = sizeof(gm_plugin),
                                        .name = "undef",
                                        .version = "1",
                                        .description = "links nothing",
                                        .init = undef__init,
                                        .shutdown = undef__shutdown};
GM_PLUGIN_DEFINE(undef__plugin)
EOF
cmake -S "$tmp/undef" -B "$tmp/undef/build" -DCMAKE_PREFIX_PATH="$prefix" \
  >"$tmp/undef.log" 2>&1 ||
  { cat "$tmp/undef.log" >&2; fail "configuring the undef plugin failed"; }
if cmake --build "$tmp/undef/build" >>"$tmp/undef.log" 2>&1; then
  fail "gm_add_plugin linked a plugin with an undefined symbol; gmd would" \
    "refuse it only at load (link it with --no-undefined)"
fi
grep -q "undefined reference to .undef_nobody_defines_this" "$tmp/undef.log" ||
  { cat "$tmp/undef.log" >&2; fail "the link failed without naming the symbol"; }

step "starting a private redis-server"
redis-server --port 0 --unixsocket "$tmp/redis.sock" --save "" \
  --appendonly no --dir "$tmp" --logfile "$tmp/redis.log" --daemonize no &
redis_pid=$!
for ((i = 0; i < 100; i++)); do
  redis-cli -s "$tmp/redis.sock" ping >/dev/null 2>&1 && break
  sleep 0.1
done
redis-cli -s "$tmp/redis.sock" ping >/dev/null 2>&1 ||
  fail "redis-server did not answer in 10 s: $(tail -3 "$tmp/redis.log")"

write_config() {
  cat >"$tmp/gmd.conf" <<EOF
[broker]
endpoint = tcp://127.0.0.1:$1
feed = tcp://127.0.0.1:$(($1 + 1))
workers = 2
name = outoftree
[redis]
unix = redis.sock
[ledger]
path = ledger.sqlite
batch = 64
[security]
mode = dev
[plugins]
dir = $plugins
load = hello
[market.hello]
greeting = Bonjour
EOF
}

write_config 7470
"$gmd" --check -c "$tmp/gmd.conf" >"$tmp/check.log" 2>&1 ||
  { cat "$tmp/check.log" >&2; fail "gmd --check refused the config with hello"; }

step "starting the installed gmd with only hello"
# Another gmd or test may hold a port: try random pairs until one binds.
for _ in 1 2 3 4 5; do
  port=$((20000 + (RANDOM % 20000) * 2))
  write_config "$port"
  "$gmd" -c "$tmp/gmd.conf" 2>>"$tmp/gmd.log" &
  gmd_pid=$!
  export GM_ENDPOINT=tcp://127.0.0.1:$port GM_PLUGIN_DIR=$plugins GM_AS=alice
  for ((i = 0; i < 100; i++)); do
    kill -0 "$gmd_pid" 2>/dev/null || break
    "$gm" --timeout 300 ping >/dev/null 2>&1 && break 2
    sleep 0.1
  done
  stop "$gmd_pid"
  gmd_pid=
done
[ -n "$gmd_pid" ] || fail "gmd did not start or answer gm ping"

run() { # run <expected exit status> <gm args...>: output in $out
  local want=$1 rc=0
  shift
  out=$("$gm" "$@" 2>&1) || rc=$?
  [ $rc -eq "$want" ] ||
    fail "gm $* exited $rc, expected $want; it printed: $out"
}
expect() { # expect <text> <what>: $out contains text
  [[ $out == *"$1"* ]] || fail "$2: expected '$1' in: $out"
}

step "calling hello with the installed gm"
run 0 markets
expect hello "gm markets lists the out-of-tree plugin"
run 0 hello --help
expect "gm hello sign TEXT" "gm hello --help lists the plugin's friendly command"
expect "greet someone" "gm hello --help lists the methods after it"
run 0 hello greet name=world
expect "Bonjour, world!" "hello.greet uses [market.hello] greeting"
run 0 hello sign first entry
[ "$out" = "signed: entry 1 in the guestbook" ] ||
  fail "gm hello sign should print entry number 1: $out"
run 1 hello sign ""
expect INVALID_ARGUMENT "an empty message is rejected by the script"
run 0 --json hello sign retry --idempotency-key outoftree-retry-1
[[ $out =~ \"number\"[^0-9]*2[^0-9] ]] ||
  fail "gm --json hello sign should print the reply, entry number 2: $out"
first=$out
run 0 hello sign retry --idempotency-key outoftree-retry-1 --json
[ "$out" = "$first" ] ||
  fail "a retry with the same idempotency key replied '$out', first '$first'"

step "signing a file of lines: progress on a terminal, then a replay"
command -v script >/dev/null ||
  fail "the progress check needs script(1) (Debian package bsdutils)"
long=$(printf 'x%.0s' {1..300})
printf 'from a file\n\n%s\nlast line\n' "$long" >"$tmp/lines.txt"
rc=0
tty_out=$(script -qec "'$gm' hello sign --file '$tmp/lines.txt' \
  --idempotency-key outoftree-file-1" /dev/null) || rc=$?
[ $rc -eq 1 ] ||
  fail "gm hello sign --file with a refused line exited $rc, expected 1: $tty_out"
[[ $tty_out == *"signing  3/3  100%"* ]] ||
  fail "gm hello sign --file drew no progress on a terminal: $tty_out"
[[ $tty_out == *"line 3 of $tmp/lines.txt: message is 300 bytes"* ]] ||
  fail "the refused line is not reported with its number: $tty_out"
[[ $tty_out == *"signed 2 of 3 lines"* ]] ||
  fail "gm hello sign --file should sign 2 of 3 lines: $tty_out"
# Off a terminal, with the same key: every step replays, none signs again.
run 1 hello sign --file "$tmp/lines.txt" --idempotency-key outoftree-file-1
expect "signed 2 of 3 lines" "the replay of the file"
[[ $out != *signing* ]] || fail "progress was drawn off a terminal: $out"

step "waiting for the settlement writer"
ledger=$tmp/ledger.sqlite
rows=
for ((i = 0; i < 100; i++)); do
  rows=$(sqlite3 "$ledger" "SELECT participant || '|' || message || '|' ||
    number FROM hello_guestbook ORDER BY number" 2>/dev/null || true)
  [ "$(printf '%s\n' "$rows" | grep -c .)" -ge 4 ] && break
  sleep 0.1
done
expected=$'alice|first entry|1\nalice|retry|2\nalice|from a file|3\nalice|last line|4'
[ "$rows" = "$expected" ] ||
  fail "hello_guestbook holds '$rows', expected '$expected'"

run 0 --json hello greet
expect '"signatures"' "hello.greet counts the settled entries"
[[ $out =~ \"signatures\"[^0-9]*4 ]] ||
  fail "hello.greet should count alice's 4 settled entries: $out"
expect "Bonjour, alice!" "hello.greet greets the caller by default"

step "stopping gmd and redis-server"
stop "$gmd_pid"
gmd_pid=
stop "$redis_pid"
redis_pid=
step "PASS"
