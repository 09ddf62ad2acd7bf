"""The lifetime protocol every owner of a C resource shares."""
from __future__ import annotations

from typing import TypeVar

T = TypeVar("T", bound="Closeable")


class Closeable:
    """``close()`` (the subclass's, idempotent) plus a context manager and a
    finalizer that closes what the user forgot to; exceptions while being
    garbage-collected (e.g. at interpreter exit) are swallowed."""

    def close(self) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
