#!/usr/bin/env bash
# What an integrator gets from `cmake --install`: installs the build into a
# scratch prefix, then builds examples/client against that prefix the two
# documented ways (pkg-config, CMake's find_package) and generates and
# compiles C code from every installed .proto, as docs/client.md says.
# usage: install_test.sh BUILD_DIR SOURCE_DIR SANITIZE(0|1)
set -euo pipefail
build=$1 src=$2 sanitize=${3:-0}
tmp=$(mktemp -d /tmp/gm-install-test-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
flags=()
[ "$sanitize" = 1 ] && flags=(-fsanitize=address,undefined)

cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log" ||
  fail "cmake --install failed: $(tail -3 "$tmp/install.log")"

pc=$(find "$tmp/prefix" -name greenmarket.pc)
[ -n "$pc" ] || fail "no greenmarket.pc installed"
export PKG_CONFIG_PATH=$(dirname "$pc")
libdir=$(realpath "$(pkg-config --variable=libdir greenmarket)")
protodir=$(realpath "$(pkg-config --variable=protodir greenmarket)")
[ -e "$libdir/libgmclient.so" ] || fail "no libgmclient.so in $libdir"
[ -f "$protodir/greenmarket.proto" ] ||
  fail "the envelope's greenmarket.proto is not in protodir $protodir"
n=$(find "$protodir" -name '*.proto' ! -name greenmarket.proto | wc -l)
[ "$n" -ge 1 ] || fail "no market .proto installed in $protodir"
# pkg-config's link line names only what the program itself needs.
libs=$(pkg-config --libs greenmarket)
case " $libs " in *" -lzmq "*) fail "pkg-config --libs lists -lzmq: $libs" ;; esac

# 1. pkg-config, as a Makefile would.
cc -std=c11 -Wall -Wextra -Werror "${flags[@]}" -o "$tmp/ex-pc" \
  "$src/examples/client/client_example.c" \
  $(pkg-config --cflags --libs greenmarket) -Wl,-rpath,"$libdir" ||
  fail "the example does not build with pkg-config"
"$tmp/ex-pc" --no-such-option 2>"$tmp/usage" && fail "bad option accepted"
grep -q '^usage: ' "$tmp/usage" || fail "no usage: $(cat "$tmp/usage")"
grep -q "$libdir/libgmclient.so" <<<"$(ldd "$tmp/ex-pc")" ||
  fail "the example does not load the installed libgmclient: $(ldd "$tmp/ex-pc")"

# The installed library says the version pkg-config and the CMake package
# give (gm_client_version(), exported).
cat >"$tmp/version.c" <<'C'
#include <stdio.h>
#include <greenmarket/client.h>
int main(void) { return puts(gm_client_version()) < 0; }
C
cc -std=c11 -Wall -Wextra -Werror "${flags[@]}" -o "$tmp/version" \
  "$tmp/version.c" $(pkg-config --cflags --libs greenmarket) \
  -Wl,-rpath,"$libdir" || fail "gm_client_version() does not link"
nm -D --defined-only "$libdir/libgmclient.so" | grep -qw gm_client_version ||
  fail "the installed libgmclient.so does not export gm_client_version"
# Programs built against a header before feed_handshake_ms call the
# function gm_client_options_init; today's header calls the _size one.
for sym in gm_client_options_init gm_client_options_init_size; do
  nm -D --defined-only "$libdir/libgmclient.so" | grep -qw "$sym" ||
    fail "the installed libgmclient.so does not export $sym"
done
got=$("$tmp/version") want=$(pkg-config --modversion greenmarket)
[ "$got" = "$want" ] ||
  fail "gm_client_version() says '$got', pkg-config --modversion '$want'"

# 2. Each installed .proto through protoc-c, compiled with the same flags.
mkdir "$tmp/gen"
for p in "$protodir"/*.proto; do
  protoc-c --c_out="$tmp/gen" -I"$protodir" "$p" ||
    fail "protoc-c cannot read installed $(basename "$p")"
done
for c in "$tmp"/gen/*.pb-c.c; do
  cc -Wall -Wextra -Werror -c -o "$c.o" -I"$tmp/gen" "$c" \
    $(pkg-config --cflags greenmarket) || fail "$(basename "$c") does not compile"
done

# 3. CMake: find_package(greenmarket) and greenmarket::client.
cmake -S "$src/examples/client" -B "$tmp/cm" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
  -DCMAKE_C_FLAGS="${flags[*]}" >"$tmp/cmake.log" 2>&1 ||
  fail "find_package(greenmarket) failed: $(tail -5 "$tmp/cmake.log")"
cmake --build "$tmp/cm" >"$tmp/build.log" 2>&1 ||
  fail "the example does not build with CMake: $(tail -5 "$tmp/build.log")"
"$tmp/cm/gm-client-example" --no-such-option 2>/dev/null && fail "bad option"
grep -q "$libdir/libgmclient.so" <<<"$(ldd "$tmp/cm/gm-client-example")" ||
  fail "the CMake build does not load the installed libgmclient"
echo "install test: pkg-config, protos ($n market files) and CMake package OK"
