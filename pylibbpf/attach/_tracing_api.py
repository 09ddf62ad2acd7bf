"""``Program.attach_<kind>()`` methods for kernel tracing hooks; each calls its kind's module."""
from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Optional, Sequence, Tuple, Union
    from ..link import Link
    from ..map import Map
    from ..program import Program
    from .perf_event import PerfEventLinks


def _prog(self: Any) -> "Program":
    prog: Program = self  # (an Any; no typing.cast at run time)
    return prog


_ATTACH_KPROBE: Optional[Callable[..., "Link"]] = None


def _kprobe_attach() -> Callable[..., "Link"]:
    global _ATTACH_KPROBE
    from .kprobe import attach_kprobe

    _ATTACH_KPROBE = attach_kprobe
    return attach_kprobe


class TracingAttachMixin:
    """Attach methods for tracepoints, kprobes, trampolines, perf events, iterators.

    Kinds the running kernel cannot do raise :class:`~pylibbpf.NotSupportedError`
    naming the kind and the reason; a tracepoint, function or syscall that does
    not exist raises :class:`~pylibbpf.BPFNotFoundError` naming it; a program of
    the wrong type raises :class:`~pylibbpf.BPFError` before any syscall.
    """

    def attach_tracepoint(self, category: str, name: str, *, cookie: int = 0) -> "Link":
        """Attach this ``tp/…`` program to the tracepoint ``category:name``
        (e.g. ``"syscalls", "sys_enter_openat"``); ``cookie`` is what
        ``bpf_get_attach_cookie()`` returns in the program. Needs tracefs."""
        from .tracepoint import attach_tracepoint

        return attach_tracepoint(_prog(self), category, name, cookie=cookie)

    def attach_raw_tracepoint(self, name: str, *, cookie: int = 0) -> "Link":
        """Attach this ``raw_tp/…`` program to the raw tracepoint ``name``
        (e.g. ``"sys_enter"``). ``cookie`` needs Linux 6.10."""
        from .tracepoint import attach_raw_tracepoint

        return attach_raw_tracepoint(_prog(self), name, cookie=cookie)

    def attach_trace(self, *, cookie: int = 0) -> "Link":
        """Attach this fentry/fexit/fmod_ret/tp_btf program to the target of its
        SEC() (or the one set with :meth:`set_attach_target` before load)."""
        from .tracing import attach_trace

        return attach_trace(_prog(self), cookie=cookie)

    def attach_kprobe(self, symbol: str, *, retprobe: bool = False, offset: int = 0,
                      cookie: int = 0) -> "Link":
        """Attach this kprobe program to kernel function ``symbol`` (+``offset``),
        at its return with ``retprobe=True``."""
        attach = _ATTACH_KPROBE or _kprobe_attach()  # no import per (hot) call
        return attach(_prog(self), symbol, retprobe=retprobe, offset=offset, cookie=cookie)

    def attach_kprobe_multi(self, pattern: Optional[str] = None, *,
                            symbols: Optional[Sequence[str]] = None,
                            cookies: Optional[Sequence[int]] = None,
                            retprobe: bool = False, session: bool = False) -> "Link":
        """Attach this ``kprobe.multi``/``kprobe.session`` program to every kernel
        function matching the glob ``pattern``, or to ``symbols`` (with one
        cookie per symbol in ``cookies``), in one link."""
        from .kprobe import attach_kprobe_multi

        return attach_kprobe_multi(_prog(self), pattern, symbols=symbols, cookies=cookies,
                                   retprobe=retprobe, session=session)

    def attach_ksyscall(self, name: str, *, retprobe: bool = False, cookie: int = 0) -> "Link":
        """Attach this kprobe program to syscall ``name``'s kernel entry point
        (``__x64_sys_<name>`` or similar, found by libbpf)."""
        from .kprobe import attach_ksyscall

        return attach_ksyscall(_prog(self), name, retprobe=retprobe, cookie=cookie)

    def attach_lsm(self) -> "Link":
        """Attach this ``lsm/<hook>`` program to its LSM hook."""
        from .tracing import attach_lsm

        return attach_lsm(_prog(self))

    def attach_freplace(self, target: Union["Program", int, None] = None,
                        function: Optional[str] = None) -> "Link":
        """Make this freplace program replace global function ``function`` of
        ``target`` (a loaded Program or a program fd). Without arguments, the
        target given before load with :meth:`set_attach_target` is used."""
        from .tracing import attach_freplace

        return attach_freplace(_prog(self), target, function)

    def set_attach_target(self, target: Union["Program", int, None], function: str) -> None:
        """Before load: attach to ``function`` of program ``target`` (freplace, or
        fentry/fexit on a BPF program), or of the kernel with ``target=None``."""
        from .tracing import set_attach_target

        set_attach_target(_prog(self), target, function)

    def attach_perf_event(self, perf_fd: int, *, cookie: int = 0,
                          dont_enable: bool = False) -> "Link":
        """Attach this program to the perf event ``perf_fd`` (the caller keeps the fd)
        and enable the event, unless ``dont_enable`` (then the caller enables it)."""
        from .perf_event import attach_perf_event

        return attach_perf_event(_prog(self), perf_fd, cookie=cookie, dont_enable=dont_enable)

    def attach_perf_events(self, event: Union[str, Tuple[int, int]] = "cpu-clock", *,
                           sample_period: Optional[int] = None,
                           sample_freq: Optional[int] = None,
                           cpus: Optional[Sequence[int]] = None, pid: int = -1,
                           cookie: int = 0, dont_enable: bool = False) -> "PerfEventLinks":
        """Open a sampling perf event on every online CPU (see
        :func:`pylibbpf.open_perf_events`) and attach this ``perf_event`` program
        to each; ``close()`` on the result closes every link and event.
        ``dont_enable`` leaves the events disabled until ``result.events.enable()``."""
        from .perf_event import attach_perf_events

        return attach_perf_events(_prog(self), event, sample_period=sample_period,
                                  sample_freq=sample_freq, cpus=cpus, pid=pid, cookie=cookie,
                                  dont_enable=dont_enable)

    def attach_iter(self, *, map: Optional["Map"] = None, tid: int = 0, pid: int = 0,
                    cgroup: Union[str, "os.PathLike[str]", int, None] = None,
                    order: Optional[str] = None) -> "Link":
        """Attach this ``iter/<target>`` program; read it with ``link.open_iter()``.
        ``map`` for map iterators (``iter/bpf_map_elem``), ``tid``/``pid`` to
        limit a task iterator to one thread or process, ``cgroup`` (a cgroup v2
        path or fd) and ``order`` (``"self_only"``, ``"descendants_pre"`` (the
        default), ``"descendants_post"``, ``"ancestors_up"``) for ``iter/cgroup``."""
        from .iter import attach_iter

        return attach_iter(_prog(self), map=map, tid=tid, pid=pid, cgroup=cgroup,
                           order=order)
