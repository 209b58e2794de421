#!/usr/bin/env bash
# Installs the cpoolcore just built into a fresh prefix, then builds and runs the
# consumer program against it twice: through find_package(cpoolcore), and through
# pkg-config. Arguments: the build tree, a scratch folder.
set -euo pipefail
build=$1 work=$2
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work"
cmake --install "$build" --prefix "$work/prefix" >/dev/null

cmake -S "$here" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/cmake" >/dev/null
"$work/cmake/consumer"

pcdir=$(dirname "$(find "$work/prefix" -name cpoolcore.pc)")
flags=$(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs cpoolcore)
libdir=$(PKG_CONFIG_PATH="$pcdir" pkg-config --variable=libdir cpoolcore)
cc -std=c99 -pedantic -Wall -Wextra -Werror "$here/main.c" $flags -lm -o "$work/consumer-pc"
LD_LIBRARY_PATH="$libdir" "$work/consumer-pc"
