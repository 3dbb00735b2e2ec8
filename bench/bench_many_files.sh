#!/usr/bin/env bash
# What grows with the number of files: `zllm-survey` on N ranks (default 2)
# over generated hubs of many tiny files (bench/many_files_hub.py: 50 files
# per repo, one tiny model each) of 20,000, 320,000 and 1,280,000 files.  For
# each hub it prints, per rank, the peak resident memory at the end of each
# phase and the phase's seconds (stats.h5 /ranks/peak_rss and /ranks/seconds),
# then the growth per file and per model between the smallest and the
# largest hub: what a hub of 10 million files would need per rank.
#
# Usage: bench/bench_many_files.sh [BUILD_DIR]
#        env: RANKS (2), SIZES ("400 6400 25600": repos per hub, x50 files),
#             KEEP=DIR keeps the generated hubs in DIR (they take minutes to make)
set -euo pipefail
build=${1:-build}
bin=$(cd "$build/bin" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
ranks=${RANKS:-2}
sizes=${SIZES:-400 6400 25600}
work=$(mktemp -d /tmp/zllm-many.XXXXXX)
hubs=${KEEP:-$work}
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
py=/usr/bin/python3 # Debian's, with h5py

for repos in $sizes; do
  [ -d "$hubs/hub$repos" ] || python3 "$here/many_files_hub.py" "$hubs/hub$repos" "$repos" 47
  start=$(date +%s.%N)
  mpirun --oversubscribe -n "$ranks" "$bin/zllm-survey" --hub "$hubs/hub$repos" --out "$work/out$repos" --quiet \
    >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  end=$(date +%s.%N)
  secs=$(echo "$end - $start" | bc)
  echo "== $((repos * 50)) files, $repos models, $ranks ranks: $secs s, $(echo "scale=1; $secs * 1000000 / ($repos * 50)" | bc) us per file"
  "$py" - "$work/out$repos/stats.h5" <<'PY'
import sys
import h5py
f = h5py.File(sys.argv[1], "r")
phases = [p.decode() for p in f["/ranks/phase"][:]]
rss, sec = f["/ranks/peak_rss"][:], f["/ranks/seconds"][:]
for r in range(rss.shape[0]):
    cells = ["%s %.0f MB %.1f s" % (p, rss[r][i] / 1e6, sec[r][i]) for i, p in enumerate(phases) if rss[r][i]]
    print("rank %d: %s" % (r, ", ".join(cells)))
PY
done

first=${sizes%% *}
last=${sizes##* }
"$py" - "$work/out$first/stats.h5" "$work/out$last/stats.h5" "$first" "$last" <<'PY'
import sys
import h5py
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
m0, m1 = int(sys.argv[3]), int(sys.argv[4])
phases = [p.decode() for p in a["/ranks/phase"][:]]
ra, rb = a["/ranks/peak_rss"][:], b["/ranks/peak_rss"][:]
files = (m1 - m0) * 50
print("growth of each rank's running peak from %d to %d files, at the end of each phase:" % (m0 * 50, m1 * 50))
for r in range(ra.shape[0]):
    cells = []
    for i, p in enumerate(phases):
        if ra[r][i] and rb[r][i]:
            g = int(rb[r][i]) - int(ra[r][i])
            cells.append("%s %d B/file" % (p, g // files))
    total = (int(rb[r].max()) - int(ra[r].max())) / files
    print("rank %d: %s -> %.1f GB for 10 M files" % (r, ", ".join(cells), total * 1e7 / 1e9))
PY
