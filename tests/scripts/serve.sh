#!/usr/bin/env bash
# zllm serve on 127.0.0.1, read by real clients: zllm crawl --endpoint and
# the official JS client @huggingface/hub (from npm); Range requests at odd
# offsets; a repo packed while it serves; hostile, oversized and slow
# requests; the token; a file whose bytes do not match its SHA-256.
# serve.sh SAMPLE_HUB
source "$(dirname "$0")/lib.sh"
z="$ZLLM_BIN/zllm"
hub=$1
raw="python3 $ZLLM_SRC/tests/serve/rawhttp.py"

# start_serve ARCHIVE [ARGS...]: ZS_URL, ZS_PORT, ZS_PID; log in $T/serve.log
start_serve() {
  local ar=$1; shift
  : >"$T/serve.log"
  "$z" serve "$ar" --listen 127.0.0.1:0 "$@" 2>"$T/serve.log" &
  ZS_PID=$!
  HS_PIDS+=("$ZS_PID")
  for _ in $(seq 100); do grep -q "HF_ENDPOINT=" "$T/serve.log" && break; sleep 0.1; done
  ZS_PORT=$(grep -o 'HF_ENDPOINT=http://127.0.0.1:[0-9]*' "$T/serve.log" | cut -d: -f3)
  [ -n "$ZS_PORT" ] || { echo "FAIL: zllm serve did not start" >&2; cat "$T/serve.log" >&2; exit 1; }
  ZS_URL="http://127.0.0.1:$ZS_PORT"
}
stop_serve() { # SIGTERM: a clean stop, exit status 0 (under ASan: no leak, no error)
  kill "$ZS_PID" 2>/dev/null || true
  local st=0
  wait "$ZS_PID" 2>/dev/null || st=$?
  check "zllm serve stopped cleanly (status $st)" [ "$st" -eq 0 ]
  [ "$st" -eq 0 ] || tail -20 "$T/serve.log" >&2
}
status_of() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

# ---- a hub without two of its repos, packed; served with small pages ----
mkdir -p "$T/hub1"
cp -r "$hub"/. "$T/hub1/"
rm -rf "$T/hub1/tinytales/stories260K-manpages-lr1e-5" "$T/hub1/vladmandic"
# a repo with folders, for git's tree ids (names that sort differently as
# folders than as files: "a" before "a-b", "a/" after "a-b")
nest="$T/hub1/nestco/nested"
mkdir -p "$nest/a/b" "$nest/a-b"
echo '{"x": 1}' >"$nest/a/b/c.json"
echo hello >"$nest/a/x.txt"
echo top >"$nest/a.txt"
echo dash >"$nest/a-b/y.txt"
cp "$hub/llama2c/stories260K-bf16/model.safetensors" "$nest/a/model.safetensors"
mkdir -p "$nest/sp ace"
for i in 1 2 3 4 5 6; do echo "$i" >"$nest/sp ace/f+$i.txt"; done # a folder of two pages, escaped in links
check "pack" "$z" pack --hub "$T/hub1" --out "$T/ar"
start_serve "$T/ar" --page-size 4 --timeout 3

# (a) zllm crawl reproduces the packed hub byte for byte (paged lists and trees)
check "crawl from zllm serve" "$z" crawl --endpoint "$ZS_URL" --out "$T/crawl1" --quiet
check "crawled hub differs from the packed hub" diff -r --exclude=.zllm "$T/hub1" "$T/crawl1"
check "the models list is paged" grep -q "GET /api/models?.*cursor=4 200" "$T/serve.log"

# folder oids are git's tree ids (LFS files as their pointers), as git computes them
git_tree_ids() { # the folders' ids in a git repo of the files, LFS files as pointers
  local g="$T/git" f
  rm -rf "$g"; cp -r "$nest" "$g"
  f="$g/a/model.safetensors"
  printf 'version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %s\n' \
    "$(sha256sum "$f" | cut -c1-64)" "$(stat -c %s "$f")" >"$f.ptr" && mv "$f.ptr" "$f"
  git -C "$g" init -q && git -C "$g" add -A && tree=$(git -C "$g" write-tree) &&
    for d in a a/b a-b "sp ace"; do echo "$d $(git -C "$g" rev-parse "$tree:$d")"; done
}
all_pages() { # all_pages URL: the JSON arrays of every page, following Link: rel="next", as one
  python3 - "$1" <<'PY'
import json, re, sys, urllib.request
url, out = sys.argv[1], []
while url:
    with urllib.request.urlopen(url) as r:
        out += json.load(r)
        m = re.search(r'<([^>]+)>;\s*rel="next"', r.headers.get("Link") or "")
        url = m.group(1) if m else None
print(json.dumps(out))
PY
}
all_pages "$ZS_URL/api/models/nestco/nested/tree/main?recursive=true" >"$T/tree.json"
python3 -c 'import json,sys; [print(e["path"], e["oid"]) for e in json.load(open(sys.argv[1])) if e["type"] == "directory"]' \
  "$T/tree.json" | sort >"$T/tree.ids"
check "folder oids equal git's tree ids" diff <(git_tree_ids | sort) "$T/tree.ids"
check "the nested repo's tree lists folders before what they hold" \
  python3 -c 'import json,sys; p=[e["path"] for e in json.load(open(sys.argv[1]))]; sys.exit(p.index("a") > p.index("a/b/c.json"))' "$T/tree.json"
all_pages "$ZS_URL/api/models/nestco/nested/tree/main/a" >"$T/tree-a.json"
all_pages "$ZS_URL/api/models/nestco/nested/tree/main/sp%20ace" >"$T/tree-sp.json"
check "a folder with a space in its name, over two pages" \
  python3 -c 'import json,sys; p=[e["path"] for e in json.load(open(sys.argv[1]))]; sys.exit(p != ["sp ace/f+%d.txt" % i for i in range(1, 7)])' "$T/tree-sp.json"
check "a folder's listing holds only what is directly in it" \
  python3 -c 'import json,sys; p=sorted(e["path"] for e in json.load(open(sys.argv[1]))); sys.exit(p != ["a/b", "a/model.safetensors", "a/x.txt"])' "$T/tree-a.json"

# a repo packed while the server runs appears after its commit
check "pack the rest while serving" "$z" pack --hub "$hub" --out "$T/ar"
check "crawl the new repos" "$z" crawl --endpoint "$ZS_URL" --out "$T/crawl2" --quiet \
  --repo tinytales/stories260K-manpages-lr1e-5 --repo vladmandic/human-blazeface-back
check "new repo differs" diff -r "$hub/tinytales/stories260K-manpages-lr1e-5" \
  "$T/crawl2/tinytales/stories260K-manpages-lr1e-5"
check "new repo differs" diff -r "$hub/vladmandic/human-blazeface-back" "$T/crawl2/vladmandic/human-blazeface-back"

# (c) Range requests at odd offsets return exactly those bytes
f=llama2c/stories260K-bf16/model.safetensors
size=$(stat -c %s "$hub/$f")
for r in "0-0" "1-1" "7-8" "13-4099" "8191-8193" "$((size - 3))-" "-5" "100-$((size + 100))" "0-"; do
  lo=${r%-*} hi=${r#*-}
  if [ -z "$lo" ]; then lo=$((size - hi)) hi=$((size - 1)); fi
  [ -n "$hi" ] && [ "$hi" -lt "$size" ] || hi=$((size - 1))
  curl -s -H "Range: bytes=$r" -D "$T/h" -o "$T/got" "$ZS_URL/${f%/*}/resolve/main/${f##*/}"
  dd if="$hub/$f" of="$T/want" iflag=skip_bytes,count_bytes skip="$lo" count=$((hi - lo + 1)) status=none
  check "range $r: bytes differ" cmp -s "$T/want" "$T/got"
  check "range $r: Content-Range" grep -qi "^Content-Range: bytes $lo-$hi/$size" "$T/h"
  check "range $r: status 206" grep -q "^HTTP/1.1 206" "$T/h"
done
check "range past the end: 416" [ "$(status_of -H "Range: bytes=$size-" "$ZS_URL/${f%/*}/resolve/main/${f##*/}")" = 416 ]
check "several ranges: the whole file (200)" \
  [ "$(status_of -H "Range: bytes=0-1,5-6" "$ZS_URL/${f%/*}/resolve/main/${f##*/}")" = 200 ]
# ranges inside every tensor part of a generated file with 32 MiB-crossing tensors are in the unit test

# HEAD: the headers Hub clients use, no body
curl -s -I "$ZS_URL/${f%/*}/resolve/main/${f##*/}" >"$T/head"
sha=$(sha256sum "$hub/$f" | cut -d' ' -f1)
check "HEAD: ETag is the LFS SHA-256" grep -qi "^ETag: \"$sha\"" "$T/head"
check "HEAD: X-Linked-Size" grep -qi "^X-Linked-Size: $size" "$T/head"
check "HEAD: X-Repo-Commit" grep -qiE "^X-Repo-Commit: [0-9a-f]{40}" "$T/head"
check "HEAD: Content-Length" grep -qi "^Content-Length: $size" "$T/head"
check "HEAD: Accept-Ranges" grep -qi "^Accept-Ranges: bytes" "$T/head"
cfg=llama2c/stories260K-bf16/config.json
oid=$(printf 'blob %d\0' "$(stat -c %s "$hub/$cfg")" | cat - "$hub/$cfg" | sha1sum | cut -d' ' -f1)
check "a small file's ETag is its git blob id" \
  bash -c "curl -s -I '$ZS_URL/${cfg%/*}/resolve/main/config.json' | grep -qi '^ETag: \"$oid\"'"

# (d) traversal, unknown names, oversized and slow requests
check "../ in a path: 400" [ "$(status_of --path-as-is "$ZS_URL/${f%/*}/resolve/main/../../../etc/passwd")" = 400 ]
check "%2e%2e in a path: 400" [ "$(status_of --path-as-is "$ZS_URL/${f%/*}/resolve/main/%2e%2e/%2e%2e/x")" = 400 ]
check "../ in a repo id: 4xx" bash -c "[[ \$(curl -s -o /dev/null -w '%{http_code}' --path-as-is '$ZS_URL/api/models/../etc') == 4* ]]"
check "bad repo id: 400" [ "$(status_of "$ZS_URL/api/models/a--b/c")" = 400 ]
check "unknown repo: 404" [ "$(status_of "$ZS_URL/api/models/nobody/nothing")" = 404 ]
check "unknown file: 404" [ "$(status_of "$ZS_URL/${f%/*}/resolve/main/nope.bin")" = 404 ]
check "unknown revision: 404" [ "$(status_of "$ZS_URL/${f%/*}/resolve/$(printf '0%.0s' $(seq 40))/config.json")" = 404 ]
check "DELETE: 405" [ "$(status_of -X DELETE "$ZS_URL/api/models")" = 405 ]
head -c 100000 /dev/zero >"$T/big"
check "a paths-info body over 64 KiB: 413" \
  [ "$(status_of -X POST --data-binary @"$T/big" "$ZS_URL/api/models/${f%/*}/paths-info/main")" = 413 ]
out=$($raw "$ZS_PORT" line 10000)
check "a 10 kB request line: 4xx or closed ($out)" bash -c "[[ '$out' == 'HTTP/1.1 4'* || '$out' == closed* ]]"
out=$($raw "$ZS_PORT" header 200000)
check "a 200 kB header: 4xx or closed ($out)" bash -c "[[ '$out' == 'HTTP/1.1 4'* || '$out' == closed* ]]"
out=$($raw "$ZS_PORT" slow)
secs=${out#*$'\t'}
check "a stalled request is closed ($out)" bash -c "[[ '$out' == closed* || '$out' == 'HTTP/1.1 4'* ]]"
check "within the idle timeout ($secs s)" [ "${secs%.*}" -lt 20 ]
check "still serving after all that" [ "$(status_of "$ZS_URL/api/models")" = 200 ]
check "access log has method, target, status, bytes, ms" \
  grep -qE "^zllm serve: 127\.0\.0\.1 GET /api/models/a--b/c 400 [0-9]+ [0-9.]+ ms" "$T/serve.log"
stop_serve

# (b) the official JS client lists and snapshot-downloads every model into a
# Hugging Face cache, which zllm packs again; every file's SHA-256 matches
npm_dir="$ZLLM_TMP/npm-hfhub"
if [ ! -d "$npm_dir/node_modules/@huggingface/hub" ]; then
  mkdir -p "$npm_dir"
  npm install --prefix "$npm_dir" --no-audit --no-fund --loglevel=error @huggingface/hub@2.17.5 >/dev/null
fi
check "@huggingface/hub installed from npm" test -f "$npm_dir/node_modules/@huggingface/hub/package.json"
cp "$ZLLM_SRC/tests/serve/snapshot.mjs" "$npm_dir/snapshot.mjs"
echo "hf_zllmtest$$x$RANDOM" >"$T/token"
start_serve "$T/ar" --token-file "$T/token"
token=$(cat "$T/token")
check "JS client: list and snapshot-download every model" \
  node "$npm_dir/snapshot.mjs" "$ZS_URL" "$T/hf-cache" "$token" >"$T/js.out" 2>"$T/js.err"
tail -1 "$T/js.out"; head -5 "$T/js.err"
check "JS client saw every repo" grep -qx "models.23" "$T/js.out"
n=0 bad_sha=0
while IFS= read -r -d '' orig; do
  rel=${orig#"$hub/"} rel=${rel#"$T/hub1/"} repo=${rel%%/*}/$(cut -d/ -f2 <<<"$rel") path=${rel#*/*/}
  snap=$(ls -d "$T/hf-cache/models--${repo%%/*}--${repo#*/}/snapshots/"*/ 2>/dev/null | head -1)
  [ "$(sha256sum <"$orig")" = "$(sha256sum <"$snap$path" 2>/dev/null)" ] || { bad_sha=$((bad_sha + 1)); echo "differs: $rel" >&2; }
  n=$((n + 1))
done < <(find "$hub" "$T/hub1/nestco" -type f -print0)
check "every downloaded file's SHA-256 equals the original ($n files, $bad_sha differ)" [ "$bad_sha" -eq 0 ]
check "pack the JS client's cache" "$z" pack --hub "$T/hf-cache" --out "$T/ar2"
check "restore it" "$z" restore "$T/ar2" --all --out "$T/out2"
cp -r "$hub" "$T/all" && cp -r "$T/hub1/nestco" "$T/all/"
check "the hub through the JS client and back differs" diff -r "$T/all" "$T/out2"
check "no token: 401" [ "$(status_of "$ZS_URL/api/models")" = 401 ]
check "wrong token: 401" [ "$(status_of -H "Authorization: Bearer x$token" "$ZS_URL/api/models")" = 401 ]
check "right token: 200" [ "$(status_of -H "Authorization: Bearer $token" "$ZS_URL/api/models")" = 200 ]
check "the token never appears in the log" bash -c "! grep -qF '$token' '$T/serve.log'"
stop_serve

# a file whose decoded bytes do not match the recorded SHA-256: the whole-file
# response is broken off (curl: partial transfer), never completed
cp -r "$T/ar" "$T/arbad"
sqlite3 "$T/arbad/catalog.sqlite" "UPDATE files SET sha256 = zeroblob(32) WHERE path = 'model.safetensors'
  AND repo = (SELECT id FROM repos WHERE name = 'llama2c/stories260K-bf16')"
start_serve "$T/arbad" --quiet
set +e
curl -s -o "$T/bad" "$ZS_URL/llama2c/stories260K-bf16/resolve/main/model.safetensors"
code=$?
set -e
check "a SHA-256 mismatch breaks the transfer (curl exit $code)" [ "$code" -ne 0 ]
check "and the client got less than the file" [ "$(stat -c %s "$T/bad")" -lt "$size" ]
check "the server says which file" grep -q "stories260K-bf16/model.safetensors.*SHA-256 MISMATCH" "$T/serve.log"
check "--quiet: no access log" bash -c "! grep -q ' GET /' '$T/serve.log'"
stop_serve

# --memory: a download is admitted only while its slices fit; past that, 503
# with Retry-After before any byte; a cancelled download gives its room back
mkdir -p "$T/hub-big/bigco/big"
head -c $((32 << 20)) /dev/urandom >"$T/hub-big/bigco/big/big.bin"
check "pack the big file" "$z" pack --hub "$T/hub-big" --out "$T/ar-big"
start_serve "$T/ar-big" --memory 24
curl -s --limit-rate 200K -o "$T/slow.bin" "$ZS_URL/bigco/big/resolve/main/big.bin" &
slow=$!
sleep 1
code=$(curl -s -D "$T/busy.h" -o "$T/busy.body" -w '%{http_code}' "$ZS_URL/bigco/big/resolve/main/big.bin")
check "a second download past --memory gets 503 ($code)" [ "$code" = 503 ]
check "with Retry-After" grep -qi '^Retry-After: 1' "$T/busy.h"
check "and a JSON error" grep -q '"error"' "$T/busy.body"
check "HEAD is not refused" [ "$(status_of -I "$ZS_URL/bigco/big/resolve/main/big.bin")" = 200 ]
kill "$slow" 2>/dev/null || true
wait "$slow" 2>/dev/null || true
code=503
for _ in $(seq 50); do
  code=$(curl -s -o "$T/after.bin" -w "%{http_code}" "$ZS_URL/bigco/big/resolve/main/big.bin")
  [ "$code" = 503 ] || break
  sleep 0.2
done
check "after the cancelled download, the next is admitted ($code)" [ "$code" = 200 ]
check "and is the file, byte for byte" cmp "$T/hub-big/bigco/big/big.bin" "$T/after.bin"
stop_serve
check "the refusal is counted at stop" grep -q "[1-9][0-9]* downloads refused for memory (503)" "$T/serve.log"
check "--memory below 20 MiB (one download's slices) is refused" \
  sh -c "'$z' serve '$T/ar-big' --listen 127.0.0.1:0 --memory 19 2>'$T/small.log'; [ \$? -eq 2 ] && grep -q 'usage' '$T/small.log'"

# an archive of format 1 (written by zllm at 435dacd: zstd planes) is served as well
cp -r "$ZLLM_SRC/tests/fixtures/archive-format1" "$T/ar-f1"
start_serve "$T/ar-f1" --quiet
check "crawl a format-1 archive" "$z" crawl --endpoint "$ZS_URL" --out "$T/crawl-f1" --quiet
n=0
for d in "$T/crawl-f1"/*/*; do
  r=${d#"$T/crawl-f1/"}
  check "format 1: $r differs" diff -r "$hub/$r" "$d"
  n=$((n + 1))
done
check "format 1: every repo crawled ($n)" [ "$n" -eq 5 ]
stop_serve
finish
