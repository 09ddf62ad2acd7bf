"""``Program.attach_<kind>()`` methods for user-space probes; each calls its kind's module."""
from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional, Sequence, Union
    from ..link import Link
    from ..program import Program
    PathLike = Union[str, "os.PathLike[str]"]


def _prog(self: Any) -> "Program":
    prog: Program = self  # (an Any; no typing.cast at run time)
    return prog


class UprobeAttachMixin:
    """Attach methods for uprobes, uretprobes, uprobe_multi and USDT."""

    def attach_uprobe(self, binary: PathLike, symbol: Optional[str] = None, *,
                      offset: int = 0, pid: int = -1, retprobe: bool = False,
                      ref_ctr_offset: int = 0, cookie: int = 0) -> "Link":
        """Attach this uprobe (``SEC("uprobe")``, ``uretprobe``, sleepable ``uprobe.s``)
        to a function of a binary or library.

        ``binary``: a path, a library name (``"c"``, ``"libssl.so.3"``) or an
        executable on PATH; with ``pid``, the file that process maps (containers
        included). ``symbol``: a raw, versioned (``malloc@@GLIBC_2.2.5``) or
        demangled C++/Rust name, ``name+0x10``; ``offset`` is added to it, or is
        the file offset itself without a symbol. ``pid=-1`` probes every process.
        ``pylibbpf.elf.explain()`` shows the resolution without attaching.
        """
        from .uprobe import attach_uprobe

        return attach_uprobe(_prog(self), binary, symbol, offset=offset, pid=pid,
                             retprobe=retprobe, ref_ctr_offset=ref_ctr_offset, cookie=cookie)

    def attach_uprobe_multi(self, binary: PathLike, pattern: Optional[str] = None, *,
                            symbols: Optional[Sequence[str]] = None,
                            offsets: Optional[Sequence[int]] = None,
                            cookies: Optional[Sequence[int]] = None, pid: int = -1,
                            retprobe: bool = False,
                            session: Optional[bool] = None) -> "Link":
        """Attach this ``SEC("uprobe.multi")`` (or ``uretprobe.multi``,
        ``uprobe.session``) program to many functions through one link (cheap
        to attach and to detach): the functions matching a glob ``pattern``, or
        the given ``symbols``, or file ``offsets``. ``cookies`` (one per
        symbol/offset) are readable with ``bpf_get_attach_cookie()``.

        A ``uprobe.session`` program (``session`` defaults to the program's kind)
        runs at the entry and at the return of each call: ``bpf_session_is_return()``
        tells which, ``bpf_session_cookie()`` points to 8 bytes the entry may
        fill for that call's return, and an entry that returns non-zero skips
        the call's return (Linux 6.13+; :class:`~pylibbpf.NotSupportedError`
        before).
        """
        from .uprobe_multi import attach_uprobe_multi

        return attach_uprobe_multi(_prog(self), binary, pattern, symbols=symbols,
                                   offsets=offsets, cookies=cookies, pid=pid, retprobe=retprobe,
                                   session=session)

    def attach_usdt(self, binary: Optional[PathLike], provider: str, name: str, *,
                    pid: int = -1, cookie: int = 0) -> "Link":
        """Attach this ``SEC("usdt")`` program to USDT probe ``provider:name`` of
        ``binary`` (path or library name), or, with ``binary=None`` and a ``pid``,
        of whichever file that process maps holds it. ``cookie`` is readable with
        ``bpf_usdt_cookie()``.
        """
        from .usdt import attach_usdt

        return attach_usdt(_prog(self), binary, provider, name, pid=pid, cookie=cookie)
