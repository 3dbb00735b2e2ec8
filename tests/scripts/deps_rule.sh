#!/usr/bin/env bash
# The module dependency rule is enforced: the tree passes tools/check_deps.sh
# (which every build runs before compiling the library), and a copy of it
# with one forbidden include (cluster/ reaching up into pack's archive.h,
# pack/ reaching across into cluster.h — base selection is not pack's — a
# module using another's private header) fails, naming the file.
source "$(dirname "$0")/lib.sh"
check "the source tree breaks the dependency rule" bash "$ZLLM_SRC/tools/check_deps.sh" "$ZLLM_SRC"
copy="$T/src"
mkdir -p "$copy"
for d in include common format crawl analyze cluster pack survey synth; do cp -r "$ZLLM_SRC/$d" "$copy/"; done
printf '#include "zllm/archive.h"\n' >>"$copy/cluster/sketch.c"
check "an upward include passed" bash -c "! bash '$ZLLM_SRC/tools/check_deps.sh' '$copy' 2>'$T/up.err'"
check "... without naming it ($(cat "$T/up.err"))" grep -q "cluster/sketch.c includes zllm/archive.h (module pack)" "$T/up.err"
cp "$ZLLM_SRC/cluster/sketch.c" "$copy/cluster/sketch.c"
printf '#include "zllm/cluster.h"\n' >>"$copy/pack/ingest.c"
check "pack including cluster.h passed" bash -c "! bash '$ZLLM_SRC/tools/check_deps.sh' '$copy' 2>'$T/across.err'"
check "... without naming it ($(cat "$T/across.err"))" grep -q "pack/ingest.c includes zllm/cluster.h (module cluster)" "$T/across.err"
cp "$ZLLM_SRC/pack/ingest.c" "$copy/pack/ingest.c"
printf '#include "pack/archive_internal.h"\n' >>"$copy/survey/report.c"
check "a private header of another module passed" bash -c "! bash '$ZLLM_SRC/tools/check_deps.sh' '$copy' 2>'$T/priv.err'"
check "... without naming it ($(cat "$T/priv.err"))" grep -q "survey/report.c includes pack/archive_internal.h, a private header of pack/" "$T/priv.err"
finish
