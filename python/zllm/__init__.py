"""zllm from Python: archives and surveys, read through libzllm.

    import zllm
    with zllm.open_archive("zllm-out/archive") as ar:
        repo = ar.repos()[0]
        with ar.safe_open(repo, "model.safetensors") as f:
            w = f.get_tensor(f.keys()[0])       # numpy; BF16 as ml_dtypes.bfloat16
        with ar.open(repo, "config.json") as f:  # a seekable binary file
            config = f.read()
    survey = zllm.load_survey("zllm-out")        # pandas tables, stats.h5 via h5py
"""
from ._lib import VERSION as library_version
from .archive import Archive, ArchiveFile, FileInfo, SafeOpen, TensorInfo, open_archive
from .errors import FormatError, LimitError, NotFoundError, ZllmError
from .survey import Survey, load_survey, read_table

__version__ = "0.1.0"
__all__ = ["Archive", "ArchiveFile", "FileInfo", "FormatError", "LimitError", "NotFoundError", "SafeOpen",
           "Survey", "TensorInfo", "ZllmError", "library_version", "load_survey", "open_archive", "read_table"]
