"""The lifetime protocol every owner of a C resource shares."""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, TypeVar

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


class LinkHolder:
    """What an Object (or a standalone Program) does for the attachments made
    from its programs: it holds them, so that losing the Python handle of a
    Link never detaches it, and closes them (newest first) when it closes.
    A Link that is closed earlier is released from its holder."""

    def _hold(self, attachment: Any) -> None:
        held: Dict[int, Any] = self.__dict__.setdefault("_held", {})
        held[id(attachment)] = attachment

    def _release(self, attachment: Any) -> None:
        held = self.__dict__.get("_held")
        if held is not None and held.get(id(attachment)) is attachment:
            del held[id(attachment)]

    def _held_attachments(self) -> List[Any]:
        return list(self.__dict__.get("_held", {}).values())

    def _close_held(self) -> None:
        held = self.__dict__.pop("_held", None)
        if not held:
            return
        for attachment in reversed(list(held.values())):
            try:
                attachment.close()
            except Exception as e:  # one failing detach must not keep the rest attached
                import logging  # (imported by the first warning, not with pylibbpf)

                logging.getLogger("pylibbpf").warning("closing %r: %s", attachment, e)
