"""A zllm survey's outputs (the directory zllm-survey --out wrote) as pandas
DataFrames, and its statistics (stats.h5) opened with h5py."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any, Dict, Optional

import pandas as pd

from ._closing import Closing

# The survey's tables (README, "Outputs"); census.tsv when the survey crawled
TABLES = ("repos", "files", "tensors", "problems", "families", "pairs", "census")
# Columns that hold hashes, names or revisions: kept as text even when a value
# happens to look like a number
_TEXT_COLUMNS = {"repo", "path", "file", "tensor", "sha256", "xxh3_128", "revision", "family", "base",
                 "declared_base", "a", "b", "problem", "error", "license", "base_model", "shape"}


def read_table(path: "os.PathLike[str] | str") -> pd.DataFrame:
    """One of the survey's TSV tables.  "-" (the tables' "none") becomes a
    missing value; nothing else does ("NA" or "null" stay text)."""
    path = Path(path)
    with path.open(newline="") as f:
        header = f.readline().rstrip("\n").split("\t")
    dtypes = {c: str for c in header if c in _TEXT_COLUMNS}
    return pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, dtype=dtypes, keep_default_na=False,
                       na_values=["-"])


class Survey(Closing):
    """A survey's outputs: `summary` (summary.json as a dict), one DataFrame
    per table (`repos`, `files`, `tensors`, `problems`, `families`, `pairs`,
    and `census` when the survey crawled; None when a table is absent),
    `tables` (those present, by name), `stats` (stats.h5, opened read-only
    with h5py; None without it) and `archive_path` (its archive, or None).
    Close it (or use `with`) to close stats.h5."""

    def __init__(self, outdir: "os.PathLike[str] | str") -> None:
        self.path = Path(outdir)
        if not self.path.is_dir():
            raise FileNotFoundError(f"{self.path}: no survey output directory")
        summary = self.path / "summary.json"
        if not summary.is_file():
            raise FileNotFoundError(f"{self.path}: no summary.json (not a zllm-survey --out directory)")
        self.summary: Dict[str, Any] = json.loads(summary.read_text())
        self.tables: Dict[str, pd.DataFrame] = {}
        for name in TABLES:
            p = self.path / f"{name}.tsv"
            if p.is_file():
                self.tables[name] = read_table(p)
        self.stats: Optional[Any] = None
        h5 = self.path / "stats.h5"
        if h5.is_file():
            import h5py
            self.stats = h5py.File(h5, "r")
        archive = self.path / "archive"
        self.archive_path: Optional[Path] = archive if archive.is_dir() else None

    def __getattr__(self, name: str) -> Optional[pd.DataFrame]:
        if name in TABLES:
            return self.__dict__.get("tables", {}).get(name)
        raise AttributeError(name)

    @property
    def baselines(self) -> pd.DataFrame:
        """The in-run baselines (zllm-survey --baselines): method, stored
        bytes, reduction, seconds, MB/s; empty without them."""
        rows = self.summary.get("results", {}).get("baselines", [])
        return pd.DataFrame(rows, columns=["method", "stored_bytes", "reduction", "seconds", "mb_per_s"])

    def close(self) -> None:
        if self.stats is not None:
            self.stats.close()
            self.stats = None

    def __repr__(self) -> str:
        return f"<zllm.Survey {str(self.path)!r} tables={sorted(self.tables)}>"


def load_survey(outdir: "os.PathLike[str] | str") -> Survey:
    """Loads the outputs zllm-survey wrote into `outdir`."""
    return Survey(outdir)
