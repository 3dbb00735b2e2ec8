"""The zllm Python package against the originals (tests/scripts/py_package.sh
packs the archives and runs this):
  ZLLM_TEST_ARCHIVE  a format-2 archive of ZLLM_TEST_HUB (the sample hub and a
                     pair of repos with tensors larger than a 4 MiB slice,
                     the fine-tune stored as BitX against its base)
  ZLLM_TEST_F1       the format-1 fixture, of ZLLM_TEST_F1_HUB (the sample hub)
  ZLLM_TEST_SURVEY   a survey's output directory (zllm-survey --out)
"""
from __future__ import annotations

import hashlib
import io
import os
import shutil
import sqlite3
import threading
from pathlib import Path

import ml_dtypes  # noqa: F401  (safetensors.numpy needs it imported for BF16)
import numpy as np
import pytest
from safetensors import safe_open as st_safe_open
from safetensors.numpy import load_file

import zllm

ARCHIVES = {
    "format2": (os.environ["ZLLM_TEST_ARCHIVE"], os.environ["ZLLM_TEST_HUB"]),
    "format1": (os.environ["ZLLM_TEST_F1"], os.environ["ZLLM_TEST_F1_HUB"]),
}
BIG = ("bigco/big-chat", "model.safetensors")  # BitX against bigco/big-base
SLICE = 4 << 20


def originals(hub: str) -> dict[str, list[str]]:
    """repo -> its files' paths, as the hub snapshot on disk has them."""
    out: dict[str, list[str]] = {}
    root = Path(hub)
    for org in sorted(root.iterdir()):
        for repo in sorted(org.iterdir()):
            out[f"{org.name}/{repo.name}"] = sorted(str(p.relative_to(repo)) for p in repo.rglob("*") if p.is_file())
    return out


@pytest.fixture(params=sorted(ARCHIVES))
def pair(request):
    path, hub = ARCHIVES[request.param]
    with zllm.open_archive(path) as ar:
        yield ar, hub


def test_repos_files_and_hashes(pair):
    ar, hub = pair
    want = originals(hub)
    assert set(ar.repos()) <= set(want) and len(ar.repos()) >= 5
    for repo in ar.repos():
        assert ar.files(repo) == want[repo], repo
        for info in ar.file_info(repo):
            data = (Path(hub) / repo / info.path).read_bytes()
            assert info.size == len(data)
            assert info.sha256 == hashlib.sha256(data).hexdigest()


def test_every_file_read_whole_equals_original(pair):
    ar, hub = pair
    n = 0
    for repo in ar.repos():
        for path in ar.files(repo):
            with ar.open(repo, path) as f:
                assert f.read() == (Path(hub) / repo / path).read_bytes(), f"{repo}/{path}"
                assert f.verified, f"{repo}/{path}: not proven by its SHA-256"
                assert f.read() == b""
            n += 1
    assert n >= 19  # the format-1 fixture holds 19 files, the format-2 archive 86


def test_every_tensor_equals_safetensors_load_file(pair):
    ar, hub = pair
    tensors = 0
    for repo in ar.repos():
        for path in ar.files(repo):
            if not path.endswith(".safetensors"):
                continue
            orig = str(Path(hub) / repo / path)
            try:
                want = load_file(orig)
            except Exception:
                continue  # a malformed file the archive stored as bytes: safe_open refuses it below
            with st_safe_open(orig, framework="numpy") as ref, ar.safe_open(repo, path) as f:
                assert f.keys() == sorted(want), f"{repo}/{path}"
                assert f.metadata() == ref.metadata()
                for name in f.keys():
                    got = f.get_tensor(name)
                    assert got.dtype == want[name].dtype, name
                    assert got.shape == want[name].shape, name
                    assert got.tobytes() == want[name].tobytes(), f"{repo}/{path}: {name}"
                    tensors += 1
    assert tensors >= 84  # 84 in the format-1 fixture, 800 in the format-2 archive


def test_bf16_is_ml_dtypes_bfloat16():
    path, hub = ARCHIVES["format2"]
    with zllm.open_archive(path) as ar, ar.safe_open(*BIG) as f:
        t = f.get_tensor("model.embed_tokens.weight")
        assert t.dtype == ml_dtypes.bfloat16 and t.shape == (1280, 2049)
        assert f.tensor_info("model.embed_tokens.weight").dtype == "BF16"
        assert f.get_tensor("lm_head.scale").shape == () and float(f.get_tensor("lm_head.scale")) == 0.5
        assert f.metadata() == {"format": "pt", "note": "fine-tuned"}


def test_seek_and_partial_reads_at_odd_offsets():
    path, hub = ARCHIVES["format2"]
    orig = (Path(hub) / BIG[0] / BIG[1]).read_bytes()
    rng = np.random.default_rng(7)
    with zllm.open_archive(path) as ar, ar.open(*BIG) as f:
        assert f.seekable() and f.readable() and f.size == len(orig)
        # across every slice end, one byte either side, and back into a slice
        for end in range(SLICE, len(orig), SLICE):
            assert f.seek(end - 3) == end - 3
            assert f.read(7) == orig[end - 3:end + 4]
            assert f.tell() == end + 4
        f.seek(SLICE + 1)
        assert f.read(5) == orig[SLICE + 1:SLICE + 6]
        for _ in range(60):
            off = int(rng.integers(0, len(orig)))
            n = int(rng.integers(0, 3 * SLICE // 2))
            f.seek(off)
            assert f.read(n) == orig[off:off + n], (off, n)
        # whence, readinto, the end
        f.seek(-11, io.SEEK_END)
        assert f.read() == orig[-11:]
        f.seek(100)
        f.seek(-33, io.SEEK_CUR)
        buf = bytearray(4099)
        assert f.readinto(buf) == 4099 and bytes(buf) == orig[67:67 + 4099]
        view = memoryview(bytearray(10))
        f.seek(len(orig) - 4)
        assert f.readinto(view) == 4 and bytes(view[:4]) == orig[-4:]
        f.seek(len(orig) + 10)
        assert f.read(5) == b"" and f.read() == b""
        with pytest.raises(ValueError):
            f.seek(-1)
    # a buffered reader over it reads lines and chunks as over a disk file
    with zllm.open_archive(path) as ar:
        with io.BufferedReader(ar.open(*BIG), buffer_size=1 << 16) as b:
            assert b.read(8) == orig[:8]
            b.seek(12345)
            assert b.read(SLICE) == orig[12345:12345 + SLICE]


def test_tensors_read_in_any_order_share_base_slices():
    path, hub = ARCHIVES["format2"]
    want = load_file(str(Path(hub) / BIG[0] / BIG[1]))
    with zllm.open_archive(path) as ar:
        with ar.safe_open(*BIG) as f:
            for name in reversed(f.keys()):
                assert f.get_tensor(name).tobytes() == want[name].tobytes()
        base = load_file(str(Path(hub) / "bigco/big-base/model.safetensors"))
        with ar.safe_open("bigco/big-base", "model.safetensors") as f:
            assert f.get_tensor("model.embed_tokens.weight").tobytes() == base["model.embed_tokens.weight"].tobytes()
        st = ar.cache_stats()
        assert st["hits"] > 0, st  # the base's slices decoded for the fine-tune were reused
        assert st["readers"] == 0 and st["refused"] == 0


def test_files_beyond_the_memory_budget_still_read():
    path, hub = ARCHIVES["format2"]
    orig = (Path(hub) / BIG[0] / BIG[1]).read_bytes()
    # 20 MiB admits one reader: the others get readers of their own
    with zllm.open_archive(path, memory_mib=20, threads=1) as ar:
        files = [ar.open(*BIG) for _ in range(3)]
        for f in files:
            f.seek(SLICE - 5)
        for f in files:
            assert f.read(SLICE) == orig[SLICE - 5:2 * SLICE - 5]
        for f in files:
            f.close()


def test_threads_read_their_own_files():
    path, hub = ARCHIVES["format2"]
    jobs = [(r, p) for r in ("bigco/big-base", "bigco/big-chat") for p in ("model.safetensors", "config.json")]
    errors: list[str] = []
    with zllm.open_archive(path, threads=2) as ar:
        def run(repo: str, p: str) -> None:
            for _ in range(2):
                with ar.open(repo, p) as f:
                    if f.read() != (Path(hub) / repo / p).read_bytes():
                        errors.append(f"{repo}/{p}")
        ts = [threading.Thread(target=run, args=j) for j in jobs]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    assert errors == []


def test_errors_carry_zllms_message(tmp_path):
    path, _ = ARCHIVES["format2"]
    with zllm.open_archive(path) as ar:
        with pytest.raises(zllm.NotFoundError):
            ar.files("nobody/nothing")
        with pytest.raises(zllm.NotFoundError, match="no-such-file"):
            ar.open("bigco/big-base", "no-such-file")
        # JSON read as a safetensors length prefix: beyond the header limit (ELIMIT)
        with pytest.raises(zllm.ZllmError, match=r"bigco/big-base/config.json: safetensors: header-length"):
            ar.safe_open("bigco/big-base", "config.json")
        with ar.safe_open(*BIG) as f:
            with pytest.raises(LookupError, match="no tensor 'nope'"):
                f.get_tensor("nope")
        f = ar.open(*BIG)
    with pytest.raises(ValueError):  # closed with its archive
        f.read(1)
    with pytest.raises(zllm.ZllmError) as e:
        zllm.open_archive(tmp_path)
    assert str(tmp_path) in str(e.value)


def test_a_damaged_blob_names_its_blob_and_plane(tmp_path):
    path, hub = ARCHIVES["format2"]
    bad = tmp_path / "archive"
    shutil.copytree(path, bad)
    db = sqlite3.connect(bad / "catalog.sqlite")
    blob, pack, offset, length = db.execute(
        "SELECT b.id, p.name, b.offset, b.len FROM tensors t JOIN files f ON t.file = f.id"
        " JOIN repos r ON f.repo = r.id JOIN parts pt ON pt.tensor = t.id JOIN blobs b ON pt.blob = b.id"
        " JOIN packs p ON b.pack = p.id WHERE r.name = ? AND t.name = ? AND t.method = 'bitx' AND pt.part = 0",
        (BIG[0], "model.layers.0.mlp.up_proj.weight")).fetchone()
    db.close()
    with open(bad / "packs" / pack, "r+b") as p:
        p.seek(offset + length // 2)
        byte = p.read(1)
        p.seek(offset + length // 2)
        p.write(bytes([byte[0] ^ 0x5A]))
    with zllm.open_archive(bad) as ar, ar.safe_open(*BIG) as f:
        assert f.get_tensor("model.norm.weight").shape == (3,)  # the other tensors still read
        with pytest.raises(zllm.FormatError, match=rf"blob {blob}\b.*plane \d+") as e:
            f.get_tensor("model.layers.0.mlp.up_proj.weight")
        assert e.value.code_name == "EFORMAT"
    with zllm.open_archive(bad) as ar, ar.open(*BIG) as f:
        with pytest.raises(zllm.FormatError, match=rf"blob {blob}\b"):
            f.read()


def test_load_survey():
    out = Path(os.environ["ZLLM_TEST_SURVEY"])
    with zllm.load_survey(out) as s:
        for name in ("repos", "files", "tensors", "problems", "families", "pairs"):
            lines = (out / f"{name}.tsv").read_text().count("\n")
            assert len(s.tables[name]) == lines - 1, name
            assert getattr(s, name) is s.tables[name]
        assert s.census is None
        assert set(s.repos["repo"]) == set(originals(os.environ["ZLLM_TEST_F1_HUB"]))
        assert s.files["sha256"].str.fullmatch("[0-9a-f]{64}").all()
        assert s.files["bytes"].dtype.kind == "i"
        assert s.families["base"].isna().any()  # "-" (no base) is a missing value
        assert s.summary["results"]["archive"]["original_bytes"] == int(s.files["bytes"].sum())
        assert set(s.baselines["method"]) >= {"zstd", "zipnn", "zipllm", "zllm"}
        assert "reduction" in s.stats and s.stats.mode == "r"
        assert s.archive_path == out / "archive"
    assert s.stats is None  # closed
    with pytest.raises(FileNotFoundError):
        zllm.load_survey(out / "repos.tsv")
