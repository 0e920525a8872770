#!/usr/bin/env bash
# The client-only build (-Dclient_only=true) where libcbor's pkg-config file
# is the only one to be found: the full build's configure fails there (it
# needs libusb, cairo, json-c...), the client-only one succeeds with no
# dependency but threads and libcbor, builds, installs libtether, its
# headers and its pkg-config file and nothing else, and a client builds
# against that pkg-config file and runs.
#
# test-client-only.sh SOURCE-ROOT SCRATCH-DIR
set -u
src=$1 b=$2
fail() { echo "FAIL: $*"; exit 1; }
command -v jq >/dev/null || fail "jq is not installed (scripts/install-deps.sh installs it)"
unset CC CFLAGS CPPFLAGS LDFLAGS PKG_CONFIG_PATH
rm -rf "$b"
mkdir -p "$b"

# Only libcbor.pc: what the client needs. Every other .pc on the machine
# (libusb-1.0, cairo, json-c, umockdev-1.0, glib-2.0, cmocka) is hidden.
pc=$b/pkgconfig
mkdir -p "$pc"
cbor_pc=$(pkg-config --variable=pcfiledir libcbor)/libcbor.pc
[ -f "$cbor_pc" ] || fail "no libcbor.pc (libcbor-dev)"
cp "$cbor_pc" "$pc/"
export PKG_CONFIG_LIBDIR=$pc
for dep in libusb-1.0 cairo json-c umockdev-1.0 glib-2.0 cmocka; do
  pkg-config --exists "$dep" && fail "$dep is still visible to pkg-config"
done

# The full build cannot be configured so: the hiding is real.
if meson setup "$b/full" "$src" >"$b/full.log" 2>&1; then
  fail "the full build configured without libusb, cairo and json-c"
fi
grep -Eq "Dependency \"?(json-c|libusb-1.0|cairo)\"? not found|Dependency lookup for (json-c|libusb-1.0|cairo)" "$b/full.log" \
  || fail "the full build failed, but not for a missing dependency: $(tail -n 5 "$b/full.log")"

meson setup "$b/build" "$src" -Dclient_only=true -Dwerror=true --prefix=/usr >"$b/setup.log" 2>&1 \
  || { cat "$b/setup.log"; fail "configuring -Dclient_only=true with only libcbor.pc"; }
deps=$(meson introspect "$b/build" --dependencies | jq -r '.[].name' | sort -u | tr '\n' ' ')
[ "$deps" = "libcbor threads " ] || fail "client-only dependencies: $deps"
echo "client-only configure: dependencies: $deps"
meson compile -C "$b/build" >"$b/compile.log" 2>&1 || { cat "$b/compile.log"; fail "building"; }

dest=$b/root
DESTDIR=$dest meson install -C "$b/build" --quiet >"$b/install.log" 2>&1 || { cat "$b/install.log"; fail "installing"; }
libdir=$(meson introspect "$b/build" --buildoptions | jq -r '.[] | select(.name == "libdir") | .value')
installed=$(cd "$dest" && find . -type f -o -type l | sed 's|^\./||' | sort | tr '\n' ' ')
# usbtmc-instrument.h: an application's header (the generic USBTMC driver's
# class, properties and selectors), so a client-only build has it too.
want="usr/include/tether/return.h usr/include/tether/tether.h usr/include/tether/usbtmc-instrument.h usr/include/tether/value.h $(
  printf 'usr/%s/libtether.so usr/%s/libtether.so.0 usr/%s/libtether.so.0.1.0 usr/%s/pkgconfig/libtether.pc ' \
    "$libdir" "$libdir" "$libdir" "$libdir")"
[ "$installed" = "$want" ] || fail "installed: $installed; want: $want"
echo "client-only install: $installed"

# A client against the installed pkg-config file (libcbor.pc beside it for
# its Requires.private).
cat >"$b/client.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tether/tether.h>
int main(int argc, char **argv)
{
        /* No tetherd at this path: the library says so, it does not crash. */
        tether_session *s = NULL;
        tether_ret_t r = tether_session_open(argv[1], &s);
        if (r != TETHER_ERR_NOT_RESPONDING) {
                fprintf(stderr, "session_open: %s\n", tether_ret_name(r));
                return 1;
        }
        /* A value through CBOR and back: the libcbor it was built with. */
        tether_value *d = NULL, *back = NULL, *big = NULL;
        uint8_t *buf = NULL;
        size_t len = 0;
        uint64_t u = 0;
        if (tether_value_new_dict(&d) || tether_value_dict_set_uint(d, "Big", 0xfedcba9876543210u, 64) ||
            tether_value_encode(d, &buf, &len) || tether_value_decode(buf, len, &back) ||
            tether_value_dict_get(back, "Big", &big) || tether_value_get_uint(big, &u) || u != 0xfedcba9876543210u) {
                fprintf(stderr, "CBOR round trip\n");
                return 1;
        }
        free(buf);
        tether_value_unref(d);
        tether_value_unref(back);
        printf("%s 0x%08x\n", tether_ret_name(TETHER_ERR_BAD_ARGUMENT), tether_ret_to_ioreturn(TETHER_ERR_BAD_ARGUMENT));
        return argc == 2 ? 0 : 1;
}
C
export PKG_CONFIG_SYSROOT_DIR=$dest
export PKG_CONFIG_LIBDIR=$dest/usr/$libdir/pkgconfig:$pc
flags=$(pkg-config --cflags --libs libtether) || fail "pkg-config libtether"
cc -Wall -Werror "$b/client.c" -o "$b/client" $flags >"$b/cc.log" 2>&1 || { cat "$b/cc.log"; fail "building a client with: $flags"; }
out=$(LD_LIBRARY_PATH=$dest/usr/$libdir "$b/client" "$b/no-tetherd.sock" 2>&1) || fail "the client: $out"
[ "$out" = "BadArgument 0xe00002c2" ] || fail "the client said: $out"
echo "a client built with '$flags' runs: $out"
rm -rf "$b"
echo "client-only: all checks passed"
