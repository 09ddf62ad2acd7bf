"""The dataclasses of what the kernel reports: :class:`~pylibbpf.map.MapInfo`,
:class:`~pylibbpf.program.ProgramInfo` and :class:`~pylibbpf.program.TestRunResult`.

Kept apart and imported on first use (``Map.info``, ``Program.info``,
``Program.test_run``, or the names from ``pylibbpf``, ``pylibbpf.map`` and
``pylibbpf.program``): ``dataclasses`` pulls in ``inspect``, a good part of what
``import pylibbpf`` would otherwise cost. Each presents itself as its home
module's (``__module__``), where it is documented.
"""
from __future__ import annotations

from dataclasses import dataclass

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional, Union

from .types import MapType, ProgramType

__all__ = ["MapInfo", "ProgramInfo", "TestRunResult"]


@dataclass(frozen=True)
class MapInfo:
    """What the kernel reports about a map (``bpf_map_info``)."""

    type: Union[MapType, int]
    id: int
    name: str
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    btf_id: int


@dataclass(frozen=True)
class TestRunResult:
    """The outcome of :meth:`Program.test_run` (``BPF_PROG_TEST_RUN``).

    >>> r = prog.test_run(data=bytes(64), repeat=1000)           # doctest: +SKIP
    >>> r.retval, len(r.data_out), r.duration_ns                  # doctest: +SKIP
    (2, 64, 21)
    """

    __test__ = False  # not a pytest class

    #: what the program returned (for XDP: ``XDP_PASS`` = 2, ``XDP_DROP`` = 1 …)
    retval: int
    #: the packet as the program left it (changed, grown or shrunk); None without ``data``
    data_out: Optional[bytes]
    #: the context as the program left it (``ctx=``; a syscall program's ``ctx``)
    ctx_out: Optional[bytes]
    #: the kernel's average time per run, in nanoseconds (over ``repeat`` runs)
    duration_ns: int

    @property
    def duration(self) -> float:
        """:attr:`duration_ns` in seconds, as ``time.perf_counter()`` counts."""
        return self.duration_ns / 1e9


@dataclass(frozen=True)
class ProgramInfo:
    """What the kernel reports about a loaded program (``bpf_prog_info``)."""

    type: Union[ProgramType, int]
    id: int
    name: str
    tag: str
    xlated_len: int
    jited_len: int
    verified_insns: int
    run_count: int
    run_time_ns: int
    btf_id: int


MapInfo.__module__ = "pylibbpf.map"
ProgramInfo.__module__ = TestRunResult.__module__ = "pylibbpf.program"
