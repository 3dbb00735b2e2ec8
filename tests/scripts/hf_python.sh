#!/usr/bin/env bash
# The Hugging Face Python clients against zllm serve on 127.0.0.1, as users
# run them (HF_ENDPOINT): the current huggingface_hub with hf_xet installed,
# transformers and safetensors, and huggingface_hub 0.20 (still in wide use);
# a format-2 archive (sample repos and a repo with a real tokenizer) without
# and with a token, and the format-1 fixture.  tests/python/test_hf_client.py
# holds the checks: every file downloaded equals its original by SHA-256.
# The Python environments come from tools/pyenv.sh (./bootstrap.sh test runs
# it): hf_python.sh SAMPLE_HUB
source "$(dirname "$0")/lib.sh"
z="$ZLLM_BIN/zllm"
sample=$1
pyenv=${ZLLM_PYENV:-$ZLLM_SRC/.pyenv}
cur="$pyenv/hf-current/bin/python"
old="$pyenv/hf-0.20/bin/python"
if [ ! -x "$cur" ] || [ ! -x "$old" ]; then
  bad "no Python environments in $pyenv: run tools/pyenv.sh $pyenv (./bootstrap.sh test does)"
  finish
fi

# start_serve ARCHIVE [ARGS...]: ZS_URL, ZS_PID
start_serve() {
  local ar=$1; shift
  : >"$T/serve.log"
  "$z" serve "$ar" --listen 127.0.0.1:0 --quiet "$@" 2>"$T/serve.log" &
  ZS_PID=$!
  HS_PIDS+=("$ZS_PID")
  for _ in $(seq 100); do grep -q "HF_ENDPOINT=" "$T/serve.log" && break; sleep 0.1; done
  ZS_URL=$(grep -o 'HF_ENDPOINT=http://127.0.0.1:[0-9]*' "$T/serve.log" | cut -d= -f2)
  [ -n "$ZS_URL" ] || { echo "FAIL: zllm serve did not start" >&2; cat "$T/serve.log" >&2; exit 1; }
}
stop_serve() {
  kill "$ZS_PID" 2>/dev/null || true
  local st=0
  wait "$ZS_PID" 2>/dev/null || st=$?
  check "zllm serve stopped cleanly (status $st)" [ "$st" -eq 0 ]
}

# pytest_with PYTHON HUB REPOS SELECTION [TOKEN]: the checks, each client
# with its own empty HF_HOME (no token or cache of the machine's user)
pytest_with() {
  local py=$1 hub=$2 repos=$3 sel=$4 token=${5:-}
  local home
  home=$(mktemp -d "$T/hf-home.XXXXXX")
  env -u HF_TOKEN -u HUGGING_FACE_HUB_TOKEN HF_HOME="$home" HF_ENDPOINT="$ZS_URL" HF_HUB_DISABLE_TELEMETRY=1 \
    HF_HUB_OFFLINE=0 ZLLM_TEST_HUB="$hub" ZLLM_TEST_REPOS="$repos" ZLLM_TEST_TOKEN="$token" \
    "$py" -m pytest -q -p no:cacheprovider -k "$sel" "$ZLLM_SRC/tests/python/test_hf_client.py"
}

# ---- a format-2 archive: sample repos (BF16, F32 upcast, shards) and a repo
# whose tokenizer the libraries load ----
hub="$T/hub"
repos="llama2c/stories260K llama2c/stories260K-bf16 alpha-labs/alpha-base upcast/alpha-chat-f32
       shardco/alpha-chat-sharded tokco/tiny-tok"
for r in $repos; do
  [ "$r" = tokco/tiny-tok ] && continue
  mkdir -p "$hub/$r"
  cp -r "$sample/$r/." "$hub/$r/"
done
check "a repo with a real tokenizer" "$cur" "$ZLLM_SRC/tests/python/make_tok_repo.py" "$hub/tokco/tiny-tok"
check "pack" "$z" pack --hub "$hub" --out "$T/ar"
repos=$(echo $repos)

start_serve "$T/ar"
check "huggingface_hub $("$cur" -c 'import huggingface_hub as h; print(h.__version__)') (hf_xet installed), transformers, safetensors" \
  pytest_with "$cur" "$hub" "$repos" "not token_required"
check "huggingface_hub $("$old" -c 'import huggingface_hub as h; print(h.__version__)')" \
  pytest_with "$old" "$hub" "$repos" "not token_required and not transformers and not xet"
stop_serve

echo "s3cret-$$" >"$T/token"
start_serve "$T/ar" --token-file "$T/token"
for py in "$cur" "$old"; do
  check "with --token-file: the token opens it, its absence does not ($py)" \
    pytest_with "$py" "$hub" "llama2c/stories260K tokco/tiny-tok" \
    "token_required or hf_hub_download or list_repo_tree or model_info" "s3cret-$$"
done
stop_serve

# ---- the format-1 fixture (zstd planes, written by zllm at 435dacd) ----
cp -r "$ZLLM_SRC/tests/fixtures/archive-format1" "$T/ar-f1"
start_serve "$T/ar-f1"
f1="alpha-labs/alpha-base chatco/alpha-chat legacy/opaque-model mirror/alpha-chat upcast/alpha-chat-f32"
check "format 1, the current client" pytest_with "$cur" "$sample" "$f1" "not token_required"
check "format 1, huggingface_hub 0.20" pytest_with "$old" "$sample" "$f1" "not token_required and not transformers and not xet"
stop_serve
finish
