#!/usr/bin/env bash
# zllm-survey on N real MPI ranks over the sample hub: it finishes, and its
# files.tsv agrees with the sample hub's MANIFEST.tsv file by file.
source "$(dirname "$0")/lib.sh"
n=$1
sample="$ZLLM_SRC/data/sample-hub"
out="$ZLLM_TMP/survey-np$n"
rm -rf "$out"
# the help goes to a file first: `| grep -q` closes the pipe at its first match,
# and mpiexec, still forwarding the rest, then fails the pipeline (a flake)
survey_help() { mpirun_n "$n" "$ZLLM_BIN/zllm-survey" --help >"$T/help-np$n.out" && grep -q 'usage: mpirun' "$T/help-np$n.out"; }
check "zllm-survey --help" survey_help
survey_usage_error() { ! mpirun_n "$n" "$ZLLM_BIN/zllm-survey" --bogus 2>/dev/null; }
check "zllm-survey --bogus fails" survey_usage_error
check "zllm-survey -n $n exits 0" mpirun_n "$n" "$ZLLM_BIN/zllm-survey" --hub "$sample/hub" --out "$out" --quiet
for f in summary.json repos.tsv files.tsv tensors.tsv problems.tsv; do
  check "$f missing" [ -s "$out/$f" ]
done
rows=$(($(wc -l <"$sample/MANIFEST.tsv") - 1))
check "files.tsv rows" [ "$(($(wc -l <"$out/files.tsv") - 1))" -eq "$rows" ]
# the same (repo, path, sha256) set as the ground truth
diff <(tail -n +2 "$sample/MANIFEST.tsv" | cut -f1,2,4 | LC_ALL=C sort) \
     <(tail -n +2 "$out/files.tsv" | cut -f1,2,5 | LC_ALL=C sort) >"$T/diff-np$n" \
  && ok || bad "files.tsv disagrees with MANIFEST.tsv: $(head -5 "$T/diff-np$n")"
check "no problems on the sample hub" [ "$(wc -l <"$out/problems.tsv")" -eq 1 ]
check "every file ok" [ "$(tail -n +2 "$out/files.tsv" | cut -f7 | sort -u)" = ok ]
check "summary counts the repos" python3 -c "
import json,sys; s=json.load(open('$out/summary.json'))['results']
sys.exit(0 if s['repos']==22 and s['files']==$rows and s['reduction']['after_file_dedup']<s['bytes'] else 1)"
# one pass: pack's read of each file feeds the hashes, the archive and the
# statistics, so the job reads the hub about once (before the one pass it
# read it four to six times: scan, pack twice, statistics); the rest is
# sketch samples, dedup comparisons and the merge's staging archives
hub_bytes=$(du -sb "$sample/hub" | cut -f1)
check "the survey read more than 2.5x the hub's bytes" python3 -c "
import json,sys; r=json.load(open('$out/summary.json'))['run']['bytes_read']
print('bytes_read', r, 'hub', $hub_bytes, 'ratio', round(r / $hub_bytes, 2))
sys.exit(0 if 0 < r <= 2.5 * $hub_bytes else 1)"
# progress for the whole job: rank 0's batch lines count every rank's bytes
# against every rank's share (a line per add with ZLLM_PROGRESS_SECONDS=0)
check "zllm-survey -n $n with progress exits 0" env ZLLM_PROGRESS_SECONDS=0 \
  "${MPIEXEC:-mpiexec}" "${MPIEXEC_NUMPROC_FLAG:--n}" "$n" --oversubscribe \
  "$ZLLM_BIN/zllm-survey" --hub "$sample/hub" --out "$T/progress" 2>"$T/progress.err" >/dev/null
total=$(python3 -c "import json; print('%.1f' % (json.load(open('$out/summary.json'))['results']['bytes'] / 1e6))")
check "the pass's last line is not 100% of the whole hub ($total MB): $(grep 'pass:' "$T/progress.err" | tail -1)" \
  grep -q "\[r0\] .* info: pass: 100.0% ($total of $total MB), .*done in" "$T/progress.err"
check "a rank other than 0 printed progress" bash -c "! grep -q '\[r[1-9]\].*pass:' '$T/progress.err'"
finish
