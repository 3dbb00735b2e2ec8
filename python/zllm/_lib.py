"""libzllm.so through ctypes: the C calls the package makes, their types, and
the structs it reads field by field (checked against the library's own sizes,
zllm/bind.h, before any call)."""
from __future__ import annotations

import ctypes
import os
from ctypes import (POINTER, Structure, c_char_p, c_double, c_int, c_int64, c_long, c_size_t, c_uint8, c_uint32,
                    c_uint64, c_void_p)
from pathlib import Path
from typing import Any, Optional

from .errors import raise_last


class Repo(Structure):
    _fields_ = [("id", c_int64), ("name", c_char_p), ("revision", c_char_p)]


class File(Structure):
    _fields_ = [("id", c_int64), ("path", c_char_p), ("size", c_uint64), ("sha256", c_uint8 * 32)]


class StTensor(Structure):
    _fields_ = [("name", c_char_p), ("dtype", c_int), ("ndim", c_uint32), ("shape", POINTER(c_uint64)),
                ("nelem", c_uint64), ("begin", c_uint64), ("end", c_uint64)]


class StHeader(Structure):
    _fields_ = [("file", c_char_p), ("file_size", c_uint64), ("header_len", c_uint64), ("data_start", c_uint64),
                ("data_len", c_uint64), ("ntensors", c_size_t), ("tensors", POINTER(StTensor)),
                ("nmeta", c_size_t), ("meta_keys", POINTER(c_char_p)), ("meta_vals", POINTER(c_char_p)),
                ("raw", POINTER(c_uint8)), ("by_name", POINTER(c_size_t))]


class StoreStats(Structure):
    _fields_ = [("decoded", c_uint64), ("decoded_bytes", c_uint64), ("hits", c_uint64), ("waits", c_uint64),
                ("refused", c_uint64), ("bytes", c_size_t), ("peak_bytes", c_size_t), ("readers", c_int),
                ("max_readers", c_int), ("decode_seconds", c_double), ("hash_seconds", c_double),
                ("hashed_bytes", c_uint64)]


_MAPPED = {"zllm_archive_repo": Repo, "zllm_archive_file": File, "zllm_st_header": StHeader,
           "zllm_st_tensor": StTensor, "zllm_slice_store_stats": StoreStats}

VP = c_void_p
PVP = POINTER(c_void_p)

# name: (return type, argument types); an int return is a zllm error code
_PROTOTYPES: dict[str, tuple[Any, list[Any]]] = {
    "zllm_error_last": (c_char_p, []),
    "zllm_error_last_code": (c_int, []),
    "zllm_error_clear": (None, []),
    "zllm_error_name": (c_char_p, [c_int]),
    "zllm_bind_version": (c_char_p, []),
    "zllm_bind_sizeof": (c_size_t, [c_char_p]),
    "zllm_bind_dtype_name": (c_char_p, [c_int]),
    "zllm_bind_dtype_size": (c_int, [c_int]),
    "zllm_archive_open": (c_int, [PVP, c_char_p, c_int]),
    "zllm_archive_open_readonly": (c_int, [PVP, c_char_p, c_int]),
    "zllm_archive_close": (None, [VP]),
    "zllm_archive_format": (c_int, [VP]),
    "zllm_archive_repos": (c_int, [VP, POINTER(POINTER(Repo)), POINTER(c_size_t)]),
    "zllm_archive_repos_free": (None, [POINTER(Repo), c_size_t]),
    "zllm_archive_repo_find": (c_int, [VP, c_char_p, POINTER(Repo)]),
    "zllm_archive_files": (c_int, [VP, c_char_p, POINTER(POINTER(File)), POINTER(c_size_t)]),
    "zllm_archive_files_free": (None, [POINTER(File), c_size_t]),
    "zllm_file_reader_open": (c_int, [PVP, VP, c_char_p, c_char_p]),
    "zllm_file_reader_close": (None, [VP]),
    "zllm_file_reader_size": (c_uint64, [VP]),
    "zllm_file_reader_read": (c_int64, [VP, c_uint64, c_void_p, c_size_t]),
    "zllm_file_reader_verified": (c_int, [VP]),
    "zllm_file_reader_whole": (None, [VP]),
    "zllm_file_reader_random": (None, [VP]),
    "zllm_file_reader_st_header": (c_int, [VP, POINTER(POINTER(StHeader))]),
    "zllm_st_header_free": (None, [POINTER(StHeader)]),
    "zllm_st_find": (c_long, [POINTER(StHeader), c_char_p]),
    "zllm_slice_store_open": (c_int, [PVP, c_char_p, c_size_t, c_int]),
    "zllm_slice_store_close": (None, [VP]),
    "zllm_slice_store_reader": (c_int, [VP, VP, c_char_p, c_char_p, PVP]),
    "zllm_slice_store_stats_get": (None, [VP, POINTER(StoreStats)]),
}


def _library_path() -> str:
    """ZLLM_LIBRARY when set (a build tree's library), else the package's own copy."""
    given = os.environ.get("ZLLM_LIBRARY")
    if given:
        return given
    return str(Path(__file__).resolve().parent / "libzllm.so")


def _load() -> ctypes.CDLL:
    path = _library_path()
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        raise ImportError(f"zllm: cannot load libzllm.so ({path}): {e}; reinstall the package "
                          "(pip install ./python) or set ZLLM_LIBRARY") from e
    for name, (res, args) in _PROTOTYPES.items():
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args
    for cname, struct in _MAPPED.items():
        theirs = lib.zllm_bind_sizeof(cname.encode())
        if theirs != ctypes.sizeof(struct):
            raise ImportError(f"zllm: {path} does not match this package: sizeof({cname}) is {theirs} "
                              f"there and {ctypes.sizeof(struct)} here; reinstall the package with its library")
    return lib


lib = _load()
VERSION: str = lib.zllm_bind_version().decode()


def check(rc: int) -> int:
    """rc when it is not an error; else the library's last error, raised."""
    if rc < 0:
        raise_last(rc, lib.zllm_error_last())
    return rc


def text(b: Optional[bytes]) -> Optional[str]:
    """A C string from the library (UTF-8 as it was stored; never fails)."""
    return None if b is None else b.decode("utf-8", "surrogateescape")


def arg(s: str) -> bytes:
    """A Python string for the library (names may hold any UTF-8)."""
    if "\0" in s:
        raise ValueError(f"{s!r}: names cannot hold NUL")
    return s.encode("utf-8", "surrogateescape")
