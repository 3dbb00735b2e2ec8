#!/usr/bin/env bash
# A hub with hostile files: the survey records each one with its rule, scans
# everything else, and every rank finishes (exit 0, no hang).
source "$(dirname "$0")/lib.sh"
hub="$ZLLM_TMP/badhub"
sample="$ZLLM_SRC/data/sample-hub/hub"
fix="$ZLLM_SRC/tests/fixtures/safetensors"
rm -rf "$hub" "$ZLLM_TMP/survey-bad"
mkdir -p "$hub/good" "$hub/evil/overlap" "$hub/evil/huge-header" "$hub/evil/card"
cp -r "$sample/llama2c/stories260K-bf16" "$hub/good/"
cp -r "$sample/chatco/alpha-chat" "$hub/good/"
cp "$fix/bad-offsets-overlap--x.safetensors" "$hub/evil/overlap/model.safetensors"
cp "$fix/bad-header-length--huge.safetensors" "$hub/evil/huge-header/model.safetensors"
printf -- '---\nbase_model: [unclosed\n---\n' >"$hub/evil/card/README.md"
cp "$fix/good-two-tensors.safetensors" "$hub/evil/card/model.safetensors"
ln -s /etc/passwd "$hub/evil/card/leak.txt"
mkfifo "$hub/evil/card/pipe"
mkdir -p "$hub/models--evil--nosnap/blobs" # a cache repo without a snapshot: it cannot be listed
out="$ZLLM_TMP/survey-bad"
check "survey over a hostile hub exits 0" timeout 120 "${MPIEXEC:-mpiexec}" "${MPIEXEC_NUMPROC_FLAG:--n}" 2 --oversubscribe "$ZLLM_BIN/zllm-survey" --hub "$hub" --out "$out" --quiet
p="$out/problems.tsv"
check "overlap not recorded" grep -q "evil/overlap/model.safetensors: safetensors: offsets-overlap" "$p"
check "huge header not recorded" grep -q "evil/huge-header/model.safetensors: safetensors: header-length" "$p"
check "bad card not recorded" grep -q "evil/card/README.md: yaml:" "$p"
check "escaping symlink not recorded" grep -q "evil/card/leak.txt: symlink" "$p"
check "fifo not recorded" grep -q "evil/card/pipe: file-type" "$p"
check "good files not all ok" [ "$(awk -F'\t' '$1 ~ /^good\// { print $7 }' "$out/files.tsv" | sort -u)" = ok ]
check "malformed file not hashed anyway" bash -c "awk -F'\t' '\$2 == \"model.safetensors\" && \$1 == \"evil/overlap\" { print \$5 }' '$out/files.tsv' | grep -q \"\$(sha256sum '$hub/evil/overlap/model.safetensors' | cut -d' ' -f1)\""
check "the passwd link was not read" bash -c "! grep -q leak.txt '$out/files.tsv'"
check "the repo that cannot be listed not recorded" grep -q "^evil/nosnap	.*no snapshot" "$p"
# the listing is split over the ranks (each lists a block of repos): its rows, its problems and
# the repo it could not list come out the same on 1 and 3 ranks
rm -rf "$ZLLM_TMP/survey-bad-np1" "$ZLLM_TMP/survey-bad-np3"
check "survey over the hostile hub on 1 rank" timeout 120 "${MPIEXEC:-mpiexec}" "${MPIEXEC_NUMPROC_FLAG:--n}" 1 "$ZLLM_BIN/zllm-survey" --hub "$hub" --out "$ZLLM_TMP/survey-bad-np1" --quiet
check "survey over the hostile hub on 3 ranks" timeout 120 "${MPIEXEC:-mpiexec}" "${MPIEXEC_NUMPROC_FLAG:--n}" 3 --oversubscribe "$ZLLM_BIN/zllm-survey" --hub "$hub" --out "$ZLLM_TMP/survey-bad-np3" --quiet
for f in repos.tsv problems.tsv files.tsv tensors.tsv families.tsv; do
  check "$f of the hostile hub differs between 1 and 2 ranks" cmp -s "$ZLLM_TMP/survey-bad-np1/$f" "$out/$f"
  check "$f of the hostile hub differs between 1 and 3 ranks" cmp -s "$ZLLM_TMP/survey-bad-np1/$f" "$ZLLM_TMP/survey-bad-np3/$f"
done
# a hub that is not there: every rank stops with the same error, none hangs
missing_hub() {
  local rc=0
  timeout 60 "${MPIEXEC:-mpiexec}" "${MPIEXEC_NUMPROC_FLAG:--n}" 2 --oversubscribe "$ZLLM_BIN/zllm-survey" \
    --hub "$ZLLM_TMP/no-such-hub" --out "$ZLLM_TMP/survey-none" --quiet 2>"$T/missing.err" || rc=$?
  [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -q "no-such-hub: cannot open" "$T/missing.err"
}
check "missing hub: clear error on all ranks, no hang" missing_hub
finish
