#!/usr/bin/env bash
# Re-uploads and duplicate counts come from the owners of the hashes: each
# rank sends its files' SHA-256s to their owners, which judge them for the
# whole hub.  A hub built so that the answers need several ranks' holders:
# a repo holding a model's weights and more (the first holder of two
# re-uploads), a repo with one of a sharded model's two shards (a candidate
# that is struck out), full copies.  On 1 to 4 ranks with every buffer
# tiny, /models/file_duplicate_of names the first earlier repo holding all
# of a repo's weight files, and every table is the same.
source "$(dirname "$0")/lib.sh"
src="$ZLLM_SRC/data/sample-hub/hub"
hub="$T/hub"
chat="$src/chatco/alpha-chat" shard="$src/shardco/alpha-chat-sharded"
mkdir -p "$hub/aa/partial" "$hub/ab/half" "$hub/chatco" "$hub/mirror" "$hub/shardco" "$hub/zz"
cp -r "$chat" "$hub/chatco/alpha-chat"
cp -r "$chat" "$hub/mirror/alpha-chat"
cp -r "$chat" "$hub/zz/copy2"
cp -r "$shard" "$hub/shardco/alpha-chat-sharded"
cp -r "$shard" "$hub/zz/shard-copy"
cp "$chat/config.json" "$chat/model.safetensors" "$hub/aa/partial/"
cp "$src/chatco/alpha-chat-v2/model.safetensors" "$hub/aa/partial/extra.safetensors"
cp "$shard/config.json" "$shard/model-00001-of-00002.safetensors" "$hub/ab/half/"

expected="aa/partial -
ab/half -
chatco/alpha-chat aa/partial
mirror/alpha-chat aa/partial
shardco/alpha-chat-sharded -
zz/copy2 aa/partial
zz/shard-copy shardco/alpha-chat-sharded"
dups() {
  /usr/bin/python3 - "$1/stats.h5" <<'PY'
import sys
import h5py
f = h5py.File(sys.argv[1], "r")
for r, d in zip(f["/models/repo"][:], f["/models/file_duplicate_of"][:]):
    print(r.decode(), d.decode())
PY
}
for n in 1 2 3 4; do
  out="$T/out$n"
  check "a survey on $n ranks with tiny buffers" env ZLLM_TEST_TINY_BUFFERS=1 \
    "${MPIEXEC:-mpiexec}" "${MPIEXEC_NUMPROC_FLAG:--n}" "$n" --oversubscribe "$ZLLM_BIN/zllm-survey" \
    --hub "$hub" --out "$out" --quiet
  check "-n $n: the first earlier repo holding every weight file" test "$(dups "$out")" = "$expected"
  check "-n $n: 2 duplicate files beyond the shared tokenizers and configs" python3 -c "
import json, sys
r = json.load(open('$out/summary.json'))['results']
sys.exit(0 if r['reduction']['duplicate_files'] > 0 and r['files'] == $(find "$hub" -type f | wc -l) else 1)"
  [ "$n" -eq 1 ] && continue
  for f in files.tsv tensors.tsv problems.tsv families.tsv pairs.tsv; do
    check "-n $n: $f differs from -n 1" cmp -s "$T/out1/$f" "$out/$f"
  done
  check "-n $n: stats.h5 differs from -n 1" h5diff --exclude-path /ranks "$T/out1/stats.h5" "$out/stats.h5"
  check "-n $n: summary results differ from -n 1" python3 -c "
import json, sys
a = json.load(open('$T/out1/summary.json'))['results']; b = json.load(open('$out/summary.json'))['results']
sys.exit(0 if a == b else 1)"
done
finish
