"""BPF streams: a program's own stdout and stderr (Linux 6.17+).

A program writes with the ``bpf_stream_vprintk`` kfunc (libbpf's
``bpf_stream_printk(BPF_STDOUT, "fmt", args…)`` macro); the kernel itself writes
to a program's stderr when it stops it (a ``may_goto`` loop or a resilient
spin lock that timed out, a deadlock, an arena fault, with a stack trace).
User space drains what is buffered with ``BPF_PROG_STREAM_READ_BY_FD``:
:attr:`Program.stdout <pylibbpf.Program.stdout>` and :attr:`~pylibbpf.Program.stderr`
are readable binary files over it.

>>> prog.stdout.read_text()                                      # doctest: +SKIP
'hello 42 from bpf\\n'
"""
from __future__ import annotations

import errno as _errno
import io

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, List, Union

from ._ffi import ffi, lib
from .errors import BPFError, error_from_errno, not_supported

if TYPE_CHECKING:
    from .program import Program

__all__ = ["ProgramStream", "BPF_STDOUT", "BPF_STDERR"]

#: stream ids (enum bpf_stream_id)
BPF_STDOUT = 1
BPF_STDERR = 2
_NAMES = {BPF_STDOUT: "stdout", BPF_STDERR: "stderr"}
#: one read's buffer: the kernel caps a stream at 100,000 bytes
_CHUNK = 1 << 16


class ProgramStream(io.RawIOBase):
    """A BPF program's stdout or stderr, read-only and non-blocking: ``read()``
    returns what the kernel buffered so far (``b""`` when nothing is), and
    consumes it; :meth:`read_text` decodes it. It keeps its program open."""

    def __init__(self, program: "Program", stream_id: int) -> None:
        super().__init__()
        if stream_id not in _NAMES:
            raise ValueError(f"stream_id must be 1 (stdout) or 2 (stderr), not {stream_id!r}")
        self._program = program
        self.stream_id = stream_id
        self.name = _NAMES[stream_id]

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        """Read up to ``len(buffer)`` bytes of the stream into ``buffer``."""
        with memoryview(buffer) as mv, mv.cast("B") as view:
            size = min(len(view), _CHUNK)
            if not size:
                return 0
            fd = self._program.fd  # raises when the program is closed or not loaded
            # the kernel writes into memory of our own, copied out after: no buffer of
            # the caller's stays exported to cffi (an exception's traceback would keep
            # it, and a garbage-collected memoryview with an export crashes)
            cbuf = ffi.new("char[]", size)
            n = int(lib.bpf_prog_stream_read(fd, self.stream_id, cbuf, size, ffi.NULL))
            if n < 0:
                raise _stream_error(-n, f"read {self.name} of program {self._program.name!r}")
            view[:n] = ffi.buffer(cbuf, n)
            return n

    def readall(self) -> bytes:
        chunks: List[bytes] = []
        buf = bytearray(_CHUNK)
        while True:
            n = self.readinto(buf)
            if not n:
                return b"".join(chunks)
            chunks.append(bytes(buf[:n]))

    def read_text(self, errors: str = "replace") -> str:
        """Everything buffered so far, decoded as UTF-8."""
        return self.readall().decode("utf-8", errors)

    def __repr__(self) -> str:
        return f"<ProgramStream {self.name} of {self._program.name!r}>"


def _stream_error(err: int, what: str) -> BPFError:
    from .system import support

    if err in (_errno.EINVAL, _errno.ENOSYS, _errno.EOPNOTSUPP):
        sup = support("prog_stream")
        if not sup:
            return not_supported(err, what, f"prog_stream: {sup.reason}")
    return error_from_errno(err, what)


def stream_id_of(stream: Union[int, str]) -> int:
    if stream in ("stdout", BPF_STDOUT):
        return BPF_STDOUT
    if stream in ("stderr", BPF_STDERR):
        return BPF_STDERR
    raise ValueError(f"stream must be 'stdout' (1) or 'stderr' (2), not {stream!r}")
