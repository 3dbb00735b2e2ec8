#!/usr/bin/env bash
# Hardening, round 2 (one ctest per class of attack): an archive, a hub
# snapshot or a Hub server from someone else.  Every run is under `timeout`;
# the classes about memory run under a memory cap (ulimit -v, or ASan's
# hard_rss_limit_mb in a sanitizer build, where ulimit -v cannot be used).
#   hostile_round2.sh CLASS   CLASS: catalog_code catalog_sizes special_files
#                                    cards names serve_work deadlines small ranks
source "$(dirname "$0")/lib.sh"
z="$ZLLM_BIN/zllm"
class=${1:?class}
sanitized=0
# (the whole of ldd's answer first: `ldd | grep -q` can end ldd with SIGPIPE, which pipefail reports)
case "$(ldd "$z" 2>/dev/null)" in *libasan*) sanitized=1 ;; esac

bound=${HOSTILE_TIMEOUT:-60}
# run OUT CMD...: runs CMD with a bounded time, stdout+stderr into OUT; sets rc
run() {
  local out=$1; shift
  set +e
  timeout -k 5 "$bound" "$@" >"$out" 2>&1
  rc=$?
  set -e
}
# run_capped MIB OUT CMD...: the same with the process's memory capped
run_capped() {
  local mib=$1 out=$2; shift 2
  set +e
  if [ "$sanitized" -eq 1 ]; then
    ASAN_OPTIONS="${ASAN_OPTIONS:-}:hard_rss_limit_mb=$mib" timeout -k 5 "$bound" "$@" >"$out" 2>&1
  else
    (ulimit -v $((mib * 1024)) && exec timeout -k 5 "$bound" "$@") >"$out" 2>&1
  fi
  rc=$?
  set -e
}
# fails_cleanly WHAT OUT WANT: exit 1 (not a signal, not a time-out) and WANT said
fails_cleanly() {
  local what=$1 out=$2 want=$3
  check "$what: exited $rc (want 1: a clean failure) ($(head -c 300 "$out"))" [ "$rc" -eq 1 ]
  check "$what: did not say '$want' ($(head -c 300 "$out"))" grep -qF -- "$want" "$out"
}

hub="$T/hub"; ar="$T/ar"
small_hub "$hub"
timeout 60 "$z" pack --hub "$hub" --out "$ar" >/dev/null

# serve_get ARCHIVE URLPATH OUT: starts zllm serve, GETs one URL (10 s bound),
# stops the server with SIGTERM; sets code (HTTP status or 000) and serve_rc
serve_get() {
  local a=$1 path=$2 out=$3
  : >"$T/serve.log"
  if [ -n "${SERVE_CAP:-}" ] && [ "$sanitized" -eq 1 ]; then
    ASAN_OPTIONS="${ASAN_OPTIONS:-}:hard_rss_limit_mb=$SERVE_CAP" "$z" serve "$a" --listen 127.0.0.1:0 --quiet 2>"$T/serve.log" &
  elif [ -n "${SERVE_CAP:-}" ]; then
    (ulimit -v $((SERVE_CAP * 1024)) && exec "$z" serve "$a" --listen 127.0.0.1:0 --quiet) 2>"$T/serve.log" &
  else
    "$z" serve "$a" --listen 127.0.0.1:0 --quiet 2>"$T/serve.log" &
  fi
  local pid=$!
  for _ in $(seq 100); do grep -q "HF_ENDPOINT=" "$T/serve.log" && break; sleep 0.1; done
  local port
  port=$(grep -o 'HF_ENDPOINT=http://127.0.0.1:[0-9]*' "$T/serve.log" | cut -d: -f3 || true)
  code=000
  [ -z "$port" ] || code=$(curl -s -m 10 -o "$out" -w '%{http_code}' "http://127.0.0.1:$port$path" || true)
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  local hung=0
  if kill -0 "$pid" 2>/dev/null; then
    hung=1
    kill -KILL "$pid" 2>/dev/null || true
  fi
  set +e
  wait "$pid"
  serve_rc=$?
  set -e
  [ "$hung" -eq 0 ] || serve_rc=137
}

case $class in
# ---- 1. a catalog that runs code ---------------------------------------------------
catalog_code)
  # a trigger that puts another file's bytes under every file pack inserts:
  # today's check compared tables only, and pack, verify and restore all exited 0
  a="$T/ar-trigger"; cp -r "$ar" "$a"
  sqlite3 "$a/catalog.sqlite" "CREATE TRIGGER evil AFTER INSERT ON files BEGIN
    UPDATE files SET sha256 = (SELECT sha256 FROM files WHERE id = 1), size = (SELECT size FROM files WHERE id = 1),
    dup_of = 1, method = 'dup' WHERE id = new.id; END;"
  every_reader trigger "$a" "$hub" "schema differs: trigger 'evil' is not part of the format; refused"
  # pack with a new repo: refused before anything is written
  cp -r "$ZLLM_SRC/data/sample-hub/hub/alpha-labs/alpha-base" "$hub/alpha-labs/alpha-copy"
  before=$(sqlite3 "$a/catalog.sqlite" "SELECT count(*) FROM files")
  run "$T/trigger.pack2" "$z" pack --hub "$hub" --out "$a"
  fails_cleanly "trigger: pack of a new repo" "$T/trigger.pack2" "trigger 'evil'"
  check "trigger: pack wrote rows anyway" [ "$(sqlite3 "$a/catalog.sqlite" "SELECT count(*) FROM files")" = "$before" ]
  rm -rf "$hub/alpha-labs/alpha-copy"
  # a view, an index on an expression, SQLite's statistics, a COLLATE clause
  a="$T/ar-view"; cp -r "$ar" "$a"
  sqlite3 "$a/catalog.sqlite" "CREATE VIEW v AS SELECT * FROM files"
  every_reader view "$a" "$hub" "view 'v' is not part of the format"
  a="$T/ar-exprindex"; cp -r "$ar" "$a"
  sqlite3 "$a/catalog.sqlite" "CREATE INDEX files_lower ON files(lower(path))"
  every_reader exprindex "$a" "$hub" "index 'files_lower' is not part of the format"
  a="$T/ar-stat"; cp -r "$ar" "$a"
  sqlite3 "$a/catalog.sqlite" "ANALYZE"
  every_reader stat "$a" "$hub" "table 'sqlite_stat1' is not part of the format"
  a="$T/ar-collate"; cp -r "$ar" "$a"
  sqlite3 "$a/catalog.sqlite" "PRAGMA writable_schema = ON;
    UPDATE sqlite_master SET sql = replace(sql, 'path TEXT NOT NULL', 'path TEXT NOT NULL COLLATE NOCASE')
    WHERE name = 'files';"
  check "collate: the edit did not take" bash -c "sqlite3 '$a/catalog.sqlite' .schema | grep -q 'COLLATE NOCASE'"
  every_reader collate "$a" "$hub" "table 'files' is not declared as the format declares it"
  # an index the format has, declared on other columns
  a="$T/ar-index"; cp -r "$ar" "$a"
  sqlite3 "$a/catalog.sqlite" "DROP INDEX files_key; CREATE INDEX files_key ON files(path)"
  every_reader index "$a" "$hub" "index 'files_key' is not declared as the format declares it"
  # the server refuses it at start too
  a="$T/ar-trigger"
  serve_get "$a" /api/models "$T/trigger.serve"
  check "trigger: zllm serve started anyway or hung (status $serve_rc)" [ "$serve_rc" -eq 1 ]
  check "trigger: zllm serve did not name the trigger" grep -q "trigger 'evil'" "$T/serve.log"
  # the untouched archive still reads
  run "$T/clean.verify" "$z" verify "$ar"
  check "clean archive: verify exited $rc" [ "$rc" -eq 0 ]
  ;;
# ---- 2. sizes in a catalog drive no allocation before they are checked ----------
catalog_sizes)
  base=alpha-labs/alpha-base
  fid=$(sqlite3 "$ar/catalog.sqlite" "SELECT f.id FROM files f JOIN repos r ON f.repo = r.id
    WHERE r.name = '$base' AND f.path = 'model.safetensors'")
  # a file whose size claims 2^62 bytes (one tensor's length grown to match):
  # the reader laid out one segment per 32 MiB part before any bound
  a="$T/ar-huge"; cp -r "$ar" "$a"
  sqlite3 "$a/catalog.sqlite" "UPDATE tensors SET len = len + (4611686018427387904 - (SELECT size FROM files
    WHERE id = $fid)) WHERE id = (SELECT min(id) FROM tensors WHERE file = $fid);
    UPDATE files SET size = 4611686018427387904 WHERE id = $fid"
  for cmd in restore verify; do
    args=("$a" --repo "$base" --out "$T/huge-rs"); [ $cmd = verify ] && args=("$a")
    run_capped 400 "$T/huge.$cmd" "$z" $cmd "${args[@]}"
    fails_cleanly "size 2^62: zllm $cmd" "$T/huge.$cmd" "length and shape disagree"
    check "size 2^62: zllm $cmd ran out of memory" bash -c "! grep -q 'out of memory' '$T/huge.$cmd'"
  done
  check "size 2^62: restore left out the other files" cmp -s "$T/huge-rs/$base/config.json" "$hub/$base/config.json"
  # one unauthenticated GET of it: the server answers, stays up and stops cleanly
  SERVE_CAP=400 serve_get "$a" "/$base/resolve/main/model.safetensors" "$T/huge.get"
  check "size 2^62: zllm serve did not stop cleanly after the GET (status $serve_rc)" [ "$serve_rc" -eq 0 ]
  check "size 2^62: zllm serve sent no status ($code)" [ "$code" != 000 ]
  check "size 2^62: zllm serve did not log the bad tensor" grep -q "length and shape disagree" "$T/serve.log"
  # a blob row pointing into a sparse hole of its pack: its record header is
  # checked before its length sizes anything
  a="$T/ar-hole"; cp -r "$ar" "$a"
  len=$(stat -c %s "$a/packs/pack-0000.zpk")
  truncate -s $((len + (1 << 30))) "$a/packs/pack-0000.zpk"
  blob=$(sqlite3 "$a/catalog.sqlite" "SELECT blob FROM parts WHERE tensor = (SELECT min(id) FROM tensors WHERE file = $fid)")
  sqlite3 "$a/catalog.sqlite" "UPDATE packs SET committed_len = $((len + (1 << 30)));
    UPDATE blobs SET offset = $((len + 4096)), len = $((100 << 20)) WHERE id = $blob"
  run_capped 400 "$T/hole.verify" "$z" verify "$a"
  fails_cleanly "sparse hole, 100 MiB: verify" "$T/hole.verify" "blob $blob: no blob record at offset $((len + 4096))"
  sqlite3 "$a/catalog.sqlite" "UPDATE blobs SET len = $(((1 << 30) - 8192)) WHERE id = $blob"
  run_capped 400 "$T/hole2.verify" "$z" verify "$a"
  fails_cleanly "sparse hole, 1 GiB: verify" "$T/hole2.verify" "blob $blob: offset or length outside the pack (or over the 134217728 bytes"
  run_capped 400 "$T/hole2.restore" "$z" restore "$a" --all --out "$T/hole-rs"
  fails_cleanly "sparse hole, 1 GiB: restore" "$T/hole2.restore" "blob $blob: offset or length outside the pack"
  check "sparse hole: restore left out the other files" cmp -s "$T/hole-rs/$base/README.md" "$hub/$base/README.md"
  # a base cycle (a solo tensor made a BitX of its own fine-tune): refused
  # from the catalog alone, before a level of part buffers is allocated
  a="$T/ar-cycle"; cp -r "$ar" "$a"
  read -r t1 t2 name <<<"$(sqlite3 -separator ' ' "$a/catalog.sqlite" "SELECT b.id, t.id, b.name FROM tensors t
    JOIN tensors b ON t.base = b.id WHERE t.method = 'bitx' ORDER BY t.id LIMIT 1")"
  sqlite3 "$a/catalog.sqlite" "UPDATE tensors SET method = 'bitx', base = $t2, depth = 1 WHERE id = $t1"
  run_capped 300 "$T/cycle.cat" "$z" cat-tensor "$a" --repo "$base" --tensor "$name"
  fails_cleanly "base cycle: cat-tensor" "$T/cycle.cat" "tensor $t1: base chain deeper than 8"
  run_capped 300 "$T/cycle.restore" "$z" restore "$a" --all --out "$T/cycle-rs"
  fails_cleanly "base cycle: restore" "$T/cycle.restore" "base chain deeper than 8"
  # a BF16<->F32 cast cycle: a BF16 cast stored as BitX against its F32
  # source, then the F32 tensor made a BitX of the cast (each level of a
  # cast decode holds more buffers than a plain one)
  xh="$T/casthub"
  python3 - "$xh" <<'PY'
import array, json, os, random, struct, sys
out = sys.argv[1]
random.seed(5)
f32 = array.array("f", (random.gauss(0, 0.02) for _ in range(256 * 256)))
def bf16(a):
    b = array.array("H")
    for u in array.array("I", a.tobytes()):
        b.append(((u + 0x7FFF + ((u >> 16) & 1)) >> 16) & 0xFFFF)
    return b
def write(repo, dtype, data, card=None):
    d = os.path.join(out, repo)
    os.makedirs(d)
    h = json.dumps({"w": {"dtype": dtype, "shape": [256, 256], "data_offsets": [0, len(data.tobytes())]}}).encode()
    h += b" " * (-len(h) % 8)
    open(os.path.join(d, "model.safetensors"), "wb").write(struct.pack("<Q", len(h)) + h + data.tobytes())
    if card:
        open(os.path.join(d, "README.md"), "w").write("---\nbase_model: %s\n---\n" % card)
write("org/f32", "F32", f32)
write("org/bf16", "BF16", bf16(f32), "org/f32")
PY
  run "$T/cast.pack" "$z" pack --hub "$xh" --out "$T/cast-ar" --bases-from-cards
  read -r tb tf <<<"$(sqlite3 -separator ' ' "$T/cast-ar/catalog.sqlite" "SELECT t.id, t.base FROM tensors t
    WHERE t.dtype = 'BF16' AND t.method = 'bitx'")"
  check "cast cycle: the BF16 cast was not stored as BitX against the F32 tensor ($tb $tf)" [ -n "$tf" ]
  sqlite3 "$T/cast-ar/catalog.sqlite" "UPDATE tensors SET method = 'bitx', base = $tb, depth = 2 WHERE id = $tf"
  run_capped 300 "$T/castcycle.cat" "$z" cat-tensor "$T/cast-ar" --repo org/bf16 --tensor w
  fails_cleanly "cast cycle: cat-tensor" "$T/castcycle.cat" "tensor $tb: base chain deeper than 8"
  ;;
# ---- 3. special files where regular files are expected -----------------------------
special_files)
  # fifo_at NAME PATH: an archive copy with a FIFO at PATH (relative to it)
  fifo_at() { local a="$T/ar-$1"; cp -r "$ar" "$a"; rm -f "$a/$2"; mkfifo "$a/$2"; echo "$a"; }
  a=$(fifo_at cat catalog.sqlite)
  every_reader fifo-catalog "$a" "$hub" "catalog.sqlite: not a regular file (a FIFO); refused"
  for side in wal journal shm; do
    a=$(fifo_at "$side" "catalog.sqlite-$side")
    every_reader "fifo-$side" "$a" "$hub" "catalog.sqlite-$side: not a regular file (a FIFO); refused"
  done
  a=$(fifo_at pack packs/pack-0000.zpk)
  every_reader fifo-pack "$a" "$hub" "packs/pack-0000.zpk: not a regular file (a FIFO); refused"
  # a socket in a pack file's place
  a="$T/ar-sock"; cp -r "$ar" "$a"; rm "$a/packs/pack-0000.zpk"
  python3 -c "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])" "$a/packs/pack-0000.zpk"
  run "$T/sock.verify" "$z" verify "$a"
  fails_cleanly "socket pack: verify" "$T/sock.verify" "packs/pack-0000.zpk: not a regular file (a socket); refused"
  # zllm serve with a FIFO pack or catalog: refused at start, named, not waited on
  for which in pack cat; do
    serve_get "$T/ar-$which" /alpha-labs/alpha-base/resolve/main/config.json "$T/fifo.get"
    check "FIFO $which: zllm serve exited $serve_rc (want 1: refused at start)" [ "$serve_rc" -eq 1 ]
    check "FIFO $which: zllm serve did not name the FIFO" grep -q "not a regular file (a FIFO); refused" "$T/serve.log"
  done
  # a snapshot's .zllm/metadata.jsonl as a FIFO, then as a sparse 900 MB file
  mkdir -p "$hub/.zllm"
  mkfifo "$hub/.zllm/metadata.jsonl"
  run "$T/meta-fifo.hub" "$z" hub "$hub"
  check "FIFO metadata.jsonl: zllm hub exited $rc (want 0: the listing goes on)" [ "$rc" -eq 0 ]
  check "FIFO metadata.jsonl: not named" grep -q "metadata.jsonl: not a regular file (a FIFO); refused" "$T/meta-fifo.hub"
  check "FIFO metadata.jsonl: the repos were not listed" grep -q "chatco/alpha-chat" "$T/meta-fifo.hub"
  rm "$hub/.zllm/metadata.jsonl"
  truncate -s 900M "$hub/.zllm/metadata.jsonl"
  run_capped 300 "$T/meta-sparse.hub" "$z" hub "$hub"
  check "sparse metadata.jsonl: zllm hub exited $rc under a 300 MiB cap (want 0)" [ "$rc" -eq 0 ]
  check "sparse metadata.jsonl: the long line was not named" grep -q "metadata.jsonl: line 1: longer than" "$T/meta-sparse.hub"
  rm -r "$hub/.zllm"
  ;;
# ---- 4. model cards cost what their size allows ------------------------------------
cards)
  ch="$T/cardhub"
  mkdir -p "$ch/alpha-labs"
  cp -r "$ZLLM_SRC/data/sample-hub/hub/alpha-labs/alpha-base" "$ch/alpha-labs/"
  # card NAME: a repo org/NAME whose README.md python3 writes from stdin
  card() { mkdir -p "$ch/org/$1"; echo '{"model_type": "llama"}' >"$ch/org/$1/config.json"; python3 - "$ch/org/$1/README.md"; }
  card flow <<'PY'      # 100,000 levels of flow nesting: hours inside libyaml's scanner
import sys; open(sys.argv[1], "w").write("---\na: " + "[" * 100000 + "]" * 100000 + "\n---\n")
PY
  card block <<'PY'     # 100,000 levels of compact block nesting
import sys; open(sys.argv[1], "w").write("---\na:\n  " + "- " * 100000 + "x\n---\n")
PY
  card alias <<'PY'     # a 100 KB scalar used 4,096 times: 410 MB when every use is copied
import sys; open(sys.argv[1], "w").write("---\na: &x \"" + "x" * 100000 + "\"\ntags: [" + ", ".join(["*x"] * 4096) + "]\n---\n")
PY
  card join <<'PY'      # 4,096 uses of a 200-byte alias in one joined field: within the budget, joined linearly
import sys; open(sys.argv[1], "w").write("---\nl: &l " + "L" * 200 + "\nlicense: [" + ", ".join(["*l"] * 4096) + "]\n---\n")
PY
  card events <<'PY'    # more than a million events in 1 MiB
import sys; open(sys.argv[1], "w").write("---\nw: [" + ",".join(["[]"] * 340000) + "]\n---\n")
PY
  card anchors <<'PY'   # 60,000 anchors, then 60,000 aliases of the first: each look-up scanned them all (20 s)
import sys; open(sys.argv[1], "w").write("---\nx: [" + ",".join("&%d v" % i for i in range(60000)) + "]\ny: [" + ",".join(["*0"] * 60000) + "]\n---\n")
PY
  card undefined <<'PY' # an alias of no anchor
import sys; open(sys.argv[1], "w").write("---\nbase_model: *nowhere\n---\n")
PY
  run_capped 300 "$T/cards.hub" "$z" hub "$ch"
  check "cards: zllm hub exited $rc (want 0: each repo goes on)" [ "$rc" -eq 0 ]
  for want in "org/flow/README.md: card-depth: more than 64 brackets open at once" \
              "org/block/README.md: card-depth: nested deeper than 64 levels" \
              "org/alias/README.md: card-budget: the fields zllm reads ('tags' so far) hold more than 1048576 bytes" \
              "org/events/README.md: card-budget: more than 200000 YAML events" \
              "org/undefined/README.md: yaml: line 2: found undefined alias" \
              "org/anchors/README.md: card-budget: more than 4096 anchors"; do
    check "cards: zllm hub did not say '$want'" grep -qF "$want" "$T/cards.hub"
  done
  check "cards: every repo listed" [ "$(grep -c '^org/' "$T/cards.hub")" -eq 7 ]
  joined=$(python3 -c "print(','.join(['L' * 200] * 4096)[:4000])")  # zllm hub prints the first 4 KiB
  check "cards: the joined license is not the 4,096 uses" grep -qF "  license       $joined" "$T/cards.hub"
  # pack reads the same cards: the repos are stored, a card's problem recorded
  run_capped 400 "$T/cards.pack" "$z" pack --hub "$ch" --out "$T/cards-ar" --bases-from-cards
  check "cards: zllm pack exited $rc (want 0)" [ "$rc" -eq 0 ]
  run "$T/cards.restore" "$z" restore "$T/cards-ar" --repo org/flow --out "$T/cards-rs"
  check "cards: a repo with a refused card was not stored" cmp -s "$T/cards-rs/org/flow/README.md" "$ch/org/flow/README.md"
  ;;
# ---- 5. names that are not UTF-8 ----------------------------------------------------
names)
  is_utf8() { python3 -c "import sys; open(sys.argv[1], 'rb').read().decode('utf-8')" "$1"; }
  nh="$T/namehub"; cp -r "$hub" "$nh"
  ft="$nh/chatco/alpha-chat"
  printf 'bad' >"$ft/x$(printf '\377')y.txt"                  # a stray byte
  printf 'overlong' >"$ft/o$(printf '\300\257').txt"          # an overlong '/'
  printf 'surrogate' >"$ft/s$(printf '\355\240\200').txt"    # U+D800
  printf 'fine' >"$ft/caf$(printf '\303\251').txt"            # é: UTF-8, kept
  run "$T/names.pack" "$z" pack --hub "$nh" --out "$T/names-ar"
  check "names: pack exited $rc (want 0: the rest of the repo goes on)" [ "$rc" -eq 0 ]
  for want in "x\\xffy.txt' is not UTF-8 (byte 0xff at offset 1)" "o\\xc0\\xaf.txt' is not UTF-8" \
              "s\\xed\\xa0\\x80.txt' is not UTF-8"; do
    check "names: pack did not name '$want'" grep -qF "$want" "$T/names.pack"
  done
  check "names: pack's messages are not UTF-8" is_utf8 "$T/names.pack"
  run "$T/names.ls" "$z" ls "$T/names-ar"
  check "names: zllm ls printed bytes that are not UTF-8" is_utf8 "$T/names.ls"
  check "names: zllm ls did not list the skipped name escaped" grep -qF 'x\xffy.txt	3	0	skipped' "$T/names.ls"
  run "$T/names.restore" "$z" restore "$T/names-ar" --all --out "$T/names-rs"
  check "names: restore exited $rc" [ "$rc" -eq 0 ]
  check "names: the UTF-8 name was not restored" cmp -s "$T/names-rs/chatco/alpha-chat/caf$(printf '\303\251').txt" \
    "$ft/caf$(printf '\303\251').txt"
  # an archive from elsewhere (or packed before the rule) holding such a name:
  # zllm serve leaves the file out of every listing and names it in its log;
  # the crawl of it mirrors the rest, byte for byte
  a="$T/names-old"; cp -r "$ar" "$a"
  sqlite3 "$a/catalog.sqlite" "UPDATE files SET path = CAST(X'7265ff2e6d64' AS TEXT)
    WHERE path = 'README.md' AND repo = (SELECT id FROM repos WHERE name = 'chatco/alpha-chat')"
  : >"$T/serve.log"
  "$z" serve "$a" --listen 127.0.0.1:0 2>"$T/serve.log" &
  spid=$!
  for _ in $(seq 100); do grep -q "HF_ENDPOINT=" "$T/serve.log" && break; sleep 0.1; done
  url=$(grep -o 'HF_ENDPOINT=http://127.0.0.1:[0-9]*' "$T/serve.log" | cut -d= -f2)
  curl -s -m 10 "$url/api/models/chatco/alpha-chat" >"$T/names.info"
  curl -s -m 10 "$url/api/models/chatco/alpha-chat/tree/main?recursive=true" >"$T/names.tree"
  curl -s -m 10 -X POST -d 'paths=config.json&paths=model.safetensors' \
    "$url/api/models/chatco/alpha-chat/paths-info/main" >"$T/names.paths"
  check "names: info siblings are not all named" python3 -c "import json,sys; s=json.load(open(sys.argv[1]))['siblings']
assert s and all(isinstance(e.get('rfilename'), str) for e in s), s" "$T/names.info"
  check "names: a tree entry has no path" python3 -c "import json,sys; t=json.load(open(sys.argv[1]))
assert t and all(isinstance(e.get('path'), str) for e in t), t" "$T/names.tree"
  check "names: paths-info entries have no path" python3 -c "import json,sys; t=json.load(open(sys.argv[1]))
assert len(t) == 2 and all(isinstance(e.get('path'), str) for e in t), t" "$T/names.paths"
  run "$T/names.crawl" "$z" crawl --endpoint "$url" --out "$T/names-crawl" --quiet
  check "names: crawl of the server exited $rc" [ "$rc" -eq 0 ]
  check "names: the crawl did not mirror the other files" cmp -s "$T/names-crawl/chatco/alpha-chat/model.safetensors" \
    "$hub/chatco/alpha-chat/model.safetensors"
  kill -TERM "$spid"; wait "$spid" || true
  check "names: zllm serve did not name the left-out file" grep -qF "re\xff.md' is not UTF-8" "$T/serve.log"
  check "names: zllm serve's log is not UTF-8" is_utf8 "$T/serve.log"
  run "$T/names-old.restore" "$z" restore "$a" --all --out "$T/names-old-rs"
  fails_cleanly "names: restore of the old archive" "$T/names-old.restore" "re\\xff.md' is not UTF-8"
  check "names: restore left out the other files" cmp -s "$T/names-old-rs/chatco/alpha-chat/model.safetensors" \
    "$hub/chatco/alpha-chat/model.safetensors"
  ;;
# ---- 6. serve's work follows the page, not the repo's folders ----------------------
serve_work)
  # 1,000 files in 30,000 folders: each tree or paths-info request rebuilt
  # every folder's id with linear scans (8-25 s of CPU a request)
  wh="$T/widehub"
  python3 - "$wh/org/deep" <<'PY'
import os, sys
root = sys.argv[1]
for i in range(1000):
    d = os.path.join(root, *["d%d_%d" % (i, k) for k in range(30)])
    os.makedirs(d)
    with open(os.path.join(d, "f.txt"), "w") as f:
        f.write("file %d\n" % i)
with open(os.path.join(root, "config.json"), "w") as f:
    f.write('{"model_type": "llama"}\n')
PY
  run "$T/wide.pack" "$z" pack --hub "$wh" --out "$T/wide-ar"
  check "wide: pack exited $rc ($(tail -1 "$T/wide.pack"))" [ "$rc" -eq 0 ]
  : >"$T/serve.log"
  "$z" serve "$T/wide-ar" --listen 127.0.0.1:0 --page-size 100 --quiet 2>"$T/serve.log" &
  spid=$!
  for _ in $(seq 100); do grep -q "HF_ENDPOINT=" "$T/serve.log" && break; sleep 0.1; done
  url=$(grep -o 'HF_ENDPOINT=http://127.0.0.1:[0-9]*' "$T/serve.log" | cut -d= -f2)
  # 300 requests, each under the same bound (60 s for all of them)
  cat >"$T/wide.py" <<'PY'
import json, sys, urllib.request
url = sys.argv[1] + "/api/models/org/deep"
def get(u, data=None):
    with urllib.request.urlopen(urllib.request.Request(u, data=data), timeout=30) as r:
        return r.status, json.loads(r.read()), r.headers.get("Link")
ids = {}
for i in range(100):
    st, page, link = get(url + "/tree/main")
    assert st == 200 and len(page) == 100 and link and "cursor=100" in link, (st, len(page), link)
    ids.update({e["path"]: e["oid"] for e in page})
for i in range(100):
    st, page, _ = get(url + "/tree/main/d%d_0/d%d_1?recursive=true" % (i, i))
    assert st == 200 and len(page) == 29 and page[-1]["path"].endswith("/f.txt"), (st, page[-1:])
    ids.update({e["path"]: e["oid"] for e in page})
for i in range(100):
    body = "&".join("paths=d%d_0/d%d_1/d%d_2" % (j, j, j) for j in range(i, i + 10)).encode()
    st, info, _ = get(url + "/paths-info/main", body)
    assert st == 200 and len(info) == 10 and all(e["type"] == "directory" for e in info), (st, info[:1])
    ids.update({e["path"]: e["oid"] for e in info})
# every id the server sent, for git to check
with open(sys.argv[2], "w") as f:
    for p, o in sorted(ids.items()):
        f.write("%s %s\n" % (o, p))
print("300 requests, %d ids" % len(ids))
PY
  run "$T/wide.requests" python3 "$T/wide.py" "$url" "$T/wide.ids"
  check "wide: 300 tree and paths-info requests did not all answer within the bound ($(tail -3 "$T/wide.requests"))" \
    [ "$rc" -eq 0 ]
  kill -TERM "$spid"; wait "$spid" || true
  # the ids are git's own: a git repository of the same files agrees
  if [ -s "$T/wide.ids" ]; then
    (cd "$wh/org/deep" && git init -q . && git add -A && tree=$(git write-tree) &&
     while read -r oid path; do echo "$(git rev-parse "$tree:$path") $path"; done <"$T/wide.ids") >"$T/wide.git"
    check "wide: a tree or blob id differs from git's ($(diff "$T/wide.ids" "$T/wide.git" | head -3))" \
      cmp -s "$T/wide.ids" "$T/wide.git"
    check "wide: too few ids were checked ($(wc -l <"$T/wide.ids"))" [ "$(wc -l <"$T/wide.ids")" -gt 3000 ]
  fi
  ;;
# ---- 7. deadlines, not just idle timeouts ---------------------------------------------
deadlines)
  # serve: 100 connections from 100 loopback addresses (a per-address limit
  # is no defence) each send one header byte a second; a real client must
  # still be answered, and the tricklers are ended by the server
  : >"$T/serve.log"
  "$z" serve "$ar" --listen 127.0.0.1:0 --request-timeout 3 --max-connections 64 2>"$T/serve.log" &
  spid=$!
  for _ in $(seq 100); do grep -q "HF_ENDPOINT=" "$T/serve.log" && break; sleep 0.1; done
  url=$(grep -o 'HF_ENDPOINT=http://127.0.0.1:[0-9]*' "$T/serve.log" | cut -d= -f2)
  cat >"$T/trickle.py" <<'PY'
import socket, sys, threading, time, urllib.request
url = sys.argv[1]
host, port = url.split("//")[1].split(":")
socks, lock = [], threading.Lock()
def open_one(i):
    s = socket.socket()
    s.settimeout(5)
    try:
        s.bind(("127.0.0.%d" % (2 + i), 0))
        s.connect((host, int(port)))
        s.sendall(b"GET /api/models HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        with lock:
            socks.append(s)
    except OSError:
        s.close()
threads = [threading.Thread(target=open_one, args=(i,)) for i in range(100)]
[t.start() for t in threads]
[t.join() for t in threads]
opened = len(socks)
# trickle one byte a second for 15 s; a socket the server ends is counted
ended = set()
def trickle():
    for _ in range(15):
        for s in list(socks):
            if s in ended:
                continue
            try:
                s.sendall(b"a")
                s.setblocking(False)
                try:
                    if s.recv(1) == b"":
                        ended.add(s)
                except BlockingIOError:
                    pass
                s.setblocking(True)
            except OSError:
                ended.add(s)
        time.sleep(1)
t = threading.Thread(target=trickle)
t.start()
time.sleep(1)
# a real client, while they trickle
with urllib.request.urlopen(url + "/api/models/chatco/alpha-chat", timeout=10) as r:
    body = r.read()
    real = r.status == 200 and b"alpha-chat" in body
t.join()
print("opened %d tricklers, %d ended by the server, real client %s" % (opened, len(ended), "served" if real else "NOT served"))
assert real, "the real client was not served"
assert opened >= 50, "too few tricklers got in"
assert len(ended) == opened, "the server did not end every trickler"
PY
  run "$T/trickle.out" python3 "$T/trickle.py" "$url"
  check "serve deadline: $(tail -2 "$T/trickle.out")" [ "$rc" -eq 0 ]
  kill -TERM "$spid"; wait "$spid" || true
  check "serve deadline: the log does not say why connections were ended" \
    grep -q "whose request was not in after 3 s" "$T/serve.log"
  # crawl: a listing page dripping 64 bytes every 30 ms (above the low-speed
  # limit, forever) and a file dripping the same way: each request is ended
  # at its deadline, retried, and the crawl completes
  dh="$T/driphub"; mkdir -p "$dh/org"
  cp -r "$ZLLM_SRC/data/sample-hub/hub/alpha-labs/alpha-base" "$dh/org/m"
  head -c 300000 /dev/urandom >"$dh/org/m/blob.dat"
  start_hub "$dh" --faults driplist,dripfile
  run "$T/drip.crawl" "$z" crawl --endpoint "$HS_URL" --out "$T/drip-out" --low-speed-time 2 --min-rate 1000000 --quiet
  stop_hub
  check "crawl deadline: the crawl exited $rc ($(tail -3 "$T/drip.crawl"))" [ "$rc" -eq 0 ]
  check "crawl deadline: blob.dat was not mirrored" cmp -s "$T/drip-out/org/m/blob.dat" "$dh/org/m/blob.dat"
  check "crawl deadline: no retry was counted ($(grep -o '[0-9]* retries' "$T/drip.crawl"))" \
    bash -c "! grep -q ' 0 retries' '$T/drip.crawl'"
  ;;
# ---- 8. smaller, same spirit -----------------------------------------------------------
small)
  sh="$T/smallhub"; mkdir -p "$sh/org"
  cp -r "$ZLLM_SRC/data/sample-hub/hub/alpha-labs/alpha-base" "$sh/org/m"
  # an API answer redirected to another origin is not followed
  start_hub "$sh" --faults offorigin
  run "$T/off.crawl" "$z" crawl --endpoint "$HS_URL" --out "$T/off-out" --quiet
  stop_hub
  check "redirect: the crawl exited $rc (want 1: the repo failed)" [ "$rc" -eq 1 ]
  check "redirect: not named ($(grep -m1 -i redirect "$T/off.crawl" || true))" \
    grep -q "an API answer redirected to another origin (http://127.0.0.2:[0-9]*/api/models/org/m): not followed" "$T/off.crawl"
  # a tree entry under .zllm/ is named and not fetched
  start_hub "$sh" --faults dotzllm
  run "$T/dot.crawl" "$z" crawl --endpoint "$HS_URL" --out "$T/dot-out" --quiet
  stop_hub
  check "dotzllm: the crawl did not name the entry" \
    grep -q "org/m: tree: .zllm/verified.tsv: .zllm/ is reserved for the snapshot's own state; not fetched" "$T/dot.crawl"
  check "dotzllm: the crawl wrote it" [ ! -e "$T/dot-out/org/m/.zllm/verified.tsv" ]
  check "dotzllm: the rest was not mirrored" cmp -s "$T/dot-out/org/m/model.safetensors" "$sh/org/m/model.safetensors"
  # a file of size -1 is not advertised; config.json%00.txt is not config.json
  a="$T/ar-neg"; cp -r "$ar" "$a"
  sqlite3 "$a/catalog.sqlite" "UPDATE files SET size = -1 WHERE path = 'README.md'
    AND repo = (SELECT id FROM repos WHERE name = 'alpha-labs/alpha-base')"
  : >"$T/serve.log"
  "$z" serve "$a" --listen 127.0.0.1:0 2>"$T/serve.log" &
  spid=$!
  for _ in $(seq 100); do grep -q "HF_ENDPOINT=" "$T/serve.log" && break; sleep 0.1; done
  url=$(grep -o 'HF_ENDPOINT=http://127.0.0.1:[0-9]*' "$T/serve.log" | cut -d= -f2)
  neg=$(curl -s -o /dev/null -w '%{http_code}' -I "$url/alpha-labs/alpha-base/resolve/main/README.md")
  curl -s -D "$T/neg.h" -o /dev/null "$url/alpha-labs/alpha-base/resolve/main/README.md" || true
  nul=$(curl -s -o "$T/nul.body" -w '%{http_code}' "$url/alpha-labs/alpha-base/resolve/main/config.json%00.txt")
  curl -s "$url/api/models/alpha-labs/alpha-base/tree/main" >"$T/neg.tree"
  kill -TERM "$spid"; wait "$spid" || true
  check "size -1: HEAD answered $neg (want 404: the file is left out)" [ "$neg" = 404 ]
  check "size -1: advertised anyway" bash -c "! grep -qi 'X-Linked-Size: 18446744073709551615' '$T/neg.h'"
  check "size -1: listed in the tree" bash -c "! grep -q README.md '$T/neg.tree'"
  check "size -1: the server did not name it" grep -q "alpha-labs/alpha-base: file [0-9]* has a negative size" "$T/serve.log"
  check "%00: answered $nul (want 400)" [ "$nul" = 400 ]
  # refs/main naming a snapshot outside the cache is a problem, not a silent fallback
  ch="$T/cachehub"; mkdir -p "$ch"
  cd "$ch"
  d=models--org--c; mkdir -p "$d/snapshots/1111111111111111111111111111111111111111" "$d/refs"
  cp "$ZLLM_SRC/data/sample-hub/hub/alpha-labs/alpha-base/config.json" "$d/snapshots/1111111111111111111111111111111111111111/"
  echo "../../../../etc" >"$d/refs/main"
  cd - >/dev/null
  run "$T/ref.hub" "$z" hub "$ch"
  check "refs/main outside: zllm hub exited $rc" [ "$rc" -eq 0 ]
  check "refs/main outside: no problem named ($(grep -m1 problem "$T/ref.hub" || true))" \
    grep -q "org/c: refs/main: '../../../../etc' is not a snapshot of this repo" "$T/ref.hub"
  ;;
# ---- the classes' checks that need ranks (zllm-survey under mpiexec) --------------------
ranks)
  # a snapshot's .zllm/metadata.jsonl as a FIFO: every rank of the survey goes on
  mkdir -p "$hub/.zllm"
  mkfifo "$hub/.zllm/metadata.jsonl"
  set +e
  timeout -k 5 "$bound" "${MPIEXEC:-mpiexec}" "${MPIEXEC_NUMPROC_FLAG:--n}" 2 --oversubscribe \
    "$ZLLM_BIN/zllm-survey" --hub "$hub" --out "$T/survey-fifo" --no-pack >"$T/survey-fifo.log" 2>&1
  rc=$?
  set -e
  check "FIFO metadata.jsonl: zllm-survey on 2 ranks exited $rc (want 0)" [ "$rc" -eq 0 ]
  check "FIFO metadata.jsonl: the survey did not name it" \
    grep -q "metadata.jsonl: not a regular file (a FIFO); refused" "$T/survey-fifo.log"
  rm -r "$hub/.zllm"
  # a rank that fails says why, not only rank 0's "another rank could not pack its share"
  set +e
  ZLLM_TEST_FAIL_SHARE=1 timeout -k 5 "$bound" "${MPIEXEC:-mpiexec}" "${MPIEXEC_NUMPROC_FLAG:--n}" 2 --oversubscribe \
    "$ZLLM_BIN/zllm-survey" --hub "$hub" --out "$T/rankfail" >"$T/rankfail.log" 2>&1
  rc=$?
  set -e
  check "failing rank: the survey exited $rc (want 1)" [ "$rc" -eq 1 ]
  check "failing rank: rank 1 did not say why ($(grep -m2 -i 'share' "$T/rankfail.log" | tr '\n' ' '))" \
    grep -q "rank 1 could not pack its share: ZLLM_TEST_FAIL_SHARE" "$T/rankfail.log"
  ;;
esac
finish
