"""Figures of a zllm survey, drawn from OUTDIR/stats.h5 (schema: docs/STATS.md).

The notebooks in this folder call these functions; tools/zllm-report renders
the notebooks headless.  Each figure function takes a loaded Survey, draws one
figure with a title, labelled axes (units in brackets) and a legend where
there is more than one series, saves it as FIGDIR/<name>.png, prints its
one-line caption, and returns the figure.  A figure whose data the survey does
not hold (no --baselines, no archive, no crawl metadata) is not drawn: the
function prints why and returns None, and `expected_figures` leaves it out.

Command line (used by tools/zllm-report):
    python3 zllm_report.py expected OUTDIR   names of the figures OUTDIR can give
    python3 zllm_report.py captions OUTDIR   name<TAB>notebook<TAB>caption
    python3 zllm_report.py summary OUTDIR    the headline numbers as HTML tables
"""
import json
import os
import sys
from collections import OrderedDict

import h5py
import numpy as np

import matplotlib

if "ipykernel" not in sys.modules:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

# rows of /deltas read at once when its histograms are summed
CHUNK_ROWS = 1 << 18

# name -> (notebook, what the survey must hold, caption)
FIGURES = OrderedDict([
    ("reduction_by_stage", ("01-storage-reduction", None,
        "Bytes left after each stage of the archive: original, file dedup, tensor dedup, BitX/solo coding.")),
    ("reduction_vs_throughput", ("01-storage-reduction", "baselines",
        "Data reduction against throughput of every method, measured on this hub in the same run.")),
    ("cumulative_reduction", ("01-storage-reduction", "archive",
        "Reduction of the archive as models are ingested in its order (bases first).")),
    ("storage_by_dtype", ("01-storage-reduction", None,
        "Tensor bytes per dtype, as uploaded and as the archive stores them.")),
    ("metadata_overhead", ("01-storage-reduction", None,
        "Size of the dedup index at chunk, tensor and file granularity (64 bytes per entry).")),
    ("delta_sparsity", ("02-delta-structure", "deltas",
        "Fraction of elements bitwise identical to the base, per fine-tune and per tensor.")),
    ("bit_flip_probability", ("02-delta-structure", "deltas",
        "Probability that a bit of the XOR with the base is set, per bit position and dtype.")),
    ("exponent_histograms", ("02-delta-structure", "same_dtype_delta",
        "Exponent field of the fine-tune that changed the most elements, of its base, and of their XOR.")),
    ("relative_change", ("02-delta-structure", "deltas",
        "Size of the changes that fine-tuning makes, relative to the base element.")),
    ("bit_distance_heatmap", ("03-families-and-duplication", "pairs",
        "Bit distance between the model pairs the clustering compared, ordered by family.")),
    ("tensor_duplication", ("03-families-and-duplication", None,
        "Tensors whose bytes appeared earlier within the same model, the same family, or the hub.")),
    ("hub_growth", ("04-hub-growth", "crawl",
        "Models and bytes uploaded per quarter (createdAt from the crawl), with the running total.")),
    ("census_growth", ("05-hub-census", "census",
        "Models and parameters created per month across the whole listing (the census), with the running totals.")),
    ("census_dtypes", ("05-hub-census", "census",
        "Share of the hub's parameters and of its models per safetensors dtype (the census).")),
    ("census_params", ("05-hub-census", "census",
        "Distribution of the models' parameter counts (the census, log scale).")),
    ("census_families", ("05-hub-census", "census",
        "The largest declared fine-tune trees (baseModels) by number of children and relation, beside the "
        "bitwise families where the survey has both.")),
    ("throughput_vs_ranks", ("01-storage-reduction", "scaling",
        "Survey throughput against the number of ranks, surveys of one hub at several rank counts, "
        "with the ideal (linear) line.")),
])

FIGDIR_DEFAULT = "figures"


def _s(a):
    return [x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x) for x in a]


def _cat(a):
    """A column of few distinct strings (dtype, method) as a Categorical: one
    small code per row instead of a Python string per row."""
    uniq, codes = np.unique(np.asarray(a), return_inverse=True)
    return pd.Categorical.from_codes(codes.astype(np.int32), _s(uniq))


def human_bytes(n):
    n = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000.0


class Survey:
    """The tables of one stats.h5, as pandas frames and numpy arrays."""

    def __init__(self, outdir, figdir=None):
        self.outdir = outdir
        self.path = os.path.join(outdir, "stats.h5")
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"{self.path}: no stats.h5 (run zllm-survey --out {outdir} first)")
        self.figdir = figdir or os.environ.get("ZLLM_FIGDIR") or os.path.join(outdir, "report", FIGDIR_DEFAULT)
        with h5py.File(self.path, "r") as f:
            hub = f.attrs.get("hub", b"")
            self.hub = hub.decode() if isinstance(hub, bytes) else str(hub)
            self.dtype_names = f.attrs["dtype_names"].decode().split(",")
            self._read_models(f)
            self._read_tensors(f)
            self._read_tables(f)
            self._read_census(f)

    def _read_models(self, f):
        m = f["/models"]
        cols = OrderedDict()
        for k in ("repo", "family", "base", "declared_base", "decision", "file_duplicate_of", "signature"):
            cols[k] = _s(m[k][:])
        for k in ("bit_distance", "bytes", "weight_bytes", "tensors", "identical_fraction"):
            cols[k] = m[k][:]
        for k, default in (("stored_bytes", 0), ("ingest_order", -1), ("created_at", -1)):
            cols[k] = m[k][:] if k in m else np.full(len(cols["repo"]), default)
        self.models = pd.DataFrame(cols)
        self.bytes_by_dtype = m["bytes_by_dtype"][:]
        self.parameters = m["parameters"][:]

    def _read_tensors(self, f):
        # one row per tensor of the hub: only the 1-D columns the figures use
        # are held; names and the per-tensor histograms are not (a hub of
        # tens of millions of tensors would not fit)
        t = f["/tensors"]
        self.tensors = pd.DataFrame({
            "model": t["model"][:], "dtype": _cat(t["dtype"][:]),
            "bytes": t["bytes"][:], "duplicate_of": t["duplicate_of"][:], "has_base": t["has_base"][:],
            "method": _cat(t["method"][:]), "stored_bytes": t["stored_bytes"][:],
        })
        d = f["/deltas"]
        self.tensors["identical_fraction"] = d["identical_fraction"][:]
        self.tensors["elements"] = d["elements"][:]
        self._sum_deltas(d)
        e = f["/exponents"]
        self.exponents = pd.DataFrame({"model": e["model"][:], "dtype": _s(e["dtype"][:]),
                                       "elements": e["elements"][:], "elements_xor": e["elements_xor"][:]})
        self.exp_hist = e["histogram"][:]
        self.exp_hist_xor = e["histogram_xor"][:]

    def _sum_deltas(self, d, rows=CHUNK_ROWS):
        """Sums of the per-tensor delta histograms over the tensors with a
        base, read a slice of rows at a time: bit flips per dtype, relative
        change sizes over all dtypes."""
        with_base = (self.tensors["has_base"] == 1).to_numpy()
        cat = self.tensors["dtype"].cat
        dtype, code_of = cat.codes.to_numpy(), {c: i for i, c in enumerate(cat.categories)}
        flips, rel = d["bit_flips"], d["log2_relative_change"]
        self.bit_flip_sums = {dt: np.zeros(flips.shape[1], dtype=np.int64) for dt in ("BF16", "F16", "F32")}
        self.relative_change_sum = np.zeros(rel.shape[1], dtype=np.int64)
        for lo in range(0, len(with_base), rows):
            sel = with_base[lo:lo + rows]
            if not sel.any():
                continue
            self.relative_change_sum += rel[lo:lo + rows][sel].sum(axis=0, dtype=np.int64)
            block, dts = flips[lo:lo + rows][sel], dtype[lo:lo + rows][sel]
            for dt, acc in self.bit_flip_sums.items():
                if dt in code_of:
                    acc += block[dts == code_of[dt]].sum(axis=0, dtype=np.int64)

    def _read_tables(self, f):
        def table(group, names):
            g = f[group]
            return pd.DataFrame({k: (_s(g[k][:]) if g[k].dtype.kind == "S" else g[k][:]) for k in names})
        self.reduction = table("/reduction", ("stage", "bytes"))
        self.baselines = table("/baselines", ("method", "stored_bytes", "reduction", "seconds", "throughput"))
        self.duplication = table("/duplication", ("scope", "tensors", "bytes"))
        self.overhead = table("/overhead", ("granularity", "entries", "bytes_per_entry", "bytes"))
        self.pairs = table("/pairs", ("a", "b", "bit_distance", "identical_fraction"))

    # ---- what this survey can show ---------------------------------------
    def _read_census(self, f):
        """stats.h5 /census (zllm-survey --census): the small tables the figures
        draw; the per-repo columns stay in the file (census_repos() reads them)."""
        self.census = None
        if "census" not in f or len(f["/census/id"]) == 0:
            return
        c = f["/census"]
        def frame(group):
            g = c[group]
            return pd.DataFrame({k: (_s(g[k][:]) if g[k].dtype.kind == "S" else g[k][:]) for k in g})
        self.census = {"by_month": frame("by_month"), "by_dtype": frame("by_dtype"),
                       "params_hist": frame("params_hist"), "declared_bases": frame("declared_bases"),
                       "repos": len(c["id"])}

    def census_repos(self, columns=("id", "created_at", "params_total", "base_model")):
        """The census's per-repo columns as a DataFrame (coded columns decoded)."""
        with h5py.File(self.path, "r") as f:
            c = f["/census"]
            out = OrderedDict()
            for k in columns:
                v = c[k][:]
                if "categories" in c and k in c["categories"]:
                    cats = np.array(_s(c["categories"][k][:]) + ["(other)"], dtype=object)
                    v = np.where(v < 0, "", cats[np.clip(v, 0, len(cats) - 1)])
                elif v.dtype.kind == "S":
                    v = _s(v)
                out[k] = v
            return pd.DataFrame(out)

    def has(self, need):
        if need is None:
            return True
        if need == "census":
            return self.census is not None
        if need == "baselines":
            return len(self.baselines) > 0
        if need == "archive":
            return bool((self.models["ingest_order"] >= 0).any())
        if need == "deltas":
            return bool((self.tensors["has_base"] == 1).any())
        if need == "pairs":
            return len(self.pairs) > 0
        if need == "same_dtype_delta":
            return _largest_finetune(self) is not None
        if need == "crawl":
            return len(self.growth_table()) > 0
        if need == "scaling":
            return self.scaling_table()["ranks"].nunique() > 1
        raise ValueError(need)

    def why_not(self, need):
        return {
            "baselines": "this survey ran without --baselines, so it measured no other method",
            "archive": "this survey ran with --no-pack, so there is no archive to follow",
            "deltas": "no model in this hub has a base, so there are no deltas",
            "same_dtype_delta": "no fine-tune has a base with elements of its own float dtype",
            "pairs": "the clustering compared no pair of models (no two share an architecture)",
            "scaling": "no survey of this hub at another rank count was given "
                       "(zllm-report OUTDIR --scaling OTHER_OUTDIR ...: surveys of the same hub at several rank counts)",
            "census": "this survey ran without --census (zllm-survey --endpoint URL --census)",
            "crawl": "the survey read a local snapshot without crawl metadata (createdAt); "
                     "survey a hub with zllm-survey --endpoint, or a snapshot zllm crawl wrote, "
                     "or point ZLLM_CRAWL_METADATA at a crawl's .zllm/metadata.jsonl",
        }[need]

    def scaling_table(self):
        """One row per survey of this hub ($ZLLM_SCALING: OUTDIRs separated by ':'
        — zllm-report --scaling — and this one): ranks, the hub's bytes, the
        whole job's seconds and the one pass's (pack and merge), from each
        stats.h5's /ranks (the slowest rank).  Surveys of another hub (other
        bytes) are left out."""
        if getattr(self, "_scaling", None) is not None:
            return self._scaling
        dirs = [self.outdir] + [d for d in os.environ.get("ZLLM_SCALING", "").split(":") if d]
        rows, seen = [], set()
        for d in dirs:
            d = os.path.abspath(d)
            if d in seen:
                continue
            seen.add(d)
            with h5py.File(os.path.join(d, "stats.h5"), "r") as f:
                if "/ranks" not in f:
                    continue
                phases = _s(f["/ranks/phase"][:])
                sec = f["/ranks/seconds"][:]
                hub_bytes = int(f["/models/bytes"][:].sum())
            col = {p: i for i, p in enumerate(phases)}
            job = sec[:, [col[p] for p in phases if p != "crawl"]].sum(axis=1).max()
            one_pass = sec[:, [col[p] for p in ("pass", "pass-wait", "merge")]].sum(axis=1).max()
            rows.append({"outdir": d, "ranks": sec.shape[0], "bytes": hub_bytes, "seconds": job, "pass_seconds": one_pass})
        t = pd.DataFrame(rows, columns=["outdir", "ranks", "bytes", "seconds", "pass_seconds"])
        mine = int(self.models["bytes"].sum())
        self._scaling = t[t["bytes"] == mine].sort_values("ranks").reset_index(drop=True)
        return self._scaling

    def metadata_path(self):
        """The crawl's metadata.jsonl: $ZLLM_CRAWL_METADATA (e.g. from a
        `zllm crawl --metadata-only` of a whole hub), else the surveyed hub's."""
        env = os.environ.get("ZLLM_CRAWL_METADATA")
        if env:
            return env
        for hub in (os.path.join(self.outdir, "hub"), self.hub):
            p = os.path.join(hub, ".zllm", "metadata.jsonl")
            if hub and os.path.isfile(p):
                return p
        return None

    def growth_table(self):
        """One row per model with a createdAt: repo, created (seconds), bytes,
        and where it came from.  A crawl's metadata lists every model it saw
        (with --metadata-only, a whole hub without downloading it); without
        one, the surveyed models' /models/created_at."""
        if getattr(self, "_growth", None) is not None:
            return self._growth
        rows, src = [], None
        path = self.metadata_path()
        if path:
            src = path
            with open(path, encoding="utf-8") as f:
                for line in f:
                    row = _metadata_row(line)
                    if row:
                        rows.append(row)
        if not rows:
            src = "stats.h5 /models/created_at"
            m = self.models[self.models["created_at"] > 0]
            rows = list(zip(m["repo"], m["created_at"].astype(float), m["bytes"]))
        self._growth = pd.DataFrame(rows, columns=["repo", "created", "bytes"])
        self._growth_source = src
        return self._growth

    def figure_path(self, name):
        return os.path.join(self.figdir, name + ".png")


def _metadata_row(line):
    """(repo, createdAt seconds, bytes) of one metadata.jsonl line, or None:
    the file comes from a hub, so a line that is not an object with a usable
    createdAt, or whose file sizes are not numbers, is left out."""
    try:
        m = json.loads(line)
        if not isinstance(m.get("createdAt"), str):
            return None
        t = pd.Timestamp(m["createdAt"]).timestamp()
        files = m.get("files", [])
        size = sum(int(x.get("size", 0)) for x in files if isinstance(x, dict)) if isinstance(files, list) else 0
        return (str(m.get("id", "?")), float(t), size)
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError):
        return None


def load(outdir=None, figdir=None):
    """The survey in OUTDIR (default: $ZLLM_OUT, else ../zllm-out)."""
    outdir = outdir or os.environ.get("ZLLM_OUT") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "zllm-out")
    return Survey(os.path.abspath(outdir), figdir)


def expected_figures(s):
    return [n for n, (_, need, _) in FIGURES.items() if s.has(need)]


def _begin(s, name):
    need = FIGURES[name][1]
    if not s.has(need):
        print(f"[{name}] not drawn: {s.why_not(need)}.")
        return False
    return True


def _finish(s, fig, name):
    fig.tight_layout()
    os.makedirs(s.figdir, exist_ok=True)
    fig.savefig(s.figure_path(name), dpi=110)
    print(f"Figure {name}: {FIGURES[name][2]}")
    return fig


# ---- 01 storage reduction ---------------------------------------------------

def reduction_by_stage(s):
    name = "reduction_by_stage"
    if not _begin(s, name):
        return None
    r = s.reduction
    fig, ax = plt.subplots(figsize=(7, 4))
    orig = float(r["bytes"].iloc[0])
    mb = r["bytes"] / 1e6
    bars = ax.bar(r["stage"], mb, color=["#888888", "#4c72b0", "#55a868", "#c44e52"][: len(r)])
    for b, v in zip(bars, r["bytes"]):
        ax.annotate(f"{100 * v / orig:.1f}%", (b.get_x() + b.get_width() / 2, b.get_height()),
                    ha="center", va="bottom", fontsize=9)
    ax.set_ylabel("bytes left [MB]")
    ax.set_xlabel("stage (cumulative)")
    ax.set_title(f"Storage reduction by stage: {human_bytes(orig)} -> {human_bytes(r['bytes'].iloc[-1])}")
    return _finish(s, fig, name)


def reduction_vs_throughput(s):
    name = "reduction_vs_throughput"
    if not _begin(s, name):
        return None
    b = s.baselines
    fig, ax = plt.subplots(figsize=(7, 4.5))
    markers = "osD^v<>ph*"
    for i, row in b.reset_index(drop=True).iterrows():
        ax.scatter(max(row["throughput"], 1e-3), 100 * row["reduction"], s=60, marker=markers[i % len(markers)],
                   label=f"{row['method']} ({100 * row['reduction']:.1f}%)")
    ax.set_xscale("log")
    ax.set_xlabel("throughput [MB/s, log scale]")
    ax.set_ylabel("data reduction [% of original bytes]")
    ax.set_title("Data reduction against throughput, per method (same run)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _finish(s, fig, name)


def throughput_vs_ranks(s):
    """The paper's throughput-against-workers figure: hub bytes over the
    slowest rank's time, for the whole survey and for its one pass, at each
    rank count given, beside the ideal line (the fewest ranks' rate, times
    the ranks)."""
    name = "throughput_vs_ranks"
    if not _begin(s, name):
        return None
    t = s.scaling_table().groupby("ranks", as_index=False).median(numeric_only=True)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    r0 = t["ranks"].iloc[0]
    for col, label, color in (("seconds", "whole survey", "#4c72b0"), ("pass_seconds", "one pass (pack + merge)", "#55a868")):
        rate = t["bytes"] / t[col] / 1e6
        ax.plot(t["ranks"], rate, "o-", color=color, label=label)
        ax.plot(t["ranks"], rate.iloc[0] * t["ranks"] / r0, "--", color=color, alpha=0.6, label=f"{label}, ideal")
    ax.set_xlabel("MPI ranks")
    ax.set_ylabel("throughput [MB/s]")
    ax.set_xticks(list(t["ranks"]))
    ax.set_title(f"Survey throughput against ranks ({human_bytes(t['bytes'].iloc[0])} hub)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    best = t["seconds"].iloc[0] / t["seconds"]
    print("speed-up of the whole survey: " + ", ".join(f"{int(r)} ranks {v:.2f}x" for r, v in zip(t["ranks"], best)))
    return _finish(s, fig, name)


def cumulative_reduction(s):
    name = "cumulative_reduction"
    if not _begin(s, name):
        return None
    m = s.models[s.models["ingest_order"] >= 0].sort_values("ingest_order")
    n = np.arange(1, len(m) + 1)
    orig = np.cumsum(m["bytes"].to_numpy(dtype=float))
    stored = np.cumsum(m["stored_bytes"].to_numpy(dtype=float))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot(n, orig / 1e6, marker="o", label="original")
    a1.plot(n, stored / 1e6, marker="s", label="stored (zllm archive)")
    a1.set_xlabel("models ingested")
    a1.set_ylabel("cumulative bytes [MB]")
    a1.set_title("Cumulative bytes")
    a1.legend()
    red = 100 * (1 - np.divide(stored, orig, out=np.ones_like(orig), where=orig > 0))
    a2.plot(n, red, marker="o", color="#c44e52")
    a2.set_xlabel("models ingested")
    a2.set_ylabel("cumulative reduction [%]")
    a2.set_ylim(0, 100)
    a2.set_title("Cumulative reduction")
    a2.grid(True, alpha=0.3)
    fig.suptitle("Reduction as models are ingested (archive order, bases first)")
    return _finish(s, fig, name)


def _dtype_storage(s):
    t = s.tensors
    g = t.groupby("dtype", observed=True).agg(bytes=("bytes", "sum"), stored=("stored_bytes", "sum"),
                                              tensors=("bytes", "size"))
    return g.sort_values("bytes", ascending=False)


def storage_by_dtype(s):
    name = "storage_by_dtype"
    if not _begin(s, name):
        return None
    g = _dtype_storage(s)
    x = np.arange(len(g))
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(x - 0.2, g["bytes"] / 1e6, 0.4, label="tensor bytes as uploaded")
    if s.has("archive"):
        ax.bar(x + 0.2, g["stored"] / 1e6, 0.4, label="stored in the archive")
    ax.set_xticks(x)
    ax.set_xticklabels(g.index)
    ax.set_xlabel("dtype")
    ax.set_ylabel("bytes [MB]")
    ax.set_title("Storage by dtype")
    ax.legend()
    return _finish(s, fig, name)


def metadata_overhead(s):
    name = "metadata_overhead"
    if not _begin(s, name):
        return None
    o = s.overhead
    labels = [g.split(" (")[0] for g in o["granularity"]]
    fig, ax = plt.subplots(figsize=(6, 4))
    bars = ax.bar(labels, o["bytes"] / 1e3, color=["#8172b2", "#55a868", "#4c72b0"][: len(o)])
    for b, e in zip(bars, o["entries"]):
        ax.annotate(f"{int(e):,} entries", (b.get_x() + b.get_width() / 2, b.get_height()),
                    ha="center", va="bottom", fontsize=9)
    ax.set_yscale("log")
    ax.set_xlabel("dedup granularity")
    ax.set_ylabel("index size [KB, log scale]")
    ax.set_title("Metadata overhead per dedup granularity")
    return _finish(s, fig, name)


# ---- 02 delta structure -----------------------------------------------------

def delta_sparsity(s):
    name = "delta_sparsity"
    if not _begin(s, name):
        return None
    m = s.models.dropna(subset=["identical_fraction"])
    t = s.tensors[s.tensors["has_base"] == 1]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.hist(100 * m["identical_fraction"], bins=np.linspace(0, 100, 21), color="#4c72b0", edgecolor="white")
    a1.set_xlabel("elements bitwise identical to the base [%]")
    a1.set_ylabel("fine-tunes [count]")
    a1.set_title(f"Per model ({len(m)} with a base)")
    frac = 100 * t["identical_fraction"].to_numpy()
    order = np.argsort(frac, kind="stable")
    x, w = frac[order], t["elements"].to_numpy(dtype=float)[order]
    a2.plot(x, np.cumsum(w) / max(w.sum(), 1), color="#c44e52", label="weighted by elements")
    a2.plot(x, np.arange(1, len(x) + 1) / max(len(x), 1), color="#55a868", label="per tensor")
    a2.set_xlabel("elements bitwise identical to the base [%]")
    a2.set_ylabel("cumulative fraction")
    a2.set_title(f"Per tensor ({len(t)} tensors with a base)")
    a2.legend()
    fig.suptitle("Delta sparsity across fine-tunes")
    return _finish(s, fig, name)


def _field_colors(dtype, nbits):
    # sign, exponent, mantissa spans of each float layout
    spans = {"BF16": (15, 7), "F16": (15, 10), "F32": (31, 23)}
    sign, exp_lo = spans.get(dtype, (nbits - 1, 0))
    return ["#c44e52" if b == sign else "#4c72b0" if b >= exp_lo else "#55a868" for b in range(nbits)]


def bit_flip_probability(s):
    name = "bit_flip_probability"
    if not _begin(s, name):
        return None
    t = s.tensors
    rows = []
    for dt, nbits in (("BF16", 16), ("F16", 16), ("F32", 32)):
        sel = ((t["has_base"] == 1) & (t["dtype"] == dt)).to_numpy()
        el = t["elements"].to_numpy()[sel].sum()
        if el > 0:
            rows.append((dt, nbits, s.bit_flip_sums[dt][:nbits] / el, el))
    fig, axes = plt.subplots(len(rows), 1, figsize=(9, 2.6 * len(rows)), squeeze=False)
    for ax, (dt, nbits, p, el) in zip(axes[:, 0], rows):
        ax.bar(np.arange(nbits), p, color=_field_colors(dt, nbits))
        ax.set_xlim(-0.5, nbits - 0.5)
        ax.set_xticks(range(0, nbits, 2 if nbits == 16 else 4))
        ax.set_xlabel("bit position (0 = least significant mantissa bit)")
        ax.set_ylabel("P(bit flipped)")
        ax.set_title(f"{dt}: {el:,} elements compared with their base")
        ax.set_ylim(0, max(0.55, float(p.max()) * 1.1))
    from matplotlib.patches import Patch
    axes[0, 0].legend(handles=[Patch(color="#c44e52", label="sign"), Patch(color="#4c72b0", label="exponent"),
                               Patch(color="#55a868", label="mantissa")], fontsize=8, loc="upper left")
    fig.suptitle("XOR flip probability per bit position (fine-tune XOR base)")
    return _finish(s, fig, name)


def _largest_finetune(s):
    """(model row, /exponents row, base's /exponents row) of the fine-tune
    that changed the most elements of a base of its own dtype (a re-upload
    changes none), BF16 first (the paper's dtype), then F16, then F32; a
    dtype whose only pairs changed nothing comes last."""
    if getattr(s, "_finetune_pick", False) is not False:
        return s._finetune_pick  # asked by has(), expected_figures() and the figure itself
    e = s.exponents
    row_of = {r: i for i, r in enumerate(s.models["repo"])}
    t = s.tensors[s.tensors["has_base"] == 1]
    changed = (t["elements"] * (1 - t["identical_fraction"])).groupby([t["model"], t["dtype"]], observed=True).sum()
    # (model, dtype) -> its /exponents row, once: a lookup per candidate, not a scan
    has_rows = e[e["elements"] > 0]
    row_at = {(int(m), dt): k for k, m, dt in zip(has_rows.index, has_rows["model"], has_rows["dtype"])}
    best = {}
    for k in e.index[e["elements_xor"] > 0]:
        i, dt = int(e.loc[k, "model"]), e.loc[k, "dtype"]
        b = row_of.get(s.models.loc[i, "base"])
        bk = row_at.get((b, dt)) if b is not None else None
        score = changed.get((i, dt), 0.0)
        if bk is not None and (dt not in best or score > best[dt][3]):
            best[dt] = (i, k, bk, score)
    order = [dt for dt in ("BF16", "F16", "F32") if dt in best]
    changed_first = [dt for dt in order if best[dt][3] > 0] + [dt for dt in order if best[dt][3] <= 0]
    s._finetune_pick = best[changed_first[0]][:3] if changed_first else None
    return s._finetune_pick


def exponent_histograms(s):
    name = "exponent_histograms"
    if not _begin(s, name):
        return None
    i, k, bk = _largest_finetune(s)
    dt = s.exponents.loc[k, "dtype"]
    base_i = int(s.exponents.loc[bk, "model"])
    nexp = 32 if dt == "F16" else 256
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    x = np.arange(nexp)
    ft = s.exp_hist[k][:nexp]
    a1.step(x, ft / max(ft.sum(), 1), where="mid", label=f"fine-tune {s.models.loc[i, 'repo']}")
    bh = s.exp_hist[bk][:nexp]
    a1.step(x, bh / max(bh.sum(), 1), where="mid", linestyle="--", label=f"base {s.models.loc[base_i, 'repo']}")
    nz = np.flatnonzero(ft)
    if len(nz):
        a1.set_xlim(max(nz.min() - 3, 0), min(nz.max() + 3, nexp - 1))
    a1.set_xlabel(f"exponent field ({dt}, biased)")
    a1.set_ylabel("fraction of elements")
    a1.set_title("Exponents: base and fine-tune")
    a1.legend(fontsize=7)
    xh = s.exp_hist_xor[k][:nexp]
    share = xh / max(xh.sum(), 1)
    a2.bar(x, share, color="#c44e52")
    a2.set_yscale("log")
    a2.set_ylim(max(share[share > 0].min() / 3, 1e-9) if (share > 0).any() else 1e-6, 2)
    nzx = np.flatnonzero(xh)
    a2.set_xlim(-1, (nzx.max() + 2) if len(nzx) else 16)
    a2.set_xlabel(f"exponent field of the XOR ({dt})")
    a2.set_ylabel("fraction of elements [log]")
    a2.set_title(f"XOR exponent field: {100 * share[0]:.2f}% of elements are 0")
    fig.suptitle(f"Base vs fine-tune exponent histograms ({dt})")
    return _finish(s, fig, name)


def relative_change(s):
    name = "relative_change"
    if not _begin(s, name):
        return None
    h = s.relative_change_sum
    x = np.arange(-32, -32 + len(h))
    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.bar(x, h / max(h.sum(), 1), color="#8172b2")
    ax.set_xlabel("floor(log2(|fine-tune - base| / |base|))  (-32 and +7 collect the tails)")
    ax.set_ylabel("fraction of changed elements")
    ax.set_title("Relative size of the changes fine-tuning makes")
    return _finish(s, fig, name)


# ---- 03 families and duplication ---------------------------------------------

def bit_distance_heatmap(s, threshold=4.6):
    name = "bit_distance_heatmap"
    if not _begin(s, name):
        return None
    m = s.models.copy()
    m["fam_order"] = m["family"].where(m["family"] != "-", m["repo"])
    m = m.sort_values(["fam_order", "repo"]).reset_index(drop=True)
    names = m["repo"].tolist()
    idx = {r: i for i, r in enumerate(names)}
    d = np.full((len(names), len(names)), np.nan)
    for a, b, v in zip(s.pairs["a"], s.pairs["b"], s.pairs["bit_distance"]):
        if a in idx and b in idx:
            d[idx[a], idx[b]] = d[idx[b], idx[a]] = v
    np.fill_diagonal(d, 0)
    size = max(6, 0.32 * len(names) + 3)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    cmap = plt.get_cmap("viridis").copy()
    cmap.set_bad("#eeeeee")
    im = ax.imshow(np.ma.masked_invalid(d), cmap=cmap, vmin=0, vmax=max(8.0, np.nanmax(d)))
    cb = fig.colorbar(im, ax=ax, fraction=0.046)
    cb.set_label("bit distance [bits per element]")
    cb.ax.axhline(threshold, color="red", linewidth=2)
    # outline each family found by the clustering
    start = 0
    fams = m["fam_order"].tolist()
    for i in range(1, len(fams) + 1):
        if i == len(fams) or fams[i] != fams[start]:
            if i - start > 1:
                ax.add_patch(plt.Rectangle((start - 0.5, start - 0.5), i - start, i - start, fill=False,
                                           edgecolor="red", linewidth=1.5))
            start = i
    short = [r if len(r) <= 40 else r[:37] + "..." for r in names]
    ax.set_xticks(range(len(names)))
    ax.set_yticks(range(len(names)))
    ax.set_xticklabels(short, rotation=90, fontsize=7)
    ax.set_yticklabels(short, fontsize=7)
    ax.set_xlabel("model (grouped by family; grey: not compared)")
    ax.set_ylabel("model")
    ax.set_title(f"Bit distance between models; red boxes: families (threshold {threshold} bits, red line)")
    return _finish(s, fig, name)


def tensor_duplication(s):
    name = "tensor_duplication"
    if not _begin(s, name):
        return None
    d = s.duplication
    total_b = float(s.tensors["bytes"].sum())
    total_t = len(s.tensors)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.bar(d["scope"], d["tensors"], color="#4c72b0")
    a1.set_xlabel("scope of the earlier copy")
    a1.set_ylabel("duplicate tensors [count]")
    a1.set_title(f"Duplicate tensors (of {total_t:,})")
    a2.bar(d["scope"], d["bytes"] / 1e6, color="#55a868")
    for x, v in zip(range(len(d)), d["bytes"]):
        a2.annotate(f"{100 * v / max(total_b, 1):.1f}%", (x, v / 1e6), ha="center", va="bottom", fontsize=9)
    a2.set_xlabel("scope of the earlier copy")
    a2.set_ylabel("duplicate bytes [MB]")
    a2.set_title(f"Duplicate bytes (of {human_bytes(total_b)} of tensors)")
    fig.suptitle("Tensor-hash duplication within model, family and hub")
    return _finish(s, fig, name)


# ---- 04 hub growth --------------------------------------------------------------

def hub_growth(s):
    name = "hub_growth"
    if not _begin(s, name):
        return None
    m = s.growth_table().copy()
    m["quarter"] = pd.to_datetime(m["created"], unit="s", utc=True).dt.tz_localize(None).dt.to_period("Q")
    q = m.groupby("quarter").agg(models=("repo", "size"), bytes=("bytes", "sum"))
    q = q.reindex(pd.period_range(q.index.min(), q.index.max(), freq="Q"), fill_value=0)
    labels = [str(p) for p in q.index]
    x = np.arange(len(q))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    a1.bar(x, q["models"], color="#4c72b0", label="new models")
    a1b = a1.twinx()
    a1b.plot(x, np.cumsum(q["models"]), color="#c44e52", marker="o", label="total models")
    a1.set_ylabel("models uploaded per quarter [count]")
    a1b.set_ylabel("total models [count]")
    a1.set_title("Models")
    a2.bar(x, q["bytes"] / 1e6, color="#55a868", label="new bytes")
    a2b = a2.twinx()
    a2b.plot(x, np.cumsum(q["bytes"]) / 1e6, color="#c44e52", marker="o", label="total bytes")
    a2.set_ylabel("bytes uploaded per quarter [MB]")
    a2b.set_ylabel("total bytes [MB]")
    a2.set_title("Bytes")
    for a, b in ((a1, a1b), (a2, a2b)):
        a.set_xticks(x)
        a.set_xticklabels(labels, rotation=45, fontsize=8)
        a.set_xlabel("quarter (createdAt)")
        h1, l1 = a.get_legend_handles_labels()
        h2, l2 = b.get_legend_handles_labels()
        a.legend(h1 + h2, l1 + l2, fontsize=8, loc="upper left")
    fig.suptitle(f"Hub growth over time ({len(m)} models with createdAt)")
    print(f"{len(m)} models with createdAt, {labels[0]} to {labels[-1]} (from {s._growth_source}); "
          f"{len(s.models) - int(s.models['repo'].isin(set(m['repo'])).sum())} surveyed models without")
    return _finish(s, fig, name)


# ---- 05 hub census ----------------------------------------------------------

def census_growth(s):
    name = "census_growth"
    if not _begin(s, name):
        return None
    m = s.census["by_month"]
    x = np.arange(len(m))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    a1.bar(x, m["models"], color="#4c72b0", label="models created")
    a1.bar(x, m["declared_base"], color="#dd8452", label="... declaring a base model")
    a1b = a1.twinx()
    a1b.plot(x, np.cumsum(m["models"]), color="#c44e52", label="total models")
    a1.set_ylabel("models per month [count]")
    a1b.set_ylabel("total models [count]")
    a1.set_title("Models")
    a2.bar(x, m["parameters"] / 1e9, color="#55a868", label="parameters created")
    a2b = a2.twinx()
    a2b.plot(x, np.cumsum(m["parameters"]) / 1e9, color="#c44e52", label="total parameters")
    a2.set_ylabel("parameters per month [billions]")
    a2b.set_ylabel("total parameters [billions]")
    a2.set_title("Parameters (safetensors)")
    step = max(1, len(m) // 12)
    for a, b in ((a1, a1b), (a2, a2b)):
        a.set_xticks(x[::step])
        a.set_xticklabels(list(m["month"])[::step], rotation=45, fontsize=8)
        a.set_xlabel("month (createdAt)")
        h1, l1 = a.get_legend_handles_labels()
        h2, l2 = b.get_legend_handles_labels()
        a.legend(h1 + h2, l1 + l2, fontsize=8, loc="upper left")
    fig.suptitle(f"The hub over time: {s.census['repos']:,} models in the census")
    print(f"{s.census['repos']:,} models from {m['month'].iloc[0]} to {m['month'].iloc[-1]}; "
          f"{int(m['declared_base'].sum()):,} declare a base model; "
          f"{m['parameters'].sum() / 1e12:.1f} T parameters listed")
    return _finish(s, fig, name)


def census_dtypes(s):
    name = "census_dtypes"
    if not _begin(s, name):
        return None
    d = s.census["by_dtype"].sort_values("parameters", ascending=False)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.bar(d["dtype"], d["parameters"] / d["parameters"].sum(), color="#4c72b0")
    a1.set_ylabel("fraction of all parameters")
    a1.set_title("Parameters by dtype")
    a2.bar(d["dtype"], d["models"], color="#55a868")
    a2.set_ylabel("models with weights of the dtype [count]")
    a2.set_title("Models by dtype")
    for a in (a1, a2):
        a.set_xlabel("safetensors dtype")
    fig.suptitle("Dtypes across the hub (census)")
    top = d.iloc[0]
    print(f"{top['dtype']} holds {top['parameters'] / d['parameters'].sum():.0%} of the parameters listed; "
          f"{len(d)} dtypes in all")
    return _finish(s, fig, name)


def census_params(s):
    name = "census_params"
    if not _begin(s, name):
        return None
    h = s.census["params_hist"]
    h = h[h["models"] > 0]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(h["log10_low"] + 0.125, h["models"], width=0.25, color="#4c72b0", label="models")
    ax.set_xlabel("parameters [log10]")
    ax.set_ylabel("models [count]")
    ax.set_title("Parameter counts across the hub (census)")
    ax.legend(fontsize=8)
    w = h["models"] / h["models"].sum()
    median = float(h["log10_low"].iloc[int(np.searchsorted(np.cumsum(w), 0.5))])
    print(f"{int(h['models'].sum()):,} models list a parameter count; the median is about 10^{median:.2f} "
          f"({10 ** median / 1e6:,.0f} M)")
    return _finish(s, fig, name)


def census_families(s, top=20):
    name = "census_families"
    if not _begin(s, name):
        return None
    b = s.census["declared_bases"].head(top)
    rel = [r for r in ("finetune", "adapter", "quantized", "merge", "other") if r in b]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, max(4, 0.3 * len(b) + 1)),
                                 gridspec_kw={"width_ratios": [3, 2]})
    y = np.arange(len(b))[::-1]
    left = np.zeros(len(b))
    colors = ["#4c72b0", "#55a868", "#dd8452", "#c44e52", "#8172b3"]
    for r, c in zip(rel, colors):
        a1.barh(y, b[r], left=left, color=c, label=r)
        left += b[r].to_numpy()
    a1.set_yticks(y)
    a1.set_yticklabels(b["id"], fontsize=7)
    a1.set_xlabel("models declaring the base [count]")
    a1.set_ylabel("declared base model [repo id]")
    a1.set_title(f"The {len(b)} largest declared fine-tune trees")
    a1.legend(fontsize=8)
    # the bitwise families of the surveyed models, beside what they declare
    m = s.models
    both = m[(m["declared_base"] != "") & (m["repo"] != "")]
    fam = m.groupby("family").size().sort_values(ascending=False).head(top)
    if len(fam) == 0:
        a2.text(0.5, 0.5, "no models surveyed\n(zllm-survey --census --select EXPR)", ha="center", va="center",
                transform=a2.transAxes)
    a2.barh(np.arange(len(fam))[::-1], fam.to_numpy(), color="#8172b3", label="bitwise family (survey)")
    a2.set_yticks(np.arange(len(fam))[::-1])
    a2.set_yticklabels(list(fam.index), fontsize=7)
    a2.set_xlabel("surveyed models in the family [count]")
    a2.set_ylabel("bitwise family [root repo id]")
    a2.set_title("Bitwise families of the surveyed models")
    a2.legend(fontsize=8)
    fig.suptitle("Declared trees (census) and bitwise families (survey)")
    agree = int((both["declared_base"] == both["base"]).sum()) if len(both) else 0
    print(f"{len(s.census['declared_bases'])} most declared bases shown of the census; of {len(both)} surveyed "
          f"models that declare a base, the bitwise search found that same base for {agree}")
    return _finish(s, fig, name)


def summary_table(s):
    """The numbers behind the figures, one line each (printed in the notebooks)."""
    r = s.reduction
    lines = [f"hub: {s.hub}", f"models: {len(s.models)}, tensors: {len(s.tensors)}"]
    for st, b in zip(r["stage"], r["bytes"]):
        lines.append(f"{st:>18}: {int(b):>14,} bytes ({100 * b / r['bytes'].iloc[0]:.1f}%)")
    return "\n".join(lines)


def summary_html(s):
    """The headline numbers as HTML tables (zllm-report puts them on index.html)."""
    import html
    r = s.reduction
    orig = float(r["bytes"].iloc[0]) or 1.0
    out = [f"<p>{len(s.models)} models, {len(s.tensors):,} tensors; hub <code>{html.escape(s.hub)}</code></p>",
           "<table border=1 cellpadding=4><tr><th>stage</th><th>bytes</th><th>of original</th></tr>"]
    for st, b in zip(r["stage"], r["bytes"]):
        out.append(f"<tr><td>{html.escape(st)}</td><td align=right>{int(b):,}</td>"
                   f"<td align=right>{100 * b / orig:.1f}%</td></tr>")
    out.append("</table>")
    if len(s.baselines):
        out.append("<p>Every method over the same hub, in the same run (<code>--baselines</code>):</p>"
                   "<table border=1 cellpadding=4><tr><th>method</th><th>stored bytes</th><th>reduction</th>"
                   "<th>MB/s</th></tr>")
        for _, b in s.baselines.iterrows():
            out.append(f"<tr><td>{html.escape(b['method'])}</td><td align=right>{int(b['stored_bytes']):,}</td>"
                       f"<td align=right>{100 * b['reduction']:.1f}%</td><td align=right>{b['throughput']:.0f}</td></tr>")
        out.append("</table>")
    return "\n".join(out)


def _main(argv):
    if len(argv) != 3 or argv[1] not in ("expected", "captions", "summary"):
        print(__doc__, file=sys.stderr)
        return 2
    s = load(argv[2])
    if argv[1] == "summary":
        print(summary_html(s))
        return 0
    for n in FIGURES:
        nb, need, cap = FIGURES[n]
        if argv[1] == "expected" and s.has(need):
            print(n)
        elif argv[1] == "captions":
            print(f"{n}\t{nb}\t{cap if s.has(need) else 'not drawn: ' + s.why_not(need)}")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv))
