#!/usr/bin/env bash
# Checks the systemd units in deploy/systemd with systemd-analyze verify, on
# copies whose ExecStart names the gmd just built (the installed
# /usr/bin/gmd need not exist here), beside Debian's redis-server.service
# with our drop-in.  Any line systemd-analyze prints is a failure: it only
# prints warnings and errors.  Also checks the sysusers file.
# usage: verify-units.sh <source dir> <built gmd>
set -uo pipefail
src=$(realpath "$1")
gmd=$(realpath "$2")
fail() {
  echo "verify-units: $*" >&2
  exit 1
}
command -v systemd-analyze >/dev/null ||
  fail "systemd-analyze is missing; run deploy/install-deps (package systemd)"
[ -x "$gmd" ] || fail "$gmd is not built"
redis_unit=/lib/systemd/system/redis-server.service
[ -f "$redis_unit" ] ||
  fail "$redis_unit is missing; run deploy/install-deps (package redis-server)"

tmp=$(mktemp -d /tmp/gm-units-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
sed "s|^ExecStart=/usr/bin/gmd |ExecStart=$gmd |" \
  "$src/deploy/systemd/gmd.service" >"$tmp/gmd.service"
grep -q "^ExecStart=$gmd " "$tmp/gmd.service" ||
  fail "gmd.service has no 'ExecStart=/usr/bin/gmd ...' line to point at the build"
cp "$redis_unit" "$tmp/"
mkdir "$tmp/redis-server.service.d"
cp "$src/deploy/systemd/redis-server.service.d/greenmarket.conf" \
  "$tmp/redis-server.service.d/"

# The trailing colon keeps the system's unit path after ours, so the
# targets the units name (multi-user.target, ...) resolve.
out=$(cd "$tmp" && SYSTEMD_UNIT_PATH="$tmp:" systemd-analyze verify \
  gmd.service redis-server.service 2>&1)
rc=$?
if [ $rc -ne 0 ] || [ -n "$out" ]; then
  printf '%s\n' "$out" >&2
  fail "systemd-analyze verify failed (status $rc) on deploy/systemd"
fi

out=$(systemd-sysusers --dry-run "$src/deploy/systemd/greenmarket.sysusers" 2>&1)
rc=$?
if [ $rc -ne 0 ] || grep -qiE "ignoring|invalid|failed" <<<"$out"; then
  printf '%s\n' "$out" >&2
  fail "systemd-sysusers --dry-run refused deploy/systemd/greenmarket.sysusers"
fi
echo "verify-units: gmd.service, the redis-server drop-in and greenmarket.sysusers are valid"
