#!/usr/bin/env python3
"""A Hugging Face Hub look-alike for tests: serves a plain-layout snapshot
(ROOT/<org>/<name>/<files>) with the Hub's URL shapes and JSON, on 127.0.0.1.

  hubserver.py --root DIR [--port 0] [--port-file F] [--page-size N] [--token T]
               [--faults a,b,...] [--log F] [--quota api=N,resolvers=M,pages=K,window=S]
               [--lie zero|huge|garbage] [--synthetic N [--seed S]] [--page-log F]

Endpoints (as the Hub serves them):
  GET /api/models?author=&search=&filter=&limit=&cursor=   JSON array, Link: <...>; rel="next"
  GET /api/models/{org}/{name}[/revision/{rev}]             model info (sha, createdAt, cardData, ...)
  GET /api/models/{org}/{name}/tree/{rev}?recursive=true    entries with size, oid, lfs {oid, size}
  GET /{org}/{name}/resolve/{rev}/{path}                    the file; LFS files redirect (302) to /cdn/
  GET /cdn/{sha256}                                          LFS bytes, Range supported
  GET /_stats                                                bytes of file bodies sent, requests

Faults (each on from the start; transient ones hit the first request of a URL):
  429       the first request of every API and resolve URL: 429 with Retry-After: 1
  500       the first request of every file download: 500
  reset     the first download of every file: half the body, then the connection is reset
  slow      file bodies in 8 KiB pieces with 1 ms pauses
  shortbody the first download of every file declares more bytes than it sends
  badsha    the first safetensors file of the first repo is listed with a wrong sha256
  malicious the first repo's tree also lists "../escape.txt" and "/etc/evil"
  badjson   the second page of /api/models is not JSON
  loop      the first repo's README.md redirects to itself forever
Hostile servers (each bounded: the server stops sending by itself):
  endless0  the first repo's README.md is listed with size 0 and served without end (close-delimited)
  endless404 the first repo's config.json is a 404 whose body never ends
  trickle   the first download of the first repo's config.json sends 2 bytes a second
  selfnext  every /api/models page's "next" link is the page itself, and so is the first repo's tree page's
  driplist  the first /api/models page drips 64 bytes every 30 ms, without end (above any low-speed limit)
  dripfile  the first download of every file drips 64 bytes every 30 ms (~2 KB/s, above the low-speed limit)
  offorigin every /api/models/{id} info answers 307 to the same path on another origin (127.0.0.2)
  dotzllm   the first repo's tree also lists ".zllm/verified.tsv" (the snapshot's own state)
With --token, /api and /resolve need "Authorization: Bearer T" (401 otherwise).
Rate limits (--quota) as the Hub enforces them: fixed windows of S seconds (default 300) from the
server's start, a count per class (api: /api/..., resolvers: /{repo}/resolve/..., pages: the
rest; /cdn/ and /_stats are not counted); every counted answer carries
  RateLimit: "CLASS";r=REMAINING;t=SECONDS_TO_RESET
  RateLimit-Policy: "fixed window";"CLASS";q=QUOTA;w=S
and a request past its class's quota gets 429 (with Retry-After).  --lie makes the RateLimit
field lie while the quota is still enforced: zero (r=0, t=1 always), huge (r=10^9, t=0), garbage
(unparsable values), silent (no RateLimit fields at all: the client must be told the quota).  /_stats counts the 429s given, the most requests of one class in a window, and the requests answered (not 429) in each window by
its number from the server's start (answered_per_window: how much of the quota a client used).
--synthetic N plays a hub of N generated repos instead of ROOT's (seeded, --seed S: the same
hub every time, nothing held per repo): /api/models pages them in createdAt order with an opaque
cursor and the expand[] fields the Hub gives (sha, createdAt, lastModified, library_name,
pipeline_tag, baseModels, safetensors, gated, siblings, downloads, likes; `limit` is the page
size, at most 1,000); each repo also has info, a tree and files (config.json, a small
model.safetensors) for crawls of selected repos.  --page-log F appends the cursor of every listing
page whose body was sent in full.  Census faults: loopback (page 3's next link is page 1 again),
hostilecensus (every 7th repo of the first pages has a hostile field: a bad id, a huge or malformed
baseModels, parameters or siblings, a tag with control characters).
Python's standard library only (Debian's python3)."""
import argparse
import hashlib
import json
import os
import socket
import struct
import sys
import threading
import time
import urllib.parse
from array import array
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import synthhub  # noqa: E402

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".onnx", ".gguf", ".h5", ".msgpack", ".ckpt")


def card_base_models(path):
    """base_model from a README's front matter (a string or a list), or []."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().split("\n")
    except OSError:
        return []
    if not lines or lines[0].strip() != "---":
        return []
    out, in_list = [], False
    for line in lines[1:]:
        if line.strip() in ("---", "..."):
            break
        if line.startswith("base_model:"):
            value = line.split(":", 1)[1].strip()
            if value:
                out.append(value.strip("'\""))
            else:
                in_list = True
            continue
        if in_list and line.lstrip().startswith("- "):
            out.append(line.lstrip()[2:].strip().strip("'\""))
        elif in_list:
            in_list = False
    return out


def safetensors_params(path):
    params = {}
    try:
        with open(path, "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(n))
    except (OSError, ValueError, struct.error):
        return params
    for name, t in header.items():
        if name == "__metadata__" or not isinstance(t, dict):
            continue
        count = 1
        for d in t.get("shape", []):
            count *= d
        params[t.get("dtype", "?")] = params.get(t.get("dtype", "?"), 0) + count
    return params


class Repo:
    def __init__(self, rid, root, index):
        self.id = rid
        self.dir = os.path.join(root, rid)
        self.files = []
        for base, dirs, files in os.walk(self.dir):
            dirs.sort()
            for fn in sorted(files):
                full = os.path.join(base, fn)
                rel = os.path.relpath(full, self.dir).replace(os.sep, "/")
                data = open(full, "rb").read()
                self.files.append({
                    "path": rel, "full": full, "size": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "oid": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest(),
                    "lfs": rel.endswith(LFS_SUFFIXES),
                })
        self.files.sort(key=lambda f: f["path"])
        digest = hashlib.sha1(rid.encode())
        for f in self.files:
            digest.update(f["oid"].encode())
        self.sha = digest.hexdigest()
        day = 45 * index  # spread over quarters, deterministically
        t = time.gmtime(1640995200 + day * 86400)  # 2022-01-01
        self.created = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", t)
        self.downloads = 1000 - 10 * index
        self.base_models = card_base_models(os.path.join(self.dir, "README.md"))
        self.params = {}
        for f in self.files:
            if f["path"].endswith(".safetensors"):
                for k, v in safetensors_params(f["full"]).items():
                    self.params[k] = self.params.get(k, 0) + v
        self.tags = sorted({"safetensors" for f in self.files if f["path"].endswith(".safetensors")} |
                           ({"base_model:" + b for b in self.base_models}))


class SynthRepo:
    """A generated repo with the fields Repo has (hubserver.py --synthetic)."""
    def __init__(self, synth, i):
        f = synth.facts(i)
        self.index, self.id, self.sha = i, f["id"], f["sha"]
        self.files = synth.repo_files(i)
        self.created = synth.iso(f["created"])
        self.downloads = f["downloads"]
        self.base_models = [synth.repo_id(f["base"][1])] if f["base"] else []
        self.params = f["params"] or {}
        self.tags = synth.field(i, f, "tags")


class Listing:
    """The generated listing written once to DIR (one JSON row per line, census expand fields)
    and served from there: a 3,000,000-repo look-alike then answers a 1,000-row page in about
    a millisecond instead of the tens of milliseconds generating it takes in Python."""
    EXPAND = ["sha", "createdAt", "lastModified", "library_name", "pipeline_tag", "baseModels",
              "safetensors", "gated", "siblings", "downloads", "likes"]

    def __init__(self, cache_dir, synth):
        os.makedirs(cache_dir, exist_ok=True)
        stem = os.path.join(cache_dir, "listing-%d-%d" % (synth.n, synth.seed))
        if not os.path.exists(stem + ".offsets"):
            self.build(stem, synth)
        self.offsets = array("Q")
        with open(stem + ".offsets", "rb") as f:
            self.offsets.frombytes(f.read())
        self.f = open(stem + ".jsonl", "rb")
        self.lock = threading.Lock()

    def build(self, stem, synth):
        offsets, pos = array("Q", [0]), 0
        with open(stem + ".jsonl.tmp", "wb") as out:
            for start in range(0, synth.n, 1000):
                chunk = "".join(synth.row_json(i, self.EXPAND) + "\n"
                                for i in range(start, min(start + 1000, synth.n))).encode()
                for line in chunk.splitlines(keepends=True):
                    pos += len(line)
                    offsets.append(pos)
                out.write(chunk)
        with open(stem + ".offsets.tmp", "wb") as f:
            offsets.tofile(f)
        os.rename(stem + ".jsonl.tmp", stem + ".jsonl")
        os.rename(stem + ".offsets.tmp", stem + ".offsets")

    def covers(self, expand):
        return sorted(expand) == sorted(self.EXPAND)

    def page(self, start, count):
        lo, hi = self.offsets[start], self.offsets[start + count]
        with self.lock:
            self.f.seek(lo)
            data = self.f.read(hi - lo)
        return b"[" + data.rstrip(b"\n").replace(b"\n", b",") + b"]"


class Hub:
    def __init__(self, args):
        self.args = args
        self.faults = set(filter(None, (args.faults or "").split(",")))
        self.repos = []
        self.synth = synthhub.SynthHub(args.synthetic, args.seed) if args.synthetic else None
        self.listing = Listing(args.listing_cache, self.synth) if self.synth and args.listing_cache else None
        for org in sorted(os.listdir(args.root)) if not self.synth else []:
            od = os.path.join(args.root, org)
            if org.startswith(".") or not os.path.isdir(od):
                continue
            for name in sorted(os.listdir(od)):
                if os.path.isdir(os.path.join(od, name)) and not name.startswith("."):
                    self.repos.append(Repo(org + "/" + name, args.root, len(self.repos)))
        self.by_id = {r.id: r for r in self.repos}
        self.first = self.repos[0] if self.repos else None
        self.by_sha = {f["sha256"]: f for r in self.repos for f in r.files}
        self.seen = {}
        self.lock = threading.Lock()
        self.body_bytes = 0
        self.requests = 0
        self.quota = {}
        for item in filter(None, (args.quota or "").split(",")):
            k, _, v = item.partition("=")
            self.quota[k] = float(v) if k == "window" else int(v)
        self.t0 = time.monotonic()
        self.window_counts = {}
        self.throttled = 0
        self.peak = {}
        if "badsha" in self.faults and self.repos:
            for f in self.repos[0].files:
                if f["path"].endswith(".safetensors"):
                    f["listed_sha256"] = "0" * 64
                    break

    def count(self, cls):
        """Counts a request of class `cls` in the current fixed window: (allowed, remaining, reset)."""
        q = self.quota.get(cls)
        if q is None:
            return True, None, None
        w = self.quota.get("window", 300)
        now = time.monotonic() - self.t0
        win = int(now // w)
        with self.lock:
            key = (cls, win)
            n = self.window_counts.get(key, 0) + 1
            self.window_counts[key] = n
            ok = n <= q
            if not ok:
                self.throttled += 1
            else:
                self.peak[cls] = max(self.peak.get(cls, 0), n)
        return ok, max(q - n, 0), max((win + 1) * w - now, 0)

    def repo(self, rid):
        if not self.synth:
            return self.by_id.get(rid)
        i = self.synth.index_of(rid)
        return SynthRepo(self.synth, i) if i is not None else None

    def first_time(self, key):
        with self.lock:
            n = self.seen.get(key, 0)
            self.seen[key] = n + 1
            return n == 0


HOSTILE_BYTES = 256 << 20  # an "endless" file body stops here
HOSTILE_SECONDS = 120       # and a trickle after this long


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hubserver/1"

    def setup(self):
        super().setup()
        # headers and body go out in separate writes: without this, Nagle and the
        # client's delayed ACK add ~40 ms to every request on a kept-alive connection
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def end_headers(self):
        rl = getattr(self, "rate_headers", None)
        if rl:
            for k, v in rl.items():
                self.send_header(k, v)
        super().end_headers()

    def rate_limited(self, cls):
        """Counts this request; False (after answering 429) when it passes the quota."""
        hub = self.server.hub
        self.rate_headers = None
        ok, left, reset = hub.count(cls)
        if left is None:
            return True
        w = hub.quota.get("window", 300)
        lie = hub.args.lie
        r, t = ("0", "1") if lie == "zero" else ("1000000000", "0") if lie == "huge" else \
            ("x1", "-5e999") if lie == "garbage" else (str(left), str(int(-(-reset // 1))))
        self.rate_headers = {"RateLimit": '"%s";r=%s;t=%s' % (cls, r, t),
                             "RateLimit-Policy": '"fixed window";"%s";q=%d;w=%d' % (cls, hub.quota[cls], w)}
        if lie == "silent":
            self.rate_headers = None
        if not ok:
            self.send_error_json(429, "Too Many Requests", {"Retry-After": str(int(-(-reset // 1)) or 1)})
            return False
        return True

    def log_message(self, fmt, *a):
        if self.server.hub.args.log:
            with open(self.server.hub.args.log, "a") as f:
                f.write("%s auth=%s %s\n" % (time.strftime("%H:%M:%S"), "yes" if self.headers.get(
                    "Authorization") else "no", fmt % a))

    # ---- helpers --------------------------------------------------------------
    def send_json(self, obj, status=200, headers=None, raw=None):
        body = raw if raw is not None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def send_error_json(self, status, msg, headers=None):
        self.send_json({"error": msg}, status, headers)

    def base_url(self):
        return "http://127.0.0.1:%d" % self.server.server_address[1]

    def transient(self, fault, key):
        hub = self.server.hub
        return fault in hub.faults and hub.first_time(fault + " " + key)

    def authorized(self):
        token = self.server.hub.args.token
        if token and self.headers.get("Authorization") != "Bearer " + token:
            self.send_error_json(401, "Invalid credentials in Authorization header")
            return False
        return True

    def send_endless(self, status, max_bytes):
        """A body without Content-Length that goes on until the client leaves
        (or max_bytes, or HOSTILE_SECONDS)."""
        self.send_response(status)
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        chunk, sent, t0 = b"z" * 65536, 0, time.time()
        try:
            while sent < max_bytes and time.time() - t0 < HOSTILE_SECONDS:
                self.wfile.write(chunk)
                sent += len(chunk)
        except OSError:
            pass

    def send_drip(self, status, data, length=None):
        """`data` in 64-byte drops every 30 ms: about 2 KB/s, never slow enough
        for a low-speed limit of 1 KB/s; after the data, more of the same
        without end when `length` is None (close-delimited), within
        HOSTILE_SECONDS."""
        self.send_response(status)
        if length is not None:
            self.send_header("Content-Length", str(length))
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        t0, i = time.time(), 0
        try:
            while time.time() - t0 < HOSTILE_SECONDS and (length is None or i < len(data)):
                drop = data[i:i + 64] if i < len(data) else b" " * 64
                self.wfile.write(drop)
                self.wfile.flush()
                i += 64
                time.sleep(0.03)
        except OSError:
            pass

    def send_trickle(self, f):
        data = f["data"] if "data" in f else open(f["full"], "rb").read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        t0 = time.time()
        try:
            for i in range(0, len(data), 2):
                if time.time() - t0 > HOSTILE_SECONDS:
                    break
                self.wfile.write(data[i:i + 2])
                self.wfile.flush()
                time.sleep(1)
        except OSError:
            pass
        self.close_connection = True

    # ---- routing ----------------------------------------------------------------
    def do_GET(self):
        hub = self.server.hub
        with hub.lock:
            hub.requests += 1
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        parts = [urllib.parse.unquote(p) for p in url.path.split("/")[1:]]
        self.rate_headers = None
        if url.path == "/_stats":
            with hub.lock:
                windows = {}
                for (cls, win), n in hub.window_counts.items():
                    windows.setdefault(cls, {})[win] = min(n, hub.quota.get(cls, n))
            return self.send_json({"body_bytes": hub.body_bytes, "requests": hub.requests,
                                   "throttled": hub.throttled, "peak_per_window": hub.peak,
                                   "answered_per_window": {c: {str(i): w[i] for i in sorted(w)} for c, w in windows.items()}})
        if parts[:1] == ["cdn"] and len(parts) == 2:
            return self.serve_cdn(parts[1])
        cls = "api" if parts[:1] == ["api"] else "resolvers" if len(parts) >= 4 and parts[2] == "resolve" else "pages"
        if not self.rate_limited(cls):
            return
        if not self.authorized():
            return
        if parts[:1] == ["api"] or len(parts) >= 4 and parts[2] == "resolve":
            if self.transient("429", self.path):
                return self.send_error_json(429, "Too Many Requests", {"Retry-After": "1"})
        if parts[:2] == ["api", "models"]:
            if len(parts) == 2:
                return self.list_models(q)
            rid = "/".join(parts[2:4])
            repo = hub.repo(rid)
            if not repo:
                return self.send_error_json(404, "Repository not found")
            if len(parts) == 4 or (len(parts) == 6 and parts[4] == "revision"):
                if "offorigin" in hub.faults:
                    self.send_response(307)
                    self.send_header("Location", "http://127.0.0.2:%d%s" % (self.server.server_address[1], self.path))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                return self.model_info(repo)
            if len(parts) >= 6 and parts[4] == "tree":
                return self.tree(repo, parts[5], "/".join(parts[6:]), q)
        if len(parts) >= 5 and parts[2] == "resolve":
            repo = hub.repo("/".join(parts[:2]))
            if repo:
                return self.resolve(repo, parts[3], "/".join(parts[4:]))
        self.send_error_json(404, "Not found")

    def list_models(self, q):
        hub = self.server.hub
        if hub.synth:
            return self.list_synthetic()
        rows = [r for r in hub.repos
                if (not q.get("author") or r.id.split("/")[0] == q["author"])
                and (not q.get("search") or q["search"].lower() in r.id.lower())
                and (not q.get("filter") or q["filter"] in r.tags)]
        limit = int(q.get("limit", "0") or 0)
        if limit > 0:
            rows = rows[:limit]
        start = int(q.get("cursor", "0") or 0)
        if start == 0 and self.transient("driplist", "list"):
            return self.send_drip(200, b'[{"id": "org/', None)
        if "badjson" in hub.faults and start > 0:
            return self.send_json(None, raw=b'[{"id": "broken", ')
        page = rows[start:start + hub.args.page_size]
        headers = {}
        if start + hub.args.page_size < len(rows):
            nq = dict(q, cursor=str(start + hub.args.page_size))
            headers["Link"] = '<%s/api/models?%s>; rel="next"' % (self.base_url(), urllib.parse.urlencode(nq))
        if "selfnext" in hub.faults:
            headers["Link"] = '<%s%s>; rel="next"' % (self.base_url(), self.path)
        out = [{"_id": r.sha[:24], "id": r.id, "modelId": r.id, "likes": 0, "downloads": r.downloads,
                "tags": r.tags, "createdAt": r.created, "private": False} for r in page]
        self.send_json(out, headers=headers)

    def list_synthetic(self):
        """A page of the generated hub: `limit` rows (default --page-size, at most 1,000) from the
        cursor, the expand[] fields asked (`expand` with `full` or `config` is a 400, as on the Hub)."""
        hub = self.server.hub
        qs = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        expand = qs.get("expand[]", []) + qs.get("expand", [])
        if expand and ("full" in qs or "config" in qs or "cardData" in qs):
            return self.send_error_json(400, "expand cannot be combined with full, config or cardData")
        size = min(int((qs.get("limit") or ["0"])[0] or 0) or hub.args.page_size, 1000)
        cursor = (qs.get("cursor") or [""])[0]
        start = synthhub.start_of(cursor) if cursor else 0
        if start is None or start > hub.synth.n:
            return self.send_error_json(400, "Invalid cursor")
        end = min(start + size, hub.synth.n)
        headers = {}
        if end < hub.synth.n:
            nxt = end
            if "loopback" in hub.faults and start == 2 * size:
                nxt = 0
            nq = [(k, v) for k, vs in qs.items() if k != "cursor" for v in vs] + [("cursor", synthhub.cursor_of(nxt))]
            headers["Link"] = '<%s/api/models?%s>; rel="next"' % (self.base_url(), urllib.parse.urlencode(nq))
        if hub.listing and hub.listing.covers(expand) and "hostilecensus" not in hub.faults:
            body = hub.listing.page(start, end - start)
        else:
            rows = [hub.synth.row_json(i, expand) for i in range(start, end)]
            if "hostilecensus" in hub.faults:
                rows = [json.dumps(synthhub.hostile_row(hub.synth.row(i, expand), i)) if i % 7 == 3 and i < 20000
                        else r for i, r in zip(range(start, end), rows)]
            body = ("[" + ",".join(rows) + "]").encode()
        self.send_json(None, headers=headers, raw=body)
        if hub.args.page_log:
            with hub.lock, open(hub.args.page_log, "a") as f:
                f.write("%d\n" % start)

    def model_info(self, repo):
        params = repo.params
        info = {"_id": repo.sha[:24], "id": repo.id, "modelId": repo.id, "sha": repo.sha,
                "createdAt": repo.created, "lastModified": repo.created, "downloads": repo.downloads,
                "likes": 0, "private": False, "gated": False, "tags": repo.tags,
                "siblings": [{"rfilename": f["path"]} for f in repo.files],
                "cardData": {"base_model": repo.base_models[0] if len(repo.base_models) == 1 else
                             repo.base_models} if repo.base_models else {}}
        if params:
            info["safetensors"] = {"parameters": params, "total": sum(params.values())}
        self.send_json(info)

    def tree(self, repo, rev, sub, q):
        hub = self.server.hub
        if rev not in (repo.sha, "main"):
            return self.send_error_json(404, "Revision not found")
        entries, dirs = [], set()
        for f in repo.files:
            if sub and not f["path"].startswith(sub + "/"):
                continue
            segs = f["path"].split("/")
            for i in range(1, len(segs)):
                d = "/".join(segs[:i])
                if d not in dirs:
                    dirs.add(d)
                    entries.append({"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0,
                                    "path": d})
            e = {"type": "file", "oid": f["oid"], "size": f["size"], "path": f["path"]}
            if "endless0" in hub.faults and repo is hub.first and f["path"] == "README.md":
                e["size"] = 0
            if f["lfs"]:
                e["lfs"] = {"oid": f.get("listed_sha256", f["sha256"]), "size": f["size"], "pointerSize": 134}
            entries.append(e)
        if "dotzllm" in hub.faults and repo is hub.first:
            entries.append({"type": "file", "oid": "2" * 40, "size": 5, "path": ".zllm/verified.tsv"})
        if "malicious" in hub.faults and repo is hub.first:
            for p in ("../escape.txt", "/etc/evil"):
                entries.append({"type": "file", "oid": "1" * 40, "size": 5, "path": p})
        start = int(q.get("cursor", "0") or 0)
        size = 2 * hub.args.page_size
        headers = {}
        if start + size < len(entries):
            nq = dict(q, cursor=str(start + size))
            headers["Link"] = '<%s/api/models/%s/tree/%s?%s>; rel="next"' % (
                self.base_url(), repo.id, rev, urllib.parse.urlencode(nq))
        if "selfnext" in hub.faults and repo is hub.first:
            headers["Link"] = '<%s%s>; rel="next"' % (self.base_url(), self.path)
        self.send_json(entries[start:start + size], headers=headers)

    def resolve(self, repo, rev, path):
        hub = self.server.hub
        if rev not in (repo.sha, "main"):
            return self.send_error_json(404, "Revision not found")
        if "loop" in hub.faults and repo is hub.first and path == "README.md":
            self.send_response(302)
            self.send_header("Location", self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        first = repo is hub.first
        if "endless0" in hub.faults and first and path == "README.md":
            return self.send_endless(200, HOSTILE_BYTES)  # bounded: a client without a cap writes it to disk
        if "endless404" in hub.faults and first and path == "config.json":
            return self.send_endless(404, 1 << 62)  # bounded by time only: a client must end it
        f = next((x for x in repo.files if x["path"] == path), None)
        if not f:
            return self.send_error_json(404, "Entry not found")
        if first and path == "config.json" and self.transient("trickle", self.path):
            return self.send_trickle(f)
        common = {"X-Repo-Commit": repo.sha, "ETag": '"%s"' % f["oid"]}
        if f["lfs"]:
            self.send_response(302)
            self.send_header("Location", "%s/cdn/%s%s" % (self.base_url(), f["sha256"], "?repo=" + repo.id
                                                           if hub.synth else ""))
            self.send_header("X-Linked-Etag", '"%s"' % f["sha256"])
            self.send_header("X-Linked-Size", str(f["size"]))
            for k, v in common.items():
                self.send_header(k, v)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_file(f, common)

    def serve_cdn(self, sha):
        hub = self.server.hub
        f = hub.by_sha.get(sha)
        if hub.synth:  # /cdn/{sha256}?repo=ID: the generated repo's file with that hash
            q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
            repo = hub.repo(q.get("repo", ""))
            f = next((x for x in repo.files if x["sha256"] == sha), None) if repo else None
        if not f:
            return self.send_error_json(404, "Not found")
        self.send_file(f, {"ETag": '"%s"' % sha})

    def send_file(self, f, headers):
        hub = self.server.hub
        key = f["sha256"]
        if self.transient("500", key):
            return self.send_error_json(500, "Internal Error")
        data = f["data"] if "data" in f else open(f["full"], "rb").read()
        if self.transient("dripfile", key):
            return self.send_drip(200, data, len(data))
        lo, hi, status = 0, len(data) - 1, 200
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            a, _, b = rng[6:].partition("-")
            lo = int(a) if a else 0
            hi = min(int(b), len(data) - 1) if b else len(data) - 1
            if lo >= len(data) and len(data) > 0:
                self.send_response(416)
                self.send_header("Content-Range", "bytes */%d" % len(data))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        body = data[lo:hi + 1]
        reset = self.transient("reset", key) and len(body) > 1
        short = not reset and self.transient("shortbody", key) and len(body) > 1
        self.send_response(status)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(body) + (100 if short else 0)))
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (lo, hi, len(data)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if reset or short:
            body = body[:len(body) // 2]
        step = 8192 if "slow" in hub.faults else 1 << 20
        for i in range(0, len(body), step):
            self.wfile.write(body[i:i + step])
            with hub.lock:
                hub.body_bytes += len(body[i:i + step])
            if "slow" in hub.faults:
                time.sleep(0.001)
        if reset:
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
        elif short:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops SYNs when a crawler opens 8 connections at once

    def handle_error(self, request, client_address):
        pass  # a client killed mid-transfer (the resume test does it) is not the server's error


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--page-size", type=int, default=3)
    ap.add_argument("--token")
    ap.add_argument("--faults", default="")
    ap.add_argument("--log")
    ap.add_argument("--quota", default="")
    ap.add_argument("--lie", choices=["zero", "huge", "garbage", "silent"])
    ap.add_argument("--synthetic", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--listing-cache")
    ap.add_argument("--page-log")
    args = ap.parse_args()
    if not args.root and not args.synthetic:
        ap.error("--root or --synthetic is required")
    srv = Server(("127.0.0.1", args.port), Handler)
    srv.hub = Hub(args)
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % srv.server_address[1])
        os.rename(tmp, args.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
