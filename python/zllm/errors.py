"""zllm's errors as Python exceptions.

Every failing call of libzllm raises a ZllmError (or one of its subclasses)
whose message is the library's own one-line message: it names the file and
the rule the input broke (a damaged blob names its blob and plane), as the
zllm tools print it.
"""
from __future__ import annotations

from typing import NoReturn, Optional

# zllm/error.h's codes
_NAMES = {-1: "ERROR", -2: "ENOMEM", -3: "EIO", -4: "EFORMAT", -5: "EINVAL", -6: "ENOTFOUND", -7: "ELIMIT",
          -8: "EUNSAFE", -9: "EMPI", -11: "ECHANGED"}


class ZllmError(Exception):
    """A libzllm call failed.  `code` is the negative ZLLM_E* code, `code_name`
    its name ("EFORMAT"), and str(error) the library's message."""

    def __init__(self, message: str, code: int = -1) -> None:
        super().__init__(message)
        self.code = code
        self.code_name = _NAMES.get(code, "ERROR")


class FormatError(ZllmError):
    """The archive (or a file in it) broke a format rule: a damaged blob, a
    checksum or SHA-256 that does not match, a malformed safetensors header."""


class NotFoundError(ZllmError, LookupError):
    """No such repo, file or tensor in the archive."""


class LimitError(ZllmError):
    """Input exceeded a safety limit, or a reader did not fit the memory budget."""


_CLASSES = {-4: FormatError, -6: NotFoundError, -7: LimitError}


def raise_last(code: int, message: Optional[bytes]) -> NoReturn:
    text = message.decode("utf-8", "replace") if message else f"zllm error {code}"
    raise _CLASSES.get(code, ZllmError)(text, code)
