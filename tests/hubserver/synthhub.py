"""A generated hub for hubserver.py --synthetic: N repos, each a pure
function of (seed, index), so a 3,000,000-repo listing needs no memory per
repo and is the same on every run.

Shape (loosely the real Hub's): one repo in 500 is a foundation model; about
60% of the others declare one (a finetune, adapter, quantization or merge of
an earlier foundation); libraries, pipeline tags and dtypes drawn from the
common ones; parameter counts log-uniform from 1 M to 70 B; creation dates
ascend with the index from 2022-03-01 over four years (the listing's sort)."""
import base64
import hashlib
import json
import struct

LIBRARIES = ["transformers", "transformers", "transformers", "peft", "diffusers", "gguf",
             "sentence-transformers", "timm", "mlx", None]
PIPELINES = ["text-generation", "text-generation", "text-generation", "text-classification",
             "text-to-image", "feature-extraction", "automatic-speech-recognition", None]
RELATIONS = ["finetune", "finetune", "adapter", "quantized", "merge"]
DTYPES = ["BF16", "BF16", "F16", "F32", "I8"]
GATED = [False] * 18 + ["auto", "manual"]
ORGS = 20000
FOUNDATION_EVERY = 500
T0 = 1646092800  # 2022-03-01T00:00:00Z
SPAN = 4 * 365 * 86400


def civil(z):
    """Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm)."""
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return y + (m <= 2), m, d


class SynthHub:
    def __init__(self, n, seed):
        self.n = n
        self.seed = seed
        self.key = hashlib.sha256(b"synthhub %d" % seed).digest()[:16]
        self.days = {}

    def bits(self, i):
        """256 bits that decide everything about repo i (one blake2b: fast enough to generate
        a 1,000-repo page in milliseconds)."""
        return hashlib.blake2b(struct.pack("<Q", i), digest_size=32, key=self.key).digest()

    def word(self, i, k):
        return struct.unpack_from("<Q", self.bits(i), 8 * k)[0]

    def repo_id(self, i):
        kind = "base" if i % FOUNDATION_EVERY == 0 else "ft"
        return "org%05d/%s-%d" % (self.word(i, 3) % ORGS, kind, i)

    def index_of(self, rid):
        """The index of a generated id, or None."""
        try:
            i = int(rid.rsplit("-", 1)[1])
        except (IndexError, ValueError):
            return None
        return i if 0 <= i < self.n and self.repo_id(i) == rid else None

    def created(self, i):
        return T0 + (i * SPAN) // max(self.n, 1)

    def iso(self, t):
        day, sec = divmod(int(t), 86400)
        d = self.days.get(day)
        if d is None:
            d = self.days[day] = "%04d-%02d-%02d" % civil(day)
        return "%sT%02d:%02d:%02d.000Z" % (d, sec // 3600, sec // 60 % 60, sec % 60)

    def facts(self, i):
        """Everything about repo i as plain values."""
        b = self.bits(i)
        w0, w1, w2, w3 = struct.unpack("<4Q", b)
        f = {"id": "org%05d/%s-%d" % (w3 % ORGS, "base" if i % FOUNDATION_EVERY == 0 else "ft", i),
             "sha": b[:20].hex(), "_id": b[20:32].hex(), "created": self.created(i)}
        f["modified"] = f["created"] + w1 % (200 * 86400)
        f["library"] = LIBRARIES[(w1 >> 32) % len(LIBRARIES)]
        f["pipeline"] = PIPELINES[(w1 >> 40) % len(PIPELINES)]
        f["gated"] = GATED[(w1 >> 48) % len(GATED)]
        f["downloads"] = w2 % 100000
        f["likes"] = (w2 >> 20) % 500
        params = None
        if w0 % 10 < 7:
            total = int(10 ** (6 + (w0 >> 8) % 10000 * 4.85 / 10000))
            main = DTYPES[(w0 >> 24) % len(DTYPES)]
            params = {main: total}
            if (w0 >> 32) % 4 == 0 and main != "F32":
                params["F32"] = total // 1000 + 1
        f["params"] = params
        base = None
        if i % FOUNDATION_EVERY and i >= FOUNDATION_EVERY and (w2 >> 32) % 10 < 6:
            j = ((w2 >> 36) % (i // FOUNDATION_EVERY)) * FOUNDATION_EVERY
            base = (RELATIONS[(w2 >> 60) % len(RELATIONS)], j)
        f["base"] = base
        names = ["README.md", "config.json"] + (["model.safetensors"] if params else [])
        names += ["tokenizer.json", "generation_config.json", "special_tokens_map.json"][:(w3 >> 40) % 4]
        f["files"] = sorted(names)
        return f

    def row(self, i, expand):
        f = self.facts(i)
        out = {"_id": f["_id"], "id": f["id"]}
        for k in expand:
            v = self.field(i, f, k)
            if v is not None:
                out[k] = v
        return out

    def row_json(self, i, expand):
        """row(i, expand) as JSON text, written directly: json.dumps of 1,000 dicts would be
        most of a page's time (every generated string is plain ASCII, nothing to escape)."""
        b = self.bits(i)
        w0, w1, w2, w3 = struct.unpack("<4Q", b)
        created = T0 + (i * SPAN) // self.n
        out = ['{"_id":"', b[20:32].hex(), '","id":"org%05d/%s-%d"' % (
            w3 % ORGS, "base" if i % FOUNDATION_EVERY == 0 else "ft", i)]
        params = None
        if w0 % 10 < 7 and ("safetensors" in expand or "siblings" in expand or "tags" in expand):
            params = self.facts(i)["params"]
        for k in expand:
            if k == "sha":
                out.append(',"sha":"%s"' % b[:20].hex())
            elif k == "createdAt":
                out.append(',"createdAt":"%s"' % self.iso(created))
            elif k == "lastModified":
                out.append(',"lastModified":"%s"' % self.iso(created + w1 % (200 * 86400)))
            elif k == "library_name":
                v = LIBRARIES[(w1 >> 32) % len(LIBRARIES)]
                if v:
                    out.append(',"library_name":"%s"' % v)
            elif k == "pipeline_tag":
                v = PIPELINES[(w1 >> 40) % len(PIPELINES)]
                if v:
                    out.append(',"pipeline_tag":"%s"' % v)
            elif k == "gated":
                v = GATED[(w1 >> 48) % len(GATED)]
                out.append(',"gated":%s' % ('"%s"' % v if v else "false"))
            elif k == "downloads":
                out.append(',"downloads":%d' % (w2 % 100000))
            elif k == "likes":
                out.append(',"likes":%d' % ((w2 >> 20) % 500))
            elif k == "siblings":
                names = ["README.md", "config.json"] + (["model.safetensors"] if params else [])
                names += ["tokenizer.json", "generation_config.json", "special_tokens_map.json"][:(w3 >> 40) % 4]
                out.append(',"siblings":[%s]' % ",".join('{"rfilename":"%s"}' % n for n in sorted(names)))
            elif k == "safetensors" and params:
                out.append(',"safetensors":{"parameters":{%s},"total":%d}' % (
                    ",".join('"%s":%d' % kv for kv in params.items()), sum(params.values())))
            elif k == "baseModels" or k == "tags":
                f = self.facts(i)
                v = self.field(i, f, k)
                if v is not None:
                    out.append(',"%s":%s' % (k, json.dumps(v, separators=(",", ":"))))
            elif k == "private":
                out.append(',"private":false')
        out.append("}")
        return "".join(out)

    def field(self, i, f, k):
        if k == "sha":
            return f["sha"]
        if k == "createdAt":
            return self.iso(f["created"])
        if k == "lastModified":
            return self.iso(f["modified"])
        if k == "library_name":
            return f["library"]
        if k == "pipeline_tag":
            return f["pipeline"]
        if k == "baseModels" and f["base"]:
            rel, j = f["base"]
            return {"relation": rel, "models": [{"_id": self.bits(j)[20:32].hex(), "id": self.repo_id(j)}]}
        if k == "safetensors" and f["params"]:
            return {"parameters": f["params"], "total": sum(f["params"].values())}
        if k == "gated":
            return f["gated"]
        if k == "siblings":
            return [{"rfilename": n} for n in f["files"]]
        if k in ("downloads", "likes"):
            return f[k]
        if k == "private":
            return False
        if k == "tags":
            t = ["safetensors"] if f["params"] else []
            if f["base"]:
                t.append("base_model:%s:%s" % (f["base"][0], self.repo_id(f["base"][1])))
            return t
        return None

    # ---- the files of one repo (for crawls of selected repos) ----------------
    def file_bytes(self, i, path):
        f = self.facts(i)
        if path == "README.md":
            card = "---\nbase_model: %s\n---\n" % self.repo_id(f["base"][1]) if f["base"] else "---\n---\n"
            return (card + "# %s\n" % f["id"]).encode()
        if path == "config.json":
            return json.dumps({"model_type": "llama", "hidden_size": 16 * (1 + f["downloads"] % 8)}).encode()
        if path == "model.safetensors" and f["params"]:
            return self.safetensors_bytes(i, f["params"])
        if path in f["files"]:
            return json.dumps({"file": path, "repo": f["id"]}).encode()
        return None

    def safetensors_bytes(self, i, params):
        """A small real safetensors file with the repo's dtypes (tiny shapes: headers are what a
        header survey reads)."""
        size = {"BF16": 2, "F16": 2, "F32": 4, "I8": 1}
        header, off = {}, 0
        for n, dt in enumerate(sorted(params)):
            rows = 4 + (i + 5 * n) % 12
            nbytes = rows * 8 * size[dt]
            header["layer.%d.weight" % n] = {"dtype": dt, "shape": [rows, 8], "data_offsets": [off, off + nbytes]}
            off += nbytes
        header["__metadata__"] = {"format": "pt"}
        hb = json.dumps(header, separators=(",", ":")).encode()
        hb += b" " * (-len(hb) % 8)
        body = bytes((i + k) & 0xFF for k in range(off))
        return struct.pack("<Q", len(hb)) + hb + body

    def repo_files(self, i):
        """The file records hubserver.py serves (path, bytes, size, hashes, lfs)."""
        out = []
        for path in self.facts(i)["files"]:
            data = self.file_bytes(i, path)
            out.append({"path": path, "data": data, "size": len(data),
                        "sha256": hashlib.sha256(data).hexdigest(),
                        "oid": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest(),
                        "lfs": path.endswith(".safetensors")})
        return out


def cursor_of(start):
    return base64.urlsafe_b64encode(b"i=%d" % start).decode().rstrip("=")


def start_of(cursor):
    """The start index an opaque cursor names, or None."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        if not raw.startswith(b"i="):
            return None
        return int(raw[2:])
    except (ValueError, TypeError):
        return None


HOSTILE = [
    ("id", "../evil"),
    ("id", "a/b/c"),
    ("baseModels", {"relation": "finetune", "models": [{"id": "org/base-%d" % k} for k in range(20000)]}),
    ("baseModels", {"relation": 7, "models": "not a list"}),
    ("safetensors", {"parameters": {"BF16": -5, "F\t32": 1e300}, "total": "many"}),
    ("safetensors", {"parameters": {("X" * 40): 10}, "total": 10}),
    ("pipeline_tag", "text\tgen\neration"),
    ("library_name", {"an": "object"}),
    ("siblings", "not a list"),
    ("createdAt", "x" * 5000),
    ("sha", "zz" * 20),
    ("gated", [1, 2, 3]),
]


def hostile_row(row, i):
    """Every 7th repo of the first 20,000 gets one hostile field (in turn)."""
    if i % 7 != 3 or i >= 20000:
        return row
    k, v = HOSTILE[(i // 7) % len(HOSTILE)]
    row = dict(row)
    row[k] = v
    return row
