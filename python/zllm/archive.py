"""A zllm archive read from Python: its repos and files, any file as a
seekable binary file object that decodes on the fly, and a safetensors file's
tensors one at a time as numpy arrays.

Every byte comes from libzllm's readers, as `zllm serve` reads them:
  - open() reads through the archive's slice store: slices of at most 4 MiB
    decoded once, by decode threads that work ahead of the reads, within the
    memory budget given to open_archive; a fine-tune's slices and its base's
    are shared by every file open on the archive;
  - a file read whole and in order is checked against the SHA-256 recorded at
    ingest before its last bytes are returned (ArchiveFile.verified);
  - a tensor read whole (get_tensor) is checked against its recorded
    XXH3-128 key before it is returned;
  - a mismatch, a damaged blob or a malformed header raises FormatError with
    zllm's message.
"""
from __future__ import annotations

import ctypes
import io
import os
import sys
import threading
import weakref
from ctypes import POINTER, byref, c_size_t, c_void_p
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

import ml_dtypes
import numpy as np

from . import _lib
from ._closing import Closing
from ._lib import arg, check, lib, text
from .errors import ELIMIT, FormatError, NotFoundError

_DEFAULT_MEMORY_MIB = 512
# The part cache of a handle whose reader did not fit the slice store
# (ZLLM_PART_CACHE_MIB, 512 MiB by default, split this many ways).
_FALLBACK_WAYS = 16


class FileInfo(NamedTuple):
    """One file of a repo as the archive records it."""
    path: str
    size: int
    sha256: str  # hex, recorded at ingest; every byte read is proven against it


class _RepoRaw(ctypes.Structure):
    """zllm_archive_repo with its strings as pointers, to free them."""
    _fields_ = [("id", ctypes.c_int64), ("name", c_void_p), ("revision", c_void_p)]


_libc = ctypes.CDLL(None)
_libc.free.argtypes = [c_void_p]
_libc.free.restype = None


class Archive(Closing):
    """An archive opened read-only (zllm.open_archive).  Usable from several
    threads; every file object it hands out is read by one thread at a time.
    Closing it closes the files and tensor readers it opened."""

    def __init__(self, path: "os.PathLike[str] | str", memory_mib: int = _DEFAULT_MEMORY_MIB,
                 threads: Optional[int] = None) -> None:
        self.path = os.fspath(path)
        if memory_mib < 20:
            raise ValueError(f"memory_mib={memory_mib}: the slice store needs at least 20 MiB")
        self.memory_mib = memory_mib
        self.threads = threads if threads is not None else (os.cpu_count() or 1)
        if self.threads < 1:
            raise ValueError(f"threads={threads}: at least 1")
        self._dir = arg(self.path)
        self._lock = threading.Lock()
        self._store: Optional[c_void_p] = None
        self._children: "weakref.WeakSet[Any]" = weakref.WeakSet()
        h = c_void_p()
        check(lib.zllm_archive_open(byref(h), self._dir, 0))
        self._h: Optional[c_void_p] = h

    # ---- lifetime ----------------------------------------------------------
    def close(self) -> None:
        """Closes every file and tensor reader still open, then the archive."""
        for child in list(self._children):
            child.close()
        with self._lock:
            if self._store is not None:
                lib.zllm_slice_store_close(self._store)
                self._store = None
            if self._h is not None:
                lib.zllm_archive_close(self._h)
                self._h = None

    @property
    def closed(self) -> bool:
        return self._h is None

    def __repr__(self) -> str:
        return f"<zllm.Archive {self.path!r}{' closed' if self.closed else ''}>"

    def _handle(self) -> c_void_p:
        if self._h is None:
            raise ValueError(f"{self.path}: the archive is closed")
        return self._h

    # ---- listings ----------------------------------------------------------
    @property
    def format(self) -> int:
        """The archive format (1: zstd planes, 2: rANS planes; docs/FORMAT.md)."""
        with self._lock:
            return int(lib.zllm_archive_format(self._handle()))

    def repos(self) -> List[str]:
        """The repos, in the order they were ingested."""
        v = POINTER(_lib.Repo)()
        n = c_size_t()
        with self._lock:
            check(lib.zllm_archive_repos(self._handle(), byref(v), byref(n)))
        try:
            return [text(v[i].name) or "" for i in range(n.value)]
        finally:
            lib.zllm_archive_repos_free(v, n)

    def revision(self, repo: str) -> Optional[str]:
        """The commit recorded for a repo at ingest (None when none was)."""
        r = _lib.Repo()
        with self._lock:
            check(lib.zllm_archive_repo_find(self._handle(), arg(repo), byref(r)))
        rev = text(r.revision)
        raw = ctypes.cast(byref(r), POINTER(_RepoRaw)).contents
        _libc.free(raw.name)
        _libc.free(raw.revision)
        return rev

    def _file_infos(self, repo: str) -> List[FileInfo]:
        self.revision(repo)  # NotFoundError for a repo the archive lacks
        v = POINTER(_lib.File)()
        n = c_size_t()
        with self._lock:
            check(lib.zllm_archive_files(self._handle(), arg(repo), byref(v), byref(n)))
        try:
            return [FileInfo(text(v[i].path) or "", int(v[i].size), bytes(v[i].sha256).hex()) for i in range(n.value)]
        finally:
            lib.zllm_archive_files_free(v, n)

    def files(self, repo: str) -> List[str]:
        """A repo's file paths, sorted (files skipped at ingest are left out)."""
        return [f.path for f in self._file_infos(repo)]

    def file_info(self, repo: str, path: Optional[str] = None) -> "FileInfo | List[FileInfo]":
        """One file's size and SHA-256, or with no path every file's."""
        infos = self._file_infos(repo)
        if path is None:
            return infos
        for f in infos:
            if f.path == path:
                return f
        raise NotFoundError(f"{self.path}: no file '{path}' in {repo}")

    # ---- readers -----------------------------------------------------------
    def _slice_store(self) -> c_void_p:
        if self._store is None:
            s = c_void_p()
            check(lib.zllm_slice_store_open(byref(s), self._dir, self.memory_mib << 20, self.threads))
            self._store = s
        return self._store

    def _reader(self, repo: str, path: str) -> Tuple[c_void_p, c_void_p]:
        """(handle, reader) for one file: from the slice store, or when the
        store's budget is taken by readers already open, a reader of its own
        with a small part cache (decoding whole parts, sharing nothing)."""
        with self._lock:
            self._handle()
            store = self._slice_store()
            h, r = c_void_p(), c_void_p()
            check(lib.zllm_archive_open(byref(h), self._dir, 0))
            rc = lib.zllm_slice_store_reader(store, h, arg(repo), arg(path), byref(r))
            if rc == 0:
                return h, r
            lib.zllm_archive_close(h)
            if rc != ELIMIT:
                check(rc)
            h = c_void_p()
            check(lib.zllm_archive_open_readonly(byref(h), self._dir, _FALLBACK_WAYS))
            rc = lib.zllm_file_reader_open(byref(r), h, arg(repo), arg(path))
            if rc < 0:
                lib.zllm_archive_close(h)
                check(rc)
            return h, r

    def open(self, repo: str, path: str) -> "ArchiveFile":
        """A repo's file as a seekable binary file object (io.RawIOBase),
        decoded as it is read."""
        f = ArchiveFile(self, repo, path)
        self._children.add(f)
        return f

    def safe_open(self, repo: str, path: str, framework: str = "numpy") -> "SafeOpen":
        """A safetensors file's tensors, as safetensors.safe_open gives them:
        keys(), metadata(), get_tensor(name) -> numpy array.  Only the header
        and the tensors asked for are decoded (with the base slices they need)."""
        if framework not in ("numpy", "np"):
            raise ValueError(f"framework={framework!r}: zllm gives numpy arrays ('numpy')")
        s = SafeOpen(self, repo, path)
        self._children.add(s)
        return s

    def cache_stats(self) -> Dict[str, float]:
        """The slice store's counters: slices decoded, reused and waited for,
        readers refused, bytes held now and at most, readers open."""
        with self._lock:
            if self._store is None:
                return {}
            st = _lib.StoreStats()
            lib.zllm_slice_store_stats_get(self._store, byref(st))
        return {name: getattr(st, name) for name, _ in _lib.StoreStats._fields_}


class _Reader:
    """A handle and a file reader on it, closed together; one thread at a time."""

    def __init__(self, archive: Archive, repo: str, path: str) -> None:
        self.archive = archive  # kept alive while the reader is: the store outlives it
        self.name = f"{repo}/{path}"
        self.lock = threading.Lock()
        self.h, self.r = archive._reader(repo, path)
        self.size = int(lib.zllm_file_reader_size(self.r))

    def read_into(self, off: int, addr: int, n: int) -> int:
        """Fills n bytes at address addr from offset off (fewer only at the end)."""
        got = 0
        while got < n:
            k = lib.zllm_file_reader_read(self.r, off + got, addr + got, n - got)
            if k < 0:
                check(int(k))
            if k == 0:
                break
            got += k
        return got

    def close(self) -> None:
        if self.r is not None:
            lib.zllm_file_reader_close(self.r)
            lib.zllm_archive_close(self.h)
            self.r = self.h = None


# A whole read fills a new bytes object in place, as C code fills what
# PyBytes_FromStringAndSize(NULL, n) returns before anyone sees it: no
# zero-filled buffer copied into bytes (twice the file's memory, and a
# third of the time of reading a file).  Elsewhere than CPython, a copy.
_CPYTHON = sys.implementation.name == "cpython"
if _CPYTHON:
    _new_bytes = ctypes.pythonapi.PyBytes_FromStringAndSize
    _new_bytes.restype = ctypes.py_object
    _new_bytes.argtypes = [c_void_p, ctypes.c_ssize_t]
    _BYTES_DATA = bytes.__basicsize__ - 1  # where a bytes object's bytes start (ob_sval)


def _filled_bytes(n: int, fill: Any) -> bytes:
    """n bytes that fill(address, n) writes, as bytes (fewer if it wrote fewer)."""
    if n == 0:
        return b""
    if _CPYTHON:
        b = _new_bytes(None, n)
        got = fill(id(b) + _BYTES_DATA, n)
    else:
        buf = bytearray(n)
        addr, keep = _address(buf, n)
        got = fill(addr, n)
        del keep
        b = bytes(buf)
    return b if got == n else b[:got]


def _address(buf: Any, n: int) -> Tuple[int, Any]:
    """The address of a writable buffer's first byte (and what keeps it)."""
    if n == 0:
        return 0, None
    view = (ctypes.c_char * n).from_buffer(buf)
    return ctypes.addressof(view), view


class ArchiveFile(io.RawIOBase):
    """A file in the archive, decoded on the fly: read, readinto, seek, tell.
    Read whole from the start, its bytes are proven by the recorded SHA-256
    before the last of them is returned (`verified` is then True)."""

    def __init__(self, archive: Archive, repo: str, path: str) -> None:
        super().__init__()
        self._rd: Optional[_Reader] = _Reader(archive, repo, path)
        self.repo = repo
        self.path = path
        self.name = self._rd.name
        self.size = self._rd.size
        self._pos = 0
        self._touched = False

    def _reader(self) -> _Reader:
        if self._rd is None:
            raise ValueError(f"{self.name}: I/O operation on a closed file")
        return self._rd

    def readable(self) -> bool:
        self._reader()
        return True

    def seekable(self) -> bool:
        self._reader()
        return True

    @property
    def mode(self) -> str:
        return "rb"

    def tell(self) -> int:
        self._reader()
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._reader()
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}.get(whence)
        if base is None:
            raise ValueError(f"whence={whence}: SEEK_SET, SEEK_CUR or SEEK_END")
        if base + offset < 0:
            raise ValueError(f"{self.name}: negative seek position {base + offset}")
        self._pos = base + offset
        return self._pos

    def readinto(self, b: Any) -> int:
        """Fills b from the current position (short only at the end of the file)."""
        mv = memoryview(b).cast("B")
        n = min(len(mv), max(0, self.size - self._pos))
        addr, keep = _address(mv, n)
        got = self._fill(addr, n)
        del keep
        return got

    def readall(self) -> bytes:
        rd = self._reader()
        if self._pos == 0 and not self._touched:
            # read whole and in order: the SHA-256 proves every byte
            lib.zllm_file_reader_whole(rd.r)
        return _filled_bytes(max(0, self.size - self._pos), self._fill)

    def read(self, size: Optional[int] = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        self._reader()  # a closed file raises, even at its end
        return _filled_bytes(min(size, max(0, self.size - self._pos)), self._fill)

    def _fill(self, addr: int, n: int) -> int:
        """n bytes from the current position to address addr, the position
        moved past them: how many (fewer only at the end)."""
        rd = self._reader()
        with rd.lock:
            self._touched = True
            got = rd.read_into(self._pos, addr, n)
        self._pos += got
        return got

    @property
    def verified(self) -> bool:
        """True once every byte was read in order and matched the SHA-256."""
        rd = self._reader()
        return bool(lib.zllm_file_reader_verified(rd.r))

    def close(self) -> None:
        if self._rd is not None:
            with self._rd.lock:
                self._rd.close()
            self._rd = None
        super().close()

    def __repr__(self) -> str:
        return f"<zllm.ArchiveFile {self.name!r} size={self.size}{' closed' if self._rd is None else ''}>"


# safetensors' dtype names as numpy dtypes; the 16- and 8-bit floats numpy
# lacks come from ml_dtypes (BF16 is ml_dtypes.bfloat16).  Imported with the
# package: ml_dtypes' first import registers its casts (~0.5 s), which would
# otherwise land on the first get_tensor.
_NUMPY_DTYPES: Dict[str, Any] = {
    "BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "I16": np.int16, "U16": np.uint16, "F16": np.float16,
    "BF16": ml_dtypes.bfloat16, "I32": np.int32, "U32": np.uint32, "F32": np.float32, "I64": np.int64,
    "U64": np.uint64, "F64": np.float64, "C64": np.complex64, "F8_E5M2": ml_dtypes.float8_e5m2,
    "F8_E4M3": ml_dtypes.float8_e4m3fn, "F8_E8M0": ml_dtypes.float8_e8m0fnu}


class TensorInfo(NamedTuple):
    """One tensor of a safetensors header."""
    dtype: str          # safetensors' name: "BF16"
    shape: Tuple[int, ...]
    data_offsets: Tuple[int, int]  # [begin, end) after the header


class SafeOpen(Closing):
    """A safetensors file in the archive, read a tensor at a time (like
    safetensors.safe_open(..., framework="numpy")).  Its header was checked
    by zllm's strict reader when it was opened."""

    def __init__(self, archive: Archive, repo: str, path: str) -> None:
        self._rd: Optional[_Reader] = _Reader(archive, repo, path)
        self.name = self._rd.name
        lib.zllm_file_reader_random(self._rd.r)
        try:
            self._read_header()
        except BaseException:
            self._rd.close()
            self._rd = None
            raise

    def _read_header(self) -> None:
        assert self._rd is not None
        hp = POINTER(_lib.StHeader)()
        check(lib.zllm_file_reader_st_header(self._rd.r, byref(hp)))
        try:
            h = hp.contents
            self._data_start = int(h.data_start)
            self._tensors: Dict[str, TensorInfo] = {}
            for i in range(h.ntensors):
                t = h.tensors[i]
                dtype = text(lib.zllm_bind_dtype_name(t.dtype)) or "?"
                shape = tuple(int(t.shape[k]) for k in range(t.ndim))
                self._tensors[text(t.name) or ""] = TensorInfo(dtype, shape, (int(t.begin), int(t.end)))
            self._metadata = {text(h.meta_keys[i]) or "": text(h.meta_vals[i]) or "" for i in range(h.nmeta)}
        finally:
            lib.zllm_st_header_free(hp)

    def _reader(self) -> _Reader:
        if self._rd is None:
            raise ValueError(f"{self.name}: the file is closed")
        return self._rd

    def keys(self) -> List[str]:
        """The tensor names, sorted (as safetensors gives them)."""
        self._reader()
        return sorted(self._tensors)

    def metadata(self) -> Optional[Dict[str, str]]:
        """The header's __metadata__ (None when it has none or it is empty)."""
        self._reader()
        return dict(self._metadata) if self._metadata else None

    def tensor_info(self, name: str) -> TensorInfo:
        """A tensor's dtype, shape and byte range, without decoding it."""
        self._reader()
        try:
            return self._tensors[name]
        except KeyError:
            raise NotFoundError(f"{self.name}: no tensor '{name}'") from None

    def get_tensor(self, name: str) -> np.ndarray:
        """One tensor as a numpy array of its dtype and shape (BF16 as
        ml_dtypes.bfloat16, F8 as ml_dtypes' float8 types), decoded alone and
        checked against its recorded key."""
        rd = self._reader()
        info = self.tensor_info(name)
        dtype = _NUMPY_DTYPES.get(info.dtype)
        if dtype is None:
            raise NotFoundError(f"{self.name}: tensor '{name}' has dtype {info.dtype}, which numpy cannot hold")
        begin, end = info.data_offsets
        out = np.empty(end - begin, dtype=np.uint8)
        with rd.lock:
            got = rd.read_into(self._data_start + begin, out.ctypes.data, end - begin)
        if got != end - begin:
            raise FormatError(f"{self.name}: tensor '{name}' ends after {got} of {end - begin} bytes")
        return out.view(dtype).reshape(info.shape)

    def close(self) -> None:
        if self._rd is not None:
            with self._rd.lock:
                self._rd.close()
            self._rd = None

    def __repr__(self) -> str:
        return f"<zllm.SafeOpen {self.name!r} tensors={len(self._tensors) if hasattr(self, '_tensors') else 0}>"


def open_archive(path: "os.PathLike[str] | str", memory_mib: int = _DEFAULT_MEMORY_MIB,
                 threads: Optional[int] = None) -> Archive:
    """Opens an archive (the directory `zllm pack` or the survey wrote)
    read-only.  memory_mib bounds the decoded slices its open files hold
    (as `zllm serve --memory`); threads decode ahead of reads (default: one
    per CPU)."""
    return Archive(path, memory_mib=memory_mib, threads=threads)
