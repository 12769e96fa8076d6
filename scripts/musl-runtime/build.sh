#!/usr/bin/env bash
# Builds a musl libstdc++.so.6 from Debian's own libstdc++.a with musl-gcc, so
# that dist/cas-migrator-musl (which needs Alpine's libstdc++) can be run on a
# Debian CI machine:  LD_LIBRARY_PATH=DIR dist/cas-migrator-musl ...
# Needs Debian's musl-tools and libstdc++-12-dev.   Usage: build.sh OUT_DIR
set -euo pipefail
out=${1:?usage: build.sh OUT_DIR}
gcc_lib=$(dirname "$(gcc -print-libgcc-file-name)")
mkdir -p "$out"
musl-gcc -shared -fPIC -O2 -o "$out/libstdc++.so.6" -Wl,-soname,libstdc++.so.6 \
  "$(dirname "$0")/glibc-shims.c" \
  -Wl,--whole-archive "$gcc_lib/libstdc++.a" -Wl,--no-whole-archive \
  "$gcc_lib/libgcc_eh.a" "$gcc_lib/libgcc.a"
echo "built $out/libstdc++.so.6 (musl)"
