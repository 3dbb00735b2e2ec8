"""zllm's errors as Python exceptions.

Every failing call of libzllm raises a ZllmError (or one of its subclasses)
whose message is the library's own one-line message: it names the file and
the rule the input broke (a damaged blob names its blob and plane), as the
zllm tools print it.
"""
from __future__ import annotations

from typing import NoReturn, Optional

# the codes of zllm/error.h the package tells apart
ERROR, EFORMAT, ENOTFOUND, ELIMIT = -1, -4, -6, -7


class ZllmError(Exception):
    """A libzllm call failed.  `code` is the negative ZLLM_E* code, `code_name`
    its name as the library gives it ("EFORMAT"), and str(error) the
    library's message."""

    default_code = ERROR

    def __init__(self, message: str, code: Optional[int] = None) -> None:
        super().__init__(message)
        self.code = self.default_code if code is None else code
        from ._lib import lib  # (loaded by then: _lib raises these)
        self.code_name = lib.zllm_error_name(self.code).decode()


class FormatError(ZllmError):
    """The archive (or a file in it) broke a format rule: a damaged blob, a
    checksum or SHA-256 that does not match, a malformed safetensors header."""

    default_code = EFORMAT


class NotFoundError(ZllmError, LookupError):
    """No such repo, file or tensor in the archive."""

    default_code = ENOTFOUND


class LimitError(ZllmError):
    """Input exceeded a safety limit, or a reader did not fit the memory budget."""

    default_code = ELIMIT


_CLASSES = {EFORMAT: FormatError, ENOTFOUND: NotFoundError, ELIMIT: LimitError}


def raise_last(code: int, message: Optional[bytes]) -> NoReturn:
    text = message.decode("utf-8", "replace") if message else f"zllm error {code}"
    raise _CLASSES.get(code, ZllmError)(text, code)
