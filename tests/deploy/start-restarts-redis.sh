#!/usr/bin/env bash
# deploy/start as an operator runs it, in a scratch checkout that links the
# real build: on ports of its own (var/gmd.conf written first), it prints
# the private feed gmd binds (the feed's port + 1), says it is ready by
# /healthz, starts a redis-server that was killed again so a client's next
# call works, and on SIGTERM stops exactly the two processes it started;
# killed outright, the next start names the two it left to stop.
# usage: start-restarts-redis.sh <source dir> <build dir>
set -uo pipefail
src=$(realpath "$1")
build=$(realpath "$2")
fail() {
  echo "start-restarts-redis: $*" >&2
  [ -f "${log:-}" ] && sed 's/^/  | /' "$log" >&2
  exit 1
}
for t in "$build/core/gmd" "$build/cli/gm"; do
  [ -x "$t" ] || fail "$t is not built"
done

tmp=$(mktemp -d /tmp/gm-start-XXXXXX)
start_pid=
# Every pid deploy/start wrote (gmd, each redis-server it started): stopped
# here by pid if deploy/start did not stop them (it failed, hung or was
# killed), so a failing run leaves no process on a deleted folder.
pids=()
note_pids() {
  local f p
  for f in "$tmp/var/gmd.pid" "$tmp/var/redis.pid"; do
    p=$(cat "$f" 2>/dev/null) && [[ $p =~ ^[0-9]+$ ]] && pids+=("$p")
  done
  return 0
}
cleanup() {
  note_pids
  if [ -n "$start_pid" ] && kill -0 "$start_pid" 2>/dev/null; then
    kill -TERM "$start_pid" 2>/dev/null
    for ((i = 0; i < 400; i++)); do
      kill -0 "$start_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$start_pid" 2>/dev/null
  fi
  for p in "${pids[@]}"; do
    kill -0 "$p" 2>/dev/null || continue
    kill -TERM "$p" 2>/dev/null
    for ((i = 0; i < 100; i++)); do
      kill -0 "$p" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$p" 2>/dev/null
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$tmp/deploy" "$tmp/var" "$tmp/plugins"
cp "$src/deploy/start" "$src/deploy/install-deps" "$src/deploy/gmd.conf.example" \
  "$tmp/deploy/"
ln -s "$build" "$tmp/build"
# deploy/start builds gm_<market> for each plugins/<market>/CMakeLists.txt.
for d in "$src"/plugins/*/; do
  [ -f "$d/CMakeLists.txt" ] || continue
  mkdir -p "$tmp/plugins/$(basename "$d")"
  cp "$d/CMakeLists.txt" "$tmp/plugins/$(basename "$d")/"
done

log=$tmp/start.log
# Starts deploy/start in the background (restarting a dead redis-server
# after 1 s, not 5) and waits up to 60 s for its ready banner or its exit.
launch() {
  GM_START_REDIS_RETRY_S=1 setsid "$tmp/deploy/start" >"$log" 2>&1 &
  start_pid=$!
  for ((i = 0; i < 600; i++)); do
    grep -q '^greenmarket is running' "$log" && break
    kill -0 "$start_pid" 2>/dev/null || break
    sleep 0.1
  done
}

# Ports picked at random can be taken by another program (other tests pick
# theirs at random too): a start whose gmd could not bind one is tried
# again on other ports, up to five times; any other exit fails.
for attempt in 1 2 3 4 5; do
  base=$((20000 + RANDOM % 20000))
  sed -e "s|tcp://127.0.0.1:7470|tcp://127.0.0.1:$base|" \
    -e "s|tcp://127.0.0.1:7471|tcp://127.0.0.1:$((base + 1))|" \
    -e "s|127.0.0.1:7479|127.0.0.1:$((base + 9))|" \
    -e "s|^dir = .*|dir = $build/plugins-out|" \
    "$src/deploy/gmd.conf.example" >"$tmp/var/gmd.conf"
  # An override appended at the end, as gmd reads it: the last one wins,
  # section names in any case.
  printf '[Metrics] ; moved\nlisten = 127.0.0.1:%d\n' $((base + 8)) >>"$tmp/var/gmd.conf"
  launch
  kill -0 "$start_pid" 2>/dev/null && break
  wait "$start_pid" 2>/dev/null
  start_pid=
  note_pids
  grep -q 'Address already in use' "$log" && [ "$attempt" -lt 5 ] ||
    fail "deploy/start exited"
  echo "start-restarts-redis: a port of $base..$((base + 9)) was taken; again on others" >&2
done
note_pids
grep -q '^greenmarket is running (/healthz answered ok)' "$log" ||
  fail "no ready banner in 60 s"
grep -q "private:  tcp://127.0.0.1:$((base + 2)) " "$log" ||
  fail "the banner does not name the private feed on port $((base + 2))"
grep -q "metrics:  http://127.0.0.1:$((base + 8))/metrics and /healthz" "$log" ||
  fail "the banner does not name the metrics where gmd serves them"

# On ports of its own, the banner's cli line points gm at them.
grep -q "^  cli:      export PATH=$tmp/build/cli:\$PATH GM_ENDPOINT=tcp://127.0.0.1:$base GM_FEED=tcp://127.0.0.1:$((base + 1)); gm ping" "$log" ||
  fail "the banner's cli line does not point gm at the endpoint and feed"
# Only this user reads var/ (Redis's files, the ledger, the keys).
[ "$(stat -c %a "$tmp/var")" = 700 ] || fail "var/ is not mode 700"
for f in "$tmp/var/ledger.sqlite" "$tmp/var/redis.log"; do
  [ "$(stat -c %a "$f")" = 600 ] || fail "$f is mode $(stat -c %a "$f"), not 600"
done
gm=("$build/cli/gm" --endpoint "tcp://127.0.0.1:$base" --timeout 2000)
"${gm[@]}" ping >/dev/null || fail "gm ping failed"
gmd_pid=$(cat "$tmp/var/gmd.pid")
redis_pid=$(cat "$tmp/var/redis.pid")
kill -KILL "$redis_pid"
for ((i = 0; i < 150; i++)); do
  grep -q '^start: redis-server answers again' "$log" && break
  sleep 0.1
done
grep -q "^start: redis-server (pid $redis_pid) exited with status 137" "$log" ||
  fail "deploy/start did not say redis-server exited"
new_redis=$(cat "$tmp/var/redis.pid")
note_pids
[ "$new_redis" != "$redis_pid" ] && kill -0 "$new_redis" ||
  fail "redis-server was not started again"
ok=
for ((i = 0; i < 50; i++)); do
  if "${gm[@]}" --retries 0 --as ops whoami >/dev/null 2>&1 &&
    curl -sf "http://127.0.0.1:$((base + 8))/healthz" >/dev/null; then
    ok=1
    break
  fi
  sleep 0.2
done
[ -n "$ok" ] || fail "gmd did not answer again after redis-server came back"

# A redis-server that cannot start (here a damaged AOF) is not said to run:
# the line names the reason from var/redis.log; once the AOF is mended it
# answers again.
aof=$(ls "$tmp"/var/redis/appendonlydir/*.incr.aof)
cp "$aof" "$tmp/aof.good"
printf 'garbage\r\n' >>"$aof"
kill -KILL "$new_redis"
for ((i = 0; i < 200; i++)); do
  grep -q '^start: redis-server (pid [0-9]*) did not start again' "$log" && break
  sleep 0.1
done
grep -q '^start: redis-server (pid [0-9]*) did not start again (status 1); var/redis.log ends: .*Bad file format' "$log" ||
  fail "deploy/start did not say why redis-server did not start again"
n_back=$(grep -c '^start: redis-server answers again' "$log")
[ "$n_back" = 1 ] || fail "deploy/start said redis-server answers while it could not start"
cp "$tmp/aof.good" "$aof"
for ((i = 0; i < 150; i++)); do
  [ "$(grep -c '^start: redis-server answers again' "$log")" = 2 ] && break
  sleep 0.1
done
[ "$(grep -c '^start: redis-server answers again' "$log")" = 2 ] ||
  fail "redis-server did not answer again once its AOF was mended"
new_redis=$(cat "$tmp/var/redis.pid")
note_pids
"${gm[@]}" --as ops whoami >/dev/null || fail "gm whoami failed after the AOF was mended"

# Stopped with Redis stalled (SIGSTOP) and a second SIGTERM (Ctrl-C twice):
# deploy/start passes the second on, and gmd cuts at once instead of
# after its 2 s grace and probe (2.6-2.9 s).
kill -STOP "$new_redis"
t0=$(date +%s%N)
kill -TERM "$start_pid"
for ((i = 0; i < 100; i++)); do
  grep -q 'SIGTERM: stopping' "$log" && break
  sleep 0.02
done
kill -TERM "$start_pid"
for ((i = 0; i < 250; i++)); do
  kill -0 "$gmd_pid" 2>/dev/null || break
  sleep 0.02
done
took=$((($(date +%s%N) - t0) / 1000000))
kill -CONT "$new_redis"
echo "start-restarts-redis: gmd stopped $took ms after the first of two SIGTERMs"
((took < 1800)) ||
  fail "gmd stopped $took ms after the first of deploy/start's two SIGTERMs (Redis stalled)"
grep -q 'passing the second signal on to gmd' "$log" ||
  fail "deploy/start did not say it passed the second signal on"
for ((i = 0; i < 100; i++)); do
  kill -0 "$start_pid" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$start_pid" 2>/dev/null && fail "deploy/start did not stop on SIGTERM"
for p in "$gmd_pid" "$new_redis"; do
  kill -0 "$p" 2>/dev/null && fail "pid $p still runs after deploy/start stopped"
done
start_pid=
pids=()

# Again as a CURVE broker: the banner's cli line carries the server's
# public key (from its key pair file) and asks for the caller's key file,
# and gm with that line and a registered key is answered.
"$build/cli/gm" keygen --out "$tmp/var/server.key" >/dev/null || fail "gm keygen failed"
admin_pub=$("$build/cli/gm" keygen --out "$tmp/admin.key" | sed -n 's/^public = //p')
server_pub=$(sed -n 's/^public = //p' "$tmp/var/server.key")
printf '[security]\nmode = curve\nsecret_key_file = server.key\nadmin_keys = %s\n' \
  "$admin_pub" >>"$tmp/var/gmd.conf"

# A deploy/start killed outright leaves gmd and redis-server holding var/:
# the next one names those two to stop, not the dead deploy/start's pid.
launch
grep -q '^greenmarket is running' "$log" || fail "deploy/start did not start again"
grep -qF "GM_SERVER_KEY='$server_pub' GM_KEY_FILE=YOUR.key; gm ping" "$log" ||
  fail "the CURVE banner's cli line does not give the server's public key"
line=$(sed -n 's/^  cli:      \(.*\); gm ping; gm markets$/\1/p' "$log")
(eval "$line" && GM_KEY_FILE=$tmp/admin.key gm --timeout 2000 whoami) |
  grep -q '^participant.roles  *admin' ||
  fail "gm with the CURVE banner's cli line and an admin key was not answered"
note_pids
dead_start=$start_pid
gmd_pid=$(cat "$tmp/var/gmd.pid")
redis_pid=$(cat "$tmp/var/redis.pid")
kill -KILL "$start_pid"
wait "$start_pid" 2>/dev/null
start_pid=
second=$("$tmp/deploy/start" 2>&1)
[[ $second == *"kill $gmd_pid (gmd); kill $redis_pid (redis-server);"* &&
  $second != *"kill $dead_start"* ]] ||
  fail "a second deploy/start after one was killed said: $second"
for p in "$gmd_pid" "$redis_pid"; do
  kill -TERM "$p"
  for ((i = 0; i < 100; i++)); do
    kill -0 "$p" 2>/dev/null || break
    sleep 0.1
  done
done
echo "start-restarts-redis: ok"
