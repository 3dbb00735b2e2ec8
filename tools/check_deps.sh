#!/usr/bin/env bash
# The dependency rule of libzllm, checked on every build (CMake runs this
# before compiling the library; a violation fails the build):
#   common -> format -> crawl -> analyze -> cluster -> survey
#                                    analyze -> pack -> survey
#   (pack does not use cluster: bases come to it as a zllm_base_map);
#   synth uses common, format and crawl.
# A module's sources may include the public headers (include/zllm/*.h) of
# itself and of the modules before it, and the private headers of its own
# folder only.  Each public header belongs to the module that implements it
# (the table below); a header missing from the table is an error too, so a
# new header must be placed.
# Usage: tools/check_deps.sh [SOURCE_DIR]   (exit 1 naming each violation)
set -euo pipefail
src=${1:-$(cd "$(dirname "$0")/.." && pwd)}

declare -A owner=(
  [error.h]=common [log.h]=common [buf.h]=common [hash.h]=common [io.h]=common [path.h]=common
  [mpi.h]=common [json.h]=common [parallel.h]=common [fpconv.h]=common [le.h]=common
  [dtype.h]=format [safetensors.h]=format [repofiles.h]=format
  [hub.h]=crawl [crawl.h]=crawl [basemap.h]=crawl
  [analyze.h]=analyze [tally.h]=analyze
  [cluster.h]=cluster
  [archive.h]=pack [codec.h]=pack
  [survey.h]=survey
  [synth.h]=synth
)
# what each module may use (itself included)
declare -A allowed=(
  [common]="common"
  [format]="common format"
  [crawl]="common format crawl"
  [analyze]="common format crawl analyze"
  [cluster]="common format crawl analyze cluster"
  [pack]="common format crawl analyze pack"
  [survey]="common format crawl analyze cluster pack survey synth"
  [synth]="common format crawl synth"
)

bad=0
for h in "$src"/include/zllm/*.h; do
  name=$(basename "$h")
  if [ -z "${owner[$name]:-}" ]; then
    echo "check_deps: include/zllm/$name belongs to no module (add it to tools/check_deps.sh)" >&2
    bad=1
  fi
done
for module in "${!allowed[@]}"; do
  for f in "$src/$module"/*.c "$src/$module"/*.h; do
    [ -e "$f" ] || continue
    while IFS= read -r line; do
      inc=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]+)".*/\1/' <<<"$line")
      case $inc in
        zllm/*)
          used=${owner[${inc#zllm/}]:-unknown}
          if ! grep -qw -- "$used" <<<"${allowed[$module]}"; then
            echo "check_deps: ${f#"$src"/} includes $inc (module $used): $module may use only ${allowed[$module]}" >&2
            bad=1
          fi
          ;;
        */*)
          dir=${inc%%/*}
          if [ "$dir" != "$module" ]; then
            echo "check_deps: ${f#"$src"/} includes $inc, a private header of $dir/" >&2
            bad=1
          fi
          ;;
      esac
    done < <(grep -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" || true)
  done
done
exit $bad
