"""What every zllm object that holds something open shares: `with` closes
it, and so does garbage collection (quietly, as files do)."""
from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T", bound="Closing")


class Closing:
    def close(self) -> None:  # each class closes what it holds
        raise NotImplementedError

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
