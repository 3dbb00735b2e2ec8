"""The Hugging Face Python client (huggingface_hub, and transformers and
safetensors on top of it) reading a zllm archive through `zllm serve`, as a
user's code would with HF_ENDPOINT set.

Run by tests/scripts/hf_python.sh against a server it started; the
environment says where:
  HF_ENDPOINT        the server
  ZLLM_TEST_HUB      the hub the archive was packed from (the originals)
  ZLLM_TEST_REPOS    the repos the archive holds, space-separated
  ZLLM_TEST_TOKEN    set when the server requires this token
The driver picks the tests for each server and client with -k (the token
test where a token is required, transformers with the current client only).
Every downloaded file is compared by SHA-256 with its original.
"""
import hashlib
import os
import pathlib

import pytest
from huggingface_hub import HfApi, hf_hub_download, snapshot_download

HUB = pathlib.Path(os.environ["ZLLM_TEST_HUB"])
REPOS = os.environ["ZLLM_TEST_REPOS"].split()
TOKEN = os.environ.get("ZLLM_TEST_TOKEN") or None


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def originals(repo):
    root = HUB / repo
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}


def api():
    return HfApi(token=TOKEN)


def test_xet_installed_yet_plain_http():
    """hf_xet is installed, as users have it; the mirror sends no xetHash nor
    X-Xet headers, so the client downloads over plain HTTP (the downloads
    below then come from the mirror)."""
    import importlib.util

    assert importlib.util.find_spec("hf_xet") is not None
    repo = REPOS[0]
    path = sorted(originals(repo))[0]
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    meta = get_hf_file_metadata(hf_hub_url(repo, path), token=TOKEN)
    assert getattr(meta, "xet_file_data", None) is None
    assert meta.size == (HUB / repo / path).stat().st_size


def test_list_models_names_every_repo():
    ids = {m.id for m in api().list_models(limit=1000)}
    assert set(REPOS) <= ids


def test_model_info_lists_the_files_and_a_revision():
    for repo in REPOS:
        info = api().model_info(repo)
        assert info.id == repo
        assert info.sha and len(info.sha) == 40
        assert {s.rfilename for s in info.siblings} == set(originals(repo))


def test_list_repo_tree_gives_sizes_and_lfs_sha256():
    for repo in REPOS:
        files = {e.path: e for e in api().list_repo_tree(repo, recursive=True) if hasattr(e, "size")}
        want = originals(repo)
        assert set(files) == set(want)
        for path, entry in files.items():
            assert entry.size == want[path].stat().st_size
            assert getattr(entry, "xet_hash", None) is None  # no xetHash: the client reads plain HTTP
            if entry.lfs is not None:  # an object now, a dict in huggingface_hub 0.20
                lfs_sha = entry.lfs["sha256"] if isinstance(entry.lfs, dict) else entry.lfs.sha256
                assert lfs_sha == sha256(want[path])


def test_get_paths_info_answers_for_the_paths_asked():
    repo = REPOS[0]
    paths = sorted(originals(repo))[:2]
    got = {e.path: e for e in api().get_paths_info(repo, paths)}
    assert set(got) == set(paths)
    for path in paths:
        assert got[path].size == (HUB / repo / path).stat().st_size


def test_hf_hub_download_into_the_cache_is_every_original(tmp_path):
    for repo in REPOS:
        for path, orig in originals(repo).items():
            got = hf_hub_download(repo, path, cache_dir=tmp_path, token=TOKEN)
            assert sha256(got) == sha256(orig), f"{repo}/{path}"
            assert "/snapshots/" in got  # the Hub cache layout: blobs linked from snapshots/<sha>/


def test_snapshot_download_into_a_cache_and_into_a_local_dir(tmp_path):
    for repo in REPOS:
        want = originals(repo)
        cached = pathlib.Path(snapshot_download(repo, cache_dir=tmp_path / "cache", token=TOKEN))
        local = pathlib.Path(snapshot_download(repo, local_dir=tmp_path / "local" / repo, token=TOKEN))
        for root in (cached, local):
            for path, orig in want.items():
                assert sha256(root / path) == sha256(orig), f"{root}/{path}"


def test_safetensors_numpy_reads_every_weight_file(tmp_path):
    import ml_dtypes  # noqa: F401  (registers bfloat16 with numpy, as BF16 files need)
    from safetensors.numpy import load_file

    n = 0
    for repo in REPOS:
        for path, orig in originals(repo).items():
            if not path.endswith(".safetensors"):
                continue
            got = hf_hub_download(repo, path, cache_dir=tmp_path, token=TOKEN)
            tensors = load_file(got)
            with open(got, "rb") as f:
                header = int.from_bytes(f.read(8), "little")
            # every byte after the header is some tensor's
            assert len(tensors) > 0
            assert sum(t.nbytes for t in tensors.values()) == orig.stat().st_size - 8 - header
            n += 1
    assert n > 0


def test_token_required_without_it_the_server_refuses(tmp_path):
    try:
        from huggingface_hub.errors import HfHubHTTPError
    except ImportError:  # huggingface_hub before 0.24
        from huggingface_hub.utils import HfHubHTTPError

    assert TOKEN, "run against a server started with --token-file"
    repo = REPOS[0]
    with pytest.raises((HfHubHTTPError, OSError, ValueError)):
        HfApi(token=False).model_info(repo)
    with pytest.raises((HfHubHTTPError, OSError, ValueError)):
        hf_hub_download(repo, sorted(originals(repo))[0], cache_dir=tmp_path, token=False)


def test_transformers_config_and_tokenizer(tmp_path):
    from transformers import AutoConfig, AutoTokenizer

    checked = 0
    for repo in REPOS:
        files = originals(repo)
        if "config.json" in files:
            config = AutoConfig.from_pretrained(repo, cache_dir=tmp_path, token=TOKEN)
            assert config.model_type
            checked += 1
        if "tokenizer_config.json" in files:
            tok = AutoTokenizer.from_pretrained(repo, cache_dir=tmp_path, token=TOKEN)
            ids = tok("the cat sat on the mat")["input_ids"]
            assert ids and tok.decode(ids).replace(" ", "") == "thecatsatonthemat"
            checked += 1
    assert checked >= 2
