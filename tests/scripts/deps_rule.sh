#!/usr/bin/env bash
# The module dependency rule is enforced by the build itself: each module is
# a CMake object library whose include path holds only the public headers of
# the modules it may use and its own folder.  A copy of the tree with
# forbidden includes — cluster/ reaching up into pack's archive.h, pack/
# reaching across into cluster.h (base selection is not pack's), survey/
# using pack's private header — fails to compile, naming each file; a public
# header that belongs to no module fails the configure step.
source "$(dirname "$0")/lib.sh"
copy="$T/src"
mkdir -p "$copy"
# unchanged parts by link, the planted modules and the headers as copies
for e in "$ZLLM_SRC"/*; do
  name=$(basename "$e")
  case $name in
    build* | fuzz-out | zllm-out) ;;
    cluster | pack | survey | include) cp -r "$e" "$copy/" ;;
    *) ln -s "$e" "$copy/$name" ;;
  esac
done
configure() { # configure BUILD_DIR LOG
  cmake -S "$copy" -B "$1" -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Debug >"$2" 2>&1
}
export -f configure
export copy

check "the copy does not configure" configure "$T/b0" "$T/conf0.log"
check "the clean modules do not build" cmake --build "$T/b0" --target zllm_cluster zllm_pack zllm_survey -j2 \
  >"$T/clean.log" 2>&1

# one module at a time, the users first (survey's build compiles pack and
# cluster too, which must still be clean then)
plant() { # plant FILE HEADER
  printf '#include "%s"\n' "$2" >>"$copy/$1"
  check "$1 including $2 compiled" bash -c "! cmake --build '$T/b0' --target zllm_${1%%/*} -j2 >'$T/bad.log' 2>&1"
  check "... without naming it ($(grep -m2 error "$T/bad.log" | tr '\n' ' '))" \
    grep -q "$1:.*$2: No such file" "$T/bad.log"
}
plant survey/report.c pack/archive_internal.h
plant pack/ingest.c zllm/cluster.h
plant cluster/sketch.c zllm/archive.h

printf '/* a header nobody owns */\n' >"$copy/include/zllm/stray.h"
check "a header of no module configured" bash -c "! configure '$T/b1' '$T/conf1.log'"
check "... without naming it" grep -q "include/zllm/stray.h must belong to exactly one module" "$T/conf1.log"
finish
