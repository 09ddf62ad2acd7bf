"""``Program``: a BPF program, borrowed from an :class:`~pylibbpf.Object` or
loaded on its own from raw instructions (:meth:`Program.load_raw`)."""
from __future__ import annotations

import errno as _errno
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Union
    PathLike = Union[str, "os.PathLike[str]"]
    Buffer = Union[bytes, bytearray, memoryview]

from ._owner import Closeable, LinkHolder
from ._bpffs import check_pin
from ._ffi import cstr, ffi, lib, libbpf_log, opts, to_str
from .errors import (BPFError, ClosedError, VerifierError, as_path, check_ret,
                     error_from_errno, not_supported)
from .attach._network_api import NetworkAttachMixin
from .attach._tracing_api import TracingAttachMixin
from .attach._uprobe_api import UprobeAttachMixin
from .link import Link
from .types import AttachType, ProgramType, _coerce

if TYPE_CHECKING:
    from .disasm import Disassembly, JitedCode
    from .object import Object
    from .stream import ProgramStream
    from .token import Token

__all__ = ["Program", "ProgramInfo", "TestRunResult"]


#: log size used when a load fails without a log and is retried to get one
_FIRST_LOG_SIZE = 1 << 16
#: the kernel refuses log buffers above UINT_MAX >> 2
_MAX_LOG_SIZE = (1 << 32 >> 2) - 1
#: default buffer for a log requested with ``log_level`` before Object.load()
DEFAULT_LOG_SIZE = 1 << 24


if TYPE_CHECKING:
    from ._infos import ProgramInfo, TestRunResult


def __getattr__(name: str) -> Any:
    # the info dataclasses load on first use (_infos.py: dataclasses imports inspect)
    if name in ('ProgramInfo', 'TestRunResult'):
        from . import _infos
        value = getattr(_infos, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _as_bytes(value: Any, name: str) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{name} must be bytes-like, not {type(value).__name__}")


def _check_size(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 0 or value > 0xFFFFFFFF:
        raise ValueError(f"{name} must be between 0 and 2**32-1, not {value}")
    return value


class Program(LinkHolder, Closeable, TracingAttachMixin, UprobeAttachMixin, NetworkAttachMixin):
    """A BPF program.

    Programs of an :class:`~pylibbpf.Object` are borrowed: they keep their
    Object alive, are configured before ``Object.load()`` (``type``,
    ``expected_attach_type``, ``autoload``, ``log_level``) and are freed with it.
    A program from :meth:`load_raw` owns its file descriptor; ``close()`` it.
    """

    def __init__(self, *, _obj: Optional["Object"] = None, _ptr: Any = None,
                 _fd: int = -1, _name: str = "", _type: Optional[ProgramType] = None,
                 _log: Optional[str] = None) -> None:
        self._obj = _obj
        self._ptr = _ptr
        self._fd = _fd
        self._raw_name = _name
        self._raw_type = _type
        self._raw_log = _log
        self._log_buf: Any = None  # owned buffer libbpf writes the log into
        self._log_size = DEFAULT_LOG_SIZE
        self._raw_closed = False

    # --- construction from raw bytecode --------------------------------------
    @classmethod
    def load_raw(cls, prog_type: Union[ProgramType, str, int], insns: Buffer, *,
                 license: str = "GPL", name: str = "", sleepable: bool = False,
                 expected_attach_type: Union[AttachType, str, int, None] = None,
                 attach_btf_id: int = 0, attach_prog_fd: int = 0, kern_version: int = 0,
                 log_size: int = 0, log_level: int = 1,
                 token: Union["Token", int, None] = None) -> "Program":
        """Load a program from raw instructions (``struct bpf_insn``, 8 bytes each).

        ``log_size=0`` loads without a verifier log; when the load fails it is
        retried once with a log so that :class:`VerifierError` can show it.
        With ``log_size > 0`` the log is kept as :attr:`log` (the buffer grows
        when the log does not fit). The error always carries the errno of the
        first failure. ``token`` (a :class:`~pylibbpf.Token`) loads with the
        privileges a BPF token delegates.
        """
        from .token import BPF_F_TOKEN_FD, token_fd_of

        ptype = _coerce(ProgramType, prog_type, "program type")
        token_fd = token_fd_of(token)
        code = _as_bytes(insns, "insns")
        if not code or len(code) % 8:
            raise ValueError(f"insns must be a non-empty multiple of 8 bytes, got {len(code)}")
        if not isinstance(license, str):
            raise TypeError(f"license must be a str, not {type(license).__name__}")
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        _check_size(log_size, "log_size")
        _check_size(attach_btf_id, "attach_btf_id")
        eat = (None if expected_attach_type is None
               else _coerce(AttachType, expected_attach_type, "expected attach type"))
        keep: List[Any] = []
        insn_buf = ffi.from_buffer("struct bpf_insn[]", code)
        o = opts("bpf_prog_load_opts",
                 prog_flags=(lib.BPF_F_SLEEPABLE if sleepable else 0)
                 | (BPF_F_TOKEN_FD if token_fd else 0),
                 attach_btf_id=attach_btf_id, attach_prog_fd=attach_prog_fd,
                 kern_version=kern_version, token_fd=token_fd)
        if eat is not None:
            o.expected_attach_type = eat
        c_name = cstr(name[:15], keep)
        c_license = cstr(license, keep)
        what = f"load {ptype.name.lower()} program {name or '(unnamed)'!r}"

        def attempt(size: int, level: int) -> tuple[int, int, str]:
            buf = ffi.new("char[]", size) if size else ffi.NULL
            o.log_buf, o.log_size, o.log_level = buf, size, level if size else 0
            fd = lib.bpf_prog_load(ptype, c_name, c_license, insn_buf, len(code) // 8, o)
            err = ffi.errno
            text = ffi.string(buf).decode("utf-8", "replace") if size else ""
            return fd, err, text

        size = log_size
        fd, err, log = attempt(size, log_level)
        first_err = err
        while fd < 0 and size and err == _errno.ENOSPC and size < _MAX_LOG_SIZE:
            size = min(size * 4, _MAX_LOG_SIZE)  # the log did not fit: grow, retry
            fd, err, log = attempt(size, log_level)
            first_err = err
        if fd < 0 and not size:
            # no log was asked for: retry with one, to explain the failure
            size = _FIRST_LOG_SIZE
            _, err2, log = attempt(size, max(log_level, 1))
            while err2 == _errno.ENOSPC and size < _MAX_LOG_SIZE:
                size = min(size * 4, _MAX_LOG_SIZE)
                _, err2, log = attempt(size, max(log_level, 1))
        if fd < 0:
            raise _load_error(first_err, name or "(unnamed)", ptype, log, what,
                              section=_raw_section(eat, attach_btf_id), attach_type=eat)
        return cls(_fd=fd, _name=name, _type=ptype, _log=log if log_size else None)

    # --- state ---------------------------------------------------------------
    def _check(self) -> None:
        if self._obj is not None:
            if self._obj._ptr is None:
                raise ClosedError(f"Program {self._raw_name!r} (its Object was closed)")
        elif self._raw_closed:
            raise ClosedError(f"Program {self._raw_name!r}")

    def _check_not_loaded(self, what: str, *, after_prepare: bool = False) -> None:
        self._check()
        if self._ptr is None:
            raise BPFError(_errno.EINVAL, f"{what}: program {self.name!r} was loaded raw; "
                                          "this setting exists only before Object.load()")
        if self._obj is not None and self._obj.loaded:
            raise BPFError(_errno.EBUSY, f"{what}: Object {self._obj.name!r} is already loaded")
        if self._obj is not None and self._obj._prepared and not after_prepare:
            raise BPFError(_errno.EBUSY, f"{what}: Object {self._obj.name!r} is already "
                                         "prepared (set it before prepare())")

    @property
    def closed(self) -> bool:
        """True once the program (or its Object) was closed."""
        if self._obj is not None:
            return self._obj._ptr is None
        return self._raw_closed

    @property
    def object(self) -> Optional["Object"]:
        """The Object this program belongs to (None for raw programs)."""
        return self._obj

    @property
    def name(self) -> str:
        """The program's (function) name."""
        if self._ptr is not None and not self.closed:
            return to_str(lib.bpf_program__name(self._ptr))
        return self._raw_name

    @property
    def section(self) -> str:
        """Its ELF section, i.e. the SEC() definition (empty for raw programs)."""
        self._check()
        if self._ptr is None:
            return ""
        return to_str(lib.bpf_program__section_name(self._ptr))

    @property
    def type(self) -> ProgramType:
        """The program type; settable before load."""
        self._check()
        if self._ptr is None:
            assert self._raw_type is not None
            return self._raw_type
        return ProgramType(lib.bpf_program__type(self._ptr))

    @type.setter
    def type(self, value: Union[ProgramType, str, int]) -> None:
        self._check_not_loaded("set program type")
        t = _coerce(ProgramType, value, "program type")
        check_ret(lib.bpf_program__set_type(self._ptr, t), f"set type of {self.name!r}")

    @property
    def expected_attach_type(self) -> AttachType:
        """The expected attach type; settable before load."""
        self._check_has_ptr("expected_attach_type")
        return AttachType(lib.bpf_program__expected_attach_type(self._ptr))

    @expected_attach_type.setter
    def expected_attach_type(self, value: Union[AttachType, str, int]) -> None:
        self._check_not_loaded("set expected attach type")
        t = _coerce(AttachType, value, "attach type")
        check_ret(lib.bpf_program__set_expected_attach_type(self._ptr, t),
                  f"set expected attach type of {self.name!r}")

    def _check_has_ptr(self, what: str) -> None:
        self._check()
        if self._ptr is None:
            raise BPFError(_errno.EINVAL, f"{what} is not known for raw program {self.name!r}")

    @property
    def autoload(self) -> bool:
        """Whether ``Object.load()`` loads this program; settable before load."""
        self._check_has_ptr("autoload")
        return bool(lib.bpf_program__autoload(self._ptr))

    @autoload.setter
    def autoload(self, value: bool) -> None:
        self._check_not_loaded("set autoload", after_prepare=True)
        check_ret(lib.bpf_program__set_autoload(self._ptr, bool(value)),
                  f"set autoload of {self.name!r}")

    @property
    def autoattach(self) -> bool:
        """Whether ``Object.attach_all()`` attaches this program."""
        self._check_has_ptr("autoattach")
        return bool(lib.bpf_program__autoattach(self._ptr))

    @autoattach.setter
    def autoattach(self, value: bool) -> None:
        self._check_has_ptr("autoattach")
        lib.bpf_program__set_autoattach(self._ptr, bool(value))

    @property
    def flags(self) -> int:
        """BPF_F_* load flags (e.g. BPF_F_SLEEPABLE); settable before load."""
        self._check_has_ptr("flags")
        return int(lib.bpf_program__flags(self._ptr))

    @flags.setter
    def flags(self, value: int) -> None:
        self._check_not_loaded("set flags")
        check_ret(lib.bpf_program__set_flags(self._ptr, _check_size(value, "flags")),
                  f"set flags of {self.name!r}")

    @property
    def log_level(self) -> int:
        """Verifier log level for ``Object.load()`` (0 off, 1, 2 verbose, 4 stats).

        A non-zero level keeps the log, readable as :attr:`log` after load.
        """
        self._check_has_ptr("log_level")
        return int(lib.bpf_program__log_level(self._ptr))

    @log_level.setter
    def log_level(self, value: int) -> None:
        self._check_not_loaded("set log level", after_prepare=True)
        check_ret(lib.bpf_program__set_log_level(self._ptr, _check_size(value, "log_level")),
                  f"set log level of {self.name!r}")
        if value and self._log_buf is None:
            self._log_buf = ffi.new("char[]", self._log_size)
            check_ret(lib.bpf_program__set_log_buf(self._ptr, self._log_buf, self._log_size),
                      f"set log buffer of {self.name!r}")

    @property
    def log(self) -> Optional[str]:
        """The verifier log kept for this program, or None when none was asked for."""
        self._check()
        if self._ptr is None:
            return self._raw_log
        if self._log_buf is None:
            return None
        return ffi.string(self._log_buf).decode("utf-8", "replace")

    @property
    def insn_count(self) -> int:
        """Number of instructions (before load: as in the ELF; after: as loaded)."""
        self._check()
        if self._ptr is None:
            return self.info().xlated_len // 8
        return int(lib.bpf_program__insn_cnt(self._ptr))

    @property
    def loaded(self) -> bool:
        """True when the program is in the kernel and has a file descriptor."""
        if self.closed:
            return False
        if self._ptr is None:
            return True
        return int(lib.bpf_program__fd(self._ptr)) >= 0

    @property
    def fd(self) -> int:
        """The program's file descriptor (raises before load)."""
        self._check()
        if self._ptr is None:
            return self._fd
        fd = int(lib.bpf_program__fd(self._ptr))
        if fd < 0:
            raise BPFError(_errno.EINVAL, f"program {self.name!r} is not loaded "
                                          "(call Object.load(), or autoload was off)")
        return fd

    def info(self) -> ProgramInfo:
        """Ask the kernel about the loaded program."""
        fd = self.fd
        info = ffi.new("struct bpf_prog_info *")
        size = ffi.new("__u32 *", ffi.sizeof("struct bpf_prog_info"))
        check_ret(lib.bpf_prog_get_info_by_fd(fd, info, size), f"info of program {self.name!r}")
        try:
            ptype: Union[ProgramType, int] = ProgramType(info.type)
        except ValueError:
            ptype = int(info.type)
        from ._infos import ProgramInfo
        return ProgramInfo(
            type=ptype, id=int(info.id), name=ffi.string(info.name).decode(),
            tag=bytes(ffi.buffer(info.tag, 8)).hex(), xlated_len=int(info.xlated_prog_len),
            jited_len=int(info.jited_prog_len), verified_insns=int(info.verified_insns),
            run_count=int(info.run_cnt), run_time_ns=int(info.run_time_ns),
            btf_id=int(info.btf_id),
        )

    @property
    def id(self) -> int:
        """The kernel's id of the loaded program."""
        return self.info().id

    @property
    def tag(self) -> str:
        """The program's tag (hash of its instructions), as hex."""
        return self.info().tag

    # --- pinning ---------------------------------------------------------------
    def pin(self, path: PathLike) -> None:
        """Pin the loaded program in bpffs at ``path``."""
        path = as_path(path)
        what = f"pin program {self.name!r} at {path!r}"
        self._check()
        check_pin(path, what, libbpf_makes_parent=self._ptr is not None)
        if self._ptr is not None:
            self.fd  # raises when not loaded
            with libbpf_log() as log:
                check_ret(lib.bpf_program__pin(self._ptr, path.encode()), what,
                          libbpf_log=log.warnings)
        else:
            check_ret(lib.bpf_obj_pin(self.fd, path.encode()), what)

    def unpin(self, path: PathLike) -> None:
        """Remove the pin at ``path``."""
        path = as_path(path)
        self._check()
        if self._ptr is not None:
            check_ret(lib.bpf_program__unpin(self._ptr, path.encode()),
                      f"unpin program {self.name!r} from {path!r}")
        else:
            try:
                os.unlink(path)
            except OSError as e:
                raise error_from_errno(e.errno or _errno.ENOENT,
                                       f"unpin program {self.name!r} from {path!r}") from None

    @classmethod
    def open_pinned(cls, path: PathLike) -> "Program":
        """Open a program pinned at ``path``; the result owns its fd."""
        path = as_path(path)
        fd = lib.bpf_obj_get(path.encode())
        check_ret(fd, f"open pinned program {path!r}")
        prog = cls(_fd=fd, _name=os.path.basename(path))
        try:
            info = prog.info()
        except BPFError:
            prog.close()
            raise
        if not isinstance(info.type, ProgramType):
            prog.close()
            raise BPFError(_errno.EINVAL, f"{path!r}: unknown program type {info.type}")
        prog._raw_type = info.type
        prog._raw_name = info.name or prog._raw_name
        return prog

    @classmethod
    def from_id(cls, prog_id: int) -> "Program":
        """Open the loaded program with kernel id ``prog_id`` (any program on the
        system, e.g. from :func:`pylibbpf.system.programs`); the result owns its fd."""
        if not isinstance(prog_id, int) or isinstance(prog_id, bool):
            raise TypeError(f"program id must be an int, not {type(prog_id).__name__}")
        if not 0 < prog_id <= 0xFFFFFFFF:
            raise ValueError(f"program id must be between 1 and 2**32-1, not {prog_id}")
        fd = lib.bpf_prog_get_fd_by_id(prog_id)
        check_ret(fd, f"open program id {prog_id}")
        prog = cls(_fd=fd, _name=f"id {prog_id}")
        try:
            info = prog.info()
        except BPFError:
            prog.close()
            raise
        prog._raw_type = info.type if isinstance(info.type, ProgramType) else None
        if prog._raw_type is None:
            prog.close()
            raise BPFError(_errno.EINVAL, f"program id {prog_id}: unknown program type "
                                          f"{info.type}")
        prog._raw_name = info.name or prog._raw_name
        return prog

    # --- its code ----------------------------------------------------------------
    def disassemble(self) -> "Disassembly":
        """The program's instructions, decoded (:mod:`pylibbpf.disasm`).

        Loaded: the kernel's translated code, as it runs (helpers and kfuncs by
        name, maps by name, its functions, and the source line of each
        instruction when the program has BTF line info). An Object's program not
        loaded yet: its instructions as in the ELF file, with what their
        relocations name (maps, global data, kfuncs; libbpf fills them in at
        load); functions it calls are not appended yet.
        """
        from ._progdump import disassembly, read_code
        from .disasm import Disassembly, Symbols, disassemble

        self._check()
        if self._ptr is not None and not self.loaded:
            n = int(lib.bpf_program__insn_cnt(self._ptr))
            ptr = lib.bpf_program__insns(self._ptr)
            raw = bytes(ffi.buffer(ptr, n * 8)) if n and ptr != ffi.NULL else b""
            from ._progdump import elf_relocations, section_variables

            relocs = {}
            offsets: Dict[int, int] = {}
            if self._obj is not None and self._obj._elf_path:
                relocs = elf_relocations(self._obj._elf_path, self.section, self.name,
                                         offsets)
            values = section_variables(self._obj, {n for n, k in relocs.values()
                                                   if k == "data"})
            return Disassembly(disassemble(raw, Symbols(relocations=relocs,
                                                        relocation_offsets=offsets,
                                                        map_values=values)),
                               functions={0: self.name}, name=self.name)
        return disassembly(read_code(self.fd, f"program {self.name!r}"))

    def jited(self) -> "JitedCode":
        """The program's JITed machine code, per function; decoded to assembly
        when the optional ``capstone`` package is installed (``pylibbpf[disasm]``),
        else bytes only (its ``missing`` says so)."""
        from ._progdump import jited, read_code

        what = f"program {self.name!r}"
        return jited(read_code(self.fd, what), what)

    def xlated_code(self) -> bytes:
        """The program's translated instructions as the kernel holds them (raw
        ``struct bpf_insn`` bytes)."""
        from ._progdump import read_code

        return read_code(self.fd, f"program {self.name!r}").xlated

    # --- attaching: Program.attach() here, attach_<kind>() in the mixins --------
    def attach(self) -> Link:
        """Attach by the program's SEC() definition (e.g. ``tp/sched/sched_switch``)."""
        from .attach.section import attach_by_section

        link = attach_by_section(self)
        assert link is not None
        return link

    # --- streams ---------------------------------------------------------------
    @property
    def stdout(self) -> "ProgramStream":
        """The program's BPF stdout (Linux 6.17+): a readable binary file of what
        it printed with ``bpf_stream_printk(BPF_STDOUT, …)``; reading consumes it.
        See :mod:`pylibbpf.stream`."""
        from .stream import BPF_STDOUT, ProgramStream

        self._check()
        return ProgramStream(self, BPF_STDOUT)

    @property
    def stderr(self) -> "ProgramStream":
        """The program's BPF stderr (Linux 6.17+): what it printed to
        ``BPF_STDERR``, and the kernel's own reports about it (a timed-out
        ``may_goto`` loop or lock, a deadlock, an arena fault)."""
        from .stream import BPF_STDERR, ProgramStream

        self._check()
        return ProgramStream(self, BPF_STDERR)

    # --- running ---------------------------------------------------------------
    def test_run(self, data: Optional[Buffer] = None, *, data_out_size: Optional[int] = None,
                 ctx: Optional[Buffer] = None, ctx_out_size: Optional[int] = None,
                 repeat: int = 1, flags: int = 0, cpu: int = 0,
                 batch_size: int = 0) -> TestRunResult:
        """Run the program in the kernel on ``data`` and/or ``ctx`` (BPF_PROG_TEST_RUN).

        Returns the program's return value, the data and context it left (sized
        by ``data_out_size``/``ctx_out_size``; by default room for the input plus
        4 KiB of data growth, and the context's own size), and the average
        duration per run in ns.

        ``syscall`` programs take only ``ctx``, run once, and may write to it:
        ``ctx_out`` is then the context as the program left it.
        """
        fd = self.fd
        for name, value in (("repeat", repeat), ("flags", flags), ("cpu", cpu),
                            ("batch_size", batch_size)):
            _check_size(value, name)
        syscall = self.type == ProgramType.SYSCALL
        if syscall:
            if data is not None or data_out_size or ctx_out_size or flags or repeat > 1:
                raise ValueError("a syscall program's test run takes only ctx (no data, "
                                 "data_out_size, ctx_out_size, flags, or repeat > 1)")
            repeat = 0
        o = opts("bpf_test_run_opts", repeat=repeat, flags=flags, cpu=cpu,
                 batch_size=batch_size)
        # every buffer the kernel sees is our own copy: a syscall program writes
        # back into ctx_in, which must never be an immutable Python object
        data_out = ctx_out = ctx_in = None
        if data is not None:
            raw = _as_bytes(data, "data")
            data_in = ffi.new("char[]", raw) if raw else ffi.NULL
            o.data_in, o.data_size_in = data_in, len(raw)
            if data_out_size is None:
                data_out_size = len(raw) + 4096
        if data_out_size:
            _check_size(data_out_size, "data_out_size")
            data_out = ffi.new("char[]", data_out_size)
            o.data_out, o.data_size_out = data_out, data_out_size
        if ctx is not None:
            raw_ctx = _as_bytes(ctx, "ctx")
            ctx_in = ffi.new("char[]", max(len(raw_ctx), 1))
            ffi.memmove(ctx_in, raw_ctx, len(raw_ctx))
            o.ctx_in, o.ctx_size_in = ctx_in, len(raw_ctx)
            if ctx_out_size is None and not syscall:
                ctx_out_size = len(raw_ctx)
        if ctx_out_size:
            _check_size(ctx_out_size, "ctx_out_size")
            ctx_out = ffi.new("char[]", ctx_out_size)
            o.ctx_out, o.ctx_size_out = ctx_out, ctx_out_size
        ret = lib.bpf_prog_test_run_opts(fd, o)
        if ret < 0:
            raise self._test_run_error(-ret, None if data is None else len(raw))
        if syscall:
            ctx_bytes = bytes(ffi.buffer(ctx_in, o.ctx_size_in)) if ctx_in is not None else None
        else:
            ctx_bytes = bytes(ffi.buffer(ctx_out, o.ctx_size_out)) if ctx_out is not None else None
        from ._infos import TestRunResult
        return TestRunResult(
            retval=int(o.retval),
            data_out=bytes(ffi.buffer(data_out, o.data_size_out)) if data_out is not None else None,
            ctx_out=ctx_bytes,
            duration_ns=int(o.duration),
        )

    def _test_run_error(self, err: int, size: Optional[int]) -> BPFError:
        """The error of a failed test run; for EINVAL on a packet program, what size
        of ``data`` its type takes (the kernel says nothing more than EINVAL)."""
        ptype = self.type
        kind = ptype.name.lower() if isinstance(ptype, ProgramType) else f"type {ptype}"
        what = f"test run of program {self.name!r} ({kind})"
        if size is not None:
            what += f" with {size} bytes of data"
        hint = ""
        need = _TEST_RUN_MIN_DATA.get(ptype) if isinstance(ptype, ProgramType) else None
        if err == _errno.EINVAL and need is not None:
            least, why = need
            if size is None:
                hint = (f"{kind} programs run on a packet: pass data= of at least "
                        f"{least} bytes ({why})")
            elif size < least:
                hint = (f"{kind} programs need at least {least} bytes of data ({why}); "
                        f"got {size}")
            elif size > _TEST_RUN_LINEAR_MAX and ptype != ProgramType.XDP:
                hint = (f"{kind} programs take at most one page of data less the kernel's "
                        f"head- and tailroom (3712 bytes with 4 KiB pages on x86-64); "
                        f"got {size}")
        return error_from_errno(err, what, hint=hint)

    # --- lifetime --------------------------------------------------------------
    def close(self) -> None:
        """Close a raw program: detach its links (pinned ones stay), then close
        its fd. Borrowed programs are closed with their Object."""
        if self._obj is not None or self._raw_closed:
            return
        self._close_held()
        self._raw_closed = True
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def __repr__(self) -> str:
        if self.closed:
            return f"<pylibbpf.Program {self._raw_name!r} closed>"
        return f"<pylibbpf.Program {self.name!r} type={self.type.name.lower()}>"


#: program types whose test run takes a packet: the least ``data`` the kernel
#: takes (net/bpf/test_run.c: an Ethernet header for the skb and XDP runs, an
#: IPv4 header for netfilter's), and what those bytes are
_ETH = (14, "an Ethernet header, ETH_HLEN")
_TEST_RUN_MIN_DATA = {
    ProgramType.XDP: _ETH, ProgramType.SCHED_CLS: _ETH, ProgramType.SCHED_ACT: _ETH,
    ProgramType.SOCKET_FILTER: _ETH, ProgramType.CGROUP_SKB: _ETH,
    ProgramType.LWT_IN: _ETH, ProgramType.LWT_OUT: _ETH, ProgramType.LWT_XMIT: _ETH,
    ProgramType.FLOW_DISSECTOR: _ETH, ProgramType.NETFILTER: (20, "an IPv4 header"),
}
#: above this, EINVAL may mean "too long" (a page less skb head- and tailroom is less)
_TEST_RUN_LINEAR_MAX = 3072


def _raw_section(attach_type: Optional[int], btf_id: int) -> str:
    """What SEC() a raw program with this attach type and kernel BTF target would
    have: ``iter/TARGET`` for iterators (so errors name the target), else ""."""
    from .attach._kinds import vmlinux_type_name

    if attach_type != AttachType.TRACE_ITER or not btf_id:
        return ""
    name = vmlinux_type_name(btf_id)
    return "iter/" + name.removeprefix("bpf_iter_") if name else ""


def _load_error(err: int, name: str, ptype: ProgramType, log: str, what: str,
                libbpf_log: Any = (), *, section: str = "",
                attach_type: Optional[int] = None) -> BPFError:
    """Turn a failed program load into the right exception: NotSupportedError when
    the kernel refused the kind before verifying anything, else VerifierError."""
    from .attach._kinds import load_refusal

    refusal = load_refusal(err, ptype, log, section=section, attach_type=attach_type)
    if refusal:  # (not_supported drops libbpf's "try raising 'ulimit -l'": it misleads)
        return not_supported(err, what, refusal, libbpf_log=libbpf_log, program=name)
    if log.strip() or err in (_errno.EACCES, _errno.EINVAL, _errno.E2BIG):
        return VerifierError(err, name, log, libbpf_log=libbpf_log)
    return error_from_errno(err, what, libbpf_log=libbpf_log)

