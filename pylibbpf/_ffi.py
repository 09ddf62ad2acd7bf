"""The only module that imports the compiled extension.

libbpf's print callback is routed to ``logging.getLogger("pylibbpf")``; a call
can also capture what libbpf prints while it runs (:func:`libbpf_log`), so an
exception can carry libbpf's own explanation.
"""
from __future__ import annotations

import sys as _sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging
    from typing import Any, Dict, List, Optional, Tuple


def _extension_error(err: ImportError) -> str:
    """Why ``pylibbpf._libbpf`` did not import, and what to do about it.

    Four cases: the extension is not built; it is built but cffi's backend
    (``_cffi_backend``) is missing for this interpreter, which nearly always
    means the wrong Python (the system's ``python3`` instead of the virtual
    environment's); it is built for another Python version or ABI; or it is
    there and fails to load (a missing shared library, say).
    """
    import importlib.machinery
    import re
    import sysconfig
    from pathlib import Path

    here = Path(__file__).resolve().parent
    top = here.parent
    python = f"{_sys.executable or 'python'} (Python {_sys.version.split()[0]})"
    ext_suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    built = sorted(p.name for p in here.glob("_libbpf*.so"))
    loadable = [n for n in built if n[len("_libbpf"):] in importlib.machinery.EXTENSION_SUFFIXES]

    def how_to_run(otherwise: str) -> str:
        venv_python = top / ".venv" / "bin" / "python"
        if not venv_python.exists():
            return otherwise
        lines = [f"Use the virtual environment's Python, which has pylibbpf's dependencies "
                 f"(in {top}):",
                 f"  {venv_python} …",
                 "  . .venv/bin/activate   then   python …"]
        if (top / "dev.sh").exists():
            lines.append("  ./dev.sh python …      (sets up first)")
        lines.append("sudo resets PATH, so 'sudo python3' is the system's Python even with "
                     "the environment active: use 'sudo .venv/bin/python …'.")
        return "\n".join(lines)

    if getattr(err, "name", None) == "_cffi_backend" or "_cffi_backend" in str(err):
        return (f"cffi is not installed for the Python running now, {python}: pylibbpf's "
                f"compiled extension {here / (loadable or built or ['_libbpf'])[0]} is built, "
                f"but it needs cffi's backend ({err}). This is usually the wrong interpreter "
                f"(the system's python3, not the one pylibbpf was installed with).\n"
                + how_to_run("Run the Python that pylibbpf was installed with, or install "
                             f"pylibbpf's dependencies for this one ('{_sys.executable} -m pip "
                             "install cffi pyelftools …', in a virtual environment)."))
    if not built:
        return (f"pylibbpf's compiled extension pylibbpf._libbpf is not built: there is no "
                f"_libbpf*.so in {here}. In a checkout, run ./dev.sh setup (as root: Debian "
                f"packages, .venv, build) or 'pip install .' (see README, 'Install "
                f"elsewhere').\n(error: {err})")
    if not loadable:
        advice = how_to_run("")
        others = []
        for name in built:
            m = re.search(r"\.cpython-(\d)(\d+)", name)
            others.append(f"{name} (CPython {m.group(1)}.{m.group(2)})" if m else name)
        return (f"pylibbpf's compiled extension in {here} was built for another Python: "
                f"found {', '.join(others)}, but {python} loads only _libbpf{ext_suffix}. "
                f"Rebuild it with this Python (./dev.sh setup in a checkout, or "
                f"'{_sys.executable} -m pip install .'), or run the Python it was built for."
                + (f"\n{advice}" if advice else ""))
    hint = ("Install the Debian packages libelf1 and zlib1g."
            if "cannot open shared object file" in str(err)
            else "Rebuild it with this Python (./dev.sh setup in a checkout, or "
                 f"'{_sys.executable} -m pip install .').")
    return (f"pylibbpf's compiled extension {here / loadable[0]} failed to load in "
            f"{python}: {err}\n{hint}")


try:
    from ._libbpf import ffi, lib
except ImportError as _e:  # pragma: no cover - build problem, tested in a subprocess
    # the message quotes the original error; one traceback is enough
    raise ImportError(_extension_error(_e), name="pylibbpf._libbpf") from None

if lib.pylibbpf_fast_install() != 0:  # pragma: no cover - the error was printed
    raise ImportError("pylibbpf: could not set up the module pylibbpf._fast")

fast: Any = _sys.modules["pylibbpf._fast"]

__all__ = ["ffi", "lib", "fast", "get_logger", "libbpf_log", "sync_log_level", "cstr", "opts",
           "to_str"]

# logging is imported when something is first logged (or when the user's program
# has imported it), not with pylibbpf: the logger is logging.getLogger("pylibbpf")
_logger: Optional[logging.Logger] = None


def get_logger() -> logging.Logger:
    """``logging.getLogger("pylibbpf")``, importing logging on first use."""
    global _logger
    if _logger is None:
        import logging
        _logger = logging.getLogger("pylibbpf")
    return _logger


# logging.DEBUG, INFO, WARNING (fixed values, documented by logging)
_DEBUG, _INFO, _WARNING = 10, 20, 30
_LEVELS = {
    lib.LIBBPF_WARN: _WARNING,
    lib.LIBBPF_INFO: _INFO,
    lib.LIBBPF_DEBUG: _DEBUG,
}

class LogCapture(fast.LogCaptureBase):  # type: ignore[misc, name-defined]
    """What libbpf printed during one call: (level, text) pairs.

    The C print function appends the messages to a buffer of this capture while
    it is on (``_csrc/shims.c``; entering and leaving are C calls, ``_csrc/fast.c``);
    they are read from it once, when asked for, not through a Python callback
    per line."""

    def __init__(self) -> None:
        self._records: List[Tuple[int, str]] = []

    @property
    def records(self) -> List[Tuple[int, str]]:
        raw = self.take()
        if raw:
            self._records += _parse_records(raw)
        return self._records

    @property
    def warnings(self) -> List[str]:
        return [text.rstrip("\n") for level, text in self.records if level == _WARN]

    def text(self) -> str:
        return "".join(text for _, text in self.records)

    def _log_debug(self) -> None:
        # called by __exit__ when libbpf prints at DEBUG, i.e. the logger is there
        logger = get_logger()
        if logger.isEnabledFor(_DEBUG):
            for _, text in self.records:
                logger.debug("%s", text.rstrip("\n"))


_WARN = int(lib.LIBBPF_WARN)


def _parse_records(raw: bytes) -> List[Tuple[int, str]]:
    # each record: b"0" + level, the text, b"\0"
    return [(rec[0] - 48, rec[1:].decode("utf-8", "replace")) for rec in raw.split(b"\0")[:-1]]


@ffi.def_extern()  # type: ignore[misc, untyped-decorator, unused-ignore]
def pylibbpf_print_cb(level: int, msg: Any) -> None:
    text = ffi.string(msg).decode("utf-8", "replace")
    get_logger().log(_LEVELS.get(level, _DEBUG), "%s", text.rstrip("\n"))


def sync_log_level() -> None:
    """Let libbpf format only what the ``pylibbpf`` logger would emit."""
    if _logger is None and "logging" not in _sys.modules:
        # logging was never imported, so nothing configured it: the logger's
        # effective level is the root logger's default, WARNING
        lib.pylibbpf_set_print_level(lib.LIBBPF_WARN)
        return
    logger = get_logger()
    if logger.isEnabledFor(_DEBUG):
        lib.pylibbpf_set_print_level(lib.LIBBPF_DEBUG)
    elif logger.isEnabledFor(_INFO):
        lib.pylibbpf_set_print_level(lib.LIBBPF_INFO)
    else:
        lib.pylibbpf_set_print_level(lib.LIBBPF_WARN)


def libbpf_log() -> LogCapture:
    """``with libbpf_log() as log:`` captures what libbpf prints in this thread
    while the block runs. The captured text ends up in an exception, not on
    stderr; with the ``pylibbpf`` logger at DEBUG it is logged there too, when
    the block ends."""
    return LogCapture()


def to_str(ptr: Any) -> str:
    """A C string as str: "" for NULL; undecodable bytes are backslash-escaped."""
    if ptr == ffi.NULL:
        return ""
    return ffi.string(ptr).decode("utf-8", "backslashreplace")


def cstr(value: Optional[str], keep: List[Any]) -> Any:
    """A C string for ``value`` (or NULL); ``keep`` holds it alive."""
    if value is None:
        return ffi.NULL
    buf = ffi.new("char[]", value.encode())
    keep.append(buf)
    return buf


_OPTS_TYPES: Dict[str, Tuple[Any, int]] = {}


def opts(ctype: str, **fields: Any) -> Any:
    """Allocate a libbpf opts struct with ``sz`` set, as LIBBPF_OPTS does."""
    known = _OPTS_TYPES.get(ctype)
    if known is None:
        known = _OPTS_TYPES[ctype] = (ffi.typeof(f"struct {ctype} *"),
                                      ffi.sizeof(f"struct {ctype}"))
    o = ffi.new(known[0])
    o.sz = known[1]
    for k, v in fields.items():
        setattr(o, k, v)
    return o


lib.pylibbpf_install_print()
sync_log_level()
