#!/usr/bin/env bash
# The zllm Python package (python/): installed with pip from the source tree
# against this build's libzllm.so, into a directory of its own, then
# tests/python/test_zllm_package.py (pytest) reads a format-2 archive (the
# sample hub and a base/fine-tune pair with tensors larger than a slice), the
# format-1 fixture and a survey's outputs, against the originals; last,
# README's Python example runs as written.  The Python environment comes from
# tools/pyenv.sh (./bootstrap.sh test runs it): py_package.sh SAMPLE_HUB
source "$(dirname "$0")/lib.sh"
unset ZLLM_LIBRARY # the package under test loads the copy pip installed
z="$ZLLM_BIN/zllm"
sample=$1
py=${ZLLM_PYENV:-$ZLLM_SRC/.pyenv}/zllm/bin/python
lib="$ZLLM_BIN/../lib/libzllm.so"
if [ ! -x "$py" ]; then
  bad "no Python environment $py: run tools/pyenv.sh ${ZLLM_PYENV:-$ZLLM_SRC/.pyenv} (./bootstrap.sh test does)"
  finish
fi
# A library built with AddressSanitizer needs its runtime loaded first
# (Python itself is not instrumented: its own allocations are not checked
# for leaks).
preload=$(ldd "$lib" | awk '/libasan\.so/ {print $3}')
run_py() {
  if [ -n "$preload" ]; then
    LD_PRELOAD="$preload" ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" "$py" "$@"
  else
    "$py" "$@"
  fi
}

# ---- pip install ./python (a copy: the build writes beside the sources) ----
cp -r "$ZLLM_SRC/python" "$T/src"
check "pip install ./python against $lib" env ZLLM_LIBRARY="$lib" "$py" -m pip install --quiet --no-deps \
  --no-build-isolation --no-index --disable-pip-version-check --target "$T/site" "$T/src"
export PYTHONPATH="$T/site"
check "the installed package holds the library" [ -f "$T/site/zllm/libzllm.so" ]
loaded=$(cd "$T" && run_py -c 'import zllm._lib as l; print(l._library_path())')
check "the package loads its own copy of the library ($loaded)" [ "$loaded" = "$T/site/zllm/libzllm.so" ]

# ---- the archives and a survey ----
hub="$T/hub"
mkdir -p "$hub"
cp -r "$sample/." "$hub/"
check "a base and fine-tune with tensors over 4 MiB" "$py" "$ZLLM_SRC/tests/python/make_big_pair.py" "$hub"
printf 'bigco/big-chat\tbigco/big-base\n' >"$T/big.tsv"
check "pack the sample hub" "$z" pack --hub "$sample" --out "$T/ar"
check "pack the big pair, the fine-tune as BitX" "$z" pack --hub "$hub" --out "$T/ar" --families "$T/big.tsv"
bitx=$(sqlite3 "$T/ar/catalog.sqlite" "SELECT count(*) FROM tensors t JOIN files f ON t.file=f.id JOIN repos r ON f.repo=r.id WHERE r.name='bigco/big-chat' AND t.method='bitx'")
check "the big fine-tune has BitX tensors ($bitx)" [ "$bitx" -ge 2 ]
cp -r "$ZLLM_SRC/tests/fixtures/archive-format1" "$T/ar-f1"
check "a survey of the sample hub" mpirun_n 2 "$ZLLM_BIN/zllm-survey" --hub "$sample" --out "$T/zllm-out" --baselines

export ZLLM_TEST_ARCHIVE="$T/ar" ZLLM_TEST_HUB="$hub" ZLLM_TEST_F1="$T/ar-f1" ZLLM_TEST_F1_HUB="$sample" \
  ZLLM_TEST_SURVEY="$T/zllm-out"
check "pytest tests/python/test_zllm_package.py" \
  run_py -m pytest -q -p no:cacheprovider "$ZLLM_SRC/tests/python/test_zllm_package.py"

# ---- README's example, as written, where ./bootstrap.sh survey leaves its outputs ----
awk '/<!-- python-example -->/ {on = 1; next} on && /^```python/ {inside = 1; next} inside && /^```/ {exit}
     inside {print}' "$ZLLM_SRC/README.md" >"$T/example.py"
check "README has the Python example" [ -s "$T/example.py" ]
(cd "$T" && run_py example.py >"$T/example.out" 2>&1) && ok || { bad "README's Python example failed"; cat "$T/example.out" >&2; }
check "the example printed a tensor and the survey's reduction" grep -q "reduction" "$T/example.out"
cat "$T/example.out"
finish
