"""Helpers for testing BPF programs and tools: network namespaces, veth pairs, and
a pytest plugin.

:class:`NetNS` is a network namespace of its own; :class:`VethPair` two of them
joined by a veth pair with IPv4 addresses. Both are context managers that delete
what they made, and nothing outside them is touched. :func:`in_netns` runs a block
inside a namespace (in the calling thread).

>>> from pylibbpf.testing import VethPair                      # doctest: +SKIP
>>> with VethPair() as veth, veth.netns_b.enter():              # doctest: +SKIP
...     with prog.attach_xdp(veth.dev_b):                       # on b's end
...         veth.send_udp(5)                                    # from a to b

Installed, pylibbpf registers this module as a pytest plugin (the ``pytest11``
entry point; without installing: ``pytest -p pylibbpf.testing``), which provides
the fixtures ``bpf_netns`` (a :class:`NetNS`), ``bpf_veth`` (a
:class:`VethPair`), ``bpf_compile`` (compile a ``.bpf.c`` once per session) and
``bpf_object`` (compile and open an :class:`~pylibbpf.Object`, closed after the
test).

The namespaces are made with iproute2's ``ip`` command, as root (like everything
that loads BPF programs).
"""
from __future__ import annotations

import errno as _errno
import os
import re
import shutil
import socket
import subprocess
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import (Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, TypeVar,
                    Union)

from .attach._net import in_netns
from .errors import error_from_errno

__all__ = ["NetNS", "VethPair", "in_netns", "ip", "run_in_userns", "DELEGATE_ANY"]

T = TypeVar("T")
PathLike = Union[str, "os.PathLike[str]"]

#: what ``ip`` says -> errno, for the error it becomes
_IP_ERRORS = (("Operation not permitted", _errno.EPERM), ("Permission denied", _errno.EACCES),
              ("File exists", _errno.EEXIST), ("No such file", _errno.ENOENT),
              ("Cannot find device", _errno.ENODEV), ("does not exist", _errno.ENOENT),
              ("Address already in use", _errno.EADDRINUSE))


def ip(*args: str, what: str = "") -> str:
    """Run ``ip ARGS…`` (iproute2) and return its output; a failure raises a
    :class:`~pylibbpf.BPFError` (by the errno ``ip`` reports: ``BPFPermissionError``
    without root …) naming ``what`` and the command."""
    what = what or f"ip {' '.join(args)}"
    exe = shutil.which("ip")
    if exe is None:
        raise error_from_errno(_errno.ENOENT, f"{what}: the `ip` command is missing",
                               hint="install iproute2")
    proc = subprocess.run([exe, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    if proc.returncode != 0:
        said = proc.stderr.strip() or f"exit status {proc.returncode}"
        err = next((e for text, e in _IP_ERRORS if text in said), _errno.EINVAL)
        raise error_from_errno(err, f"{what} (`ip {' '.join(args)}`: {said})")
    return proc.stdout


_NAME = re.compile(r"[A-Za-z0-9_.-]{1,200}")


class NetNS:
    """A new, empty network namespace (``ip netns add``; its loopback up), deleted
    by :meth:`close` or at the end of the ``with`` block.

    ``name`` defaults to a fresh ``plb-XXXXXXXX``. The namespace is an ``os.PathLike``
    (``/run/netns/NAME``), so it goes wherever pylibbpf takes a namespace:
    ``in_netns(ns)``, ``prog.attach_netns(ns)``, ``pylibbpf.netns_query(ns, …)``.
    """

    def __init__(self, name: Optional[str] = None, *, loopback_up: bool = True) -> None:
        if name is None:
            name = f"plb-{uuid.uuid4().hex[:8]}"
        if not isinstance(name, str) or not _NAME.fullmatch(name) or name in (".", ".."):
            raise ValueError(f"bad network namespace name {name!r}: letters, digits, "
                             "'_', '.', '-'")
        self.name = name
        self.path = f"/run/netns/{name}"
        self._closed = True
        ip("netns", "add", name, what=f"create network namespace {name!r}")
        self._closed = False
        try:
            if loopback_up:
                self.ip("link", "set", "lo", "up")
        except BaseException:
            self.close()
            raise

    def ip(self, *args: str) -> str:
        """``ip ARGS…`` inside the namespace (``ip -n NAME ARGS…``)."""
        return ip("-n", self.name, *args, what=f"in network namespace {self.name!r}")

    @contextmanager
    def enter(self) -> Iterator["NetNS"]:
        """Run the block inside the namespace (in this thread): sockets made and
        interfaces named there belong to it (:func:`pylibbpf.in_netns`)."""
        with in_netns(self.path):
            yield self

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` run inside the namespace (in this thread)."""
        with in_netns(self.path):
            return fn(*args, **kwargs)

    def socket(self, family: int = socket.AF_INET, type: int = socket.SOCK_DGRAM,
               proto: int = 0) -> socket.socket:
        """A socket created inside the namespace (it stays there, wherever it is used)."""
        with in_netns(self.path):
            return socket.socket(family, type, proto)

    def run(self, *cmd: str, check: bool = True,
            **kwargs: Any) -> "subprocess.CompletedProcess[Any]":
        """Run a command inside the namespace (``ip netns exec NAME CMD…``), as
        :func:`subprocess.run` (``check=True`` by default)."""
        return subprocess.run(["ip", "netns", "exec", self.name, *cmd], check=check, **kwargs)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Delete the namespace (and the interfaces in it); idempotent."""
        if self._closed:
            return
        self._closed = True
        subprocess.run(["ip", "netns", "del", self.name], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    def __fspath__(self) -> str:
        return self.path

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<pylibbpf.testing.NetNS {self.name!r}{' closed' if self._closed else ''}>"

    def __enter__(self) -> "NetNS":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class VethPair:
    """Two new network namespaces joined by a veth pair, with IPv4 addresses, all
    up; both namespaces (so the pair) deleted on :meth:`close` or at the end of the
    ``with`` block.

    ``netns_a``/``netns_b`` are the :class:`NetNS`, ``ns_a``/``ns_b`` their names,
    ``dev_a``/``dev_b`` the interface names (the same in both pairs: each lives in
    its own namespace), ``ip_a``/``ip_b`` the addresses in ``subnet`` (``.1`` and
    ``.2`` by default).

    XDP and tc programs attach by interface name inside the interface's namespace::

        with VethPair() as veth, veth.netns_b.enter(), prog.attach_xdp(veth.dev_b):
            veth.send_udp(3)                # a -> b: the program sees 3 datagrams
    """

    def __init__(self, *, subnet: str = "10.199.0.0/24", ip_a: Optional[str] = None,
                 ip_b: Optional[str] = None, dev_a: str = "veth-a", dev_b: str = "veth-b",
                 prefix: str = "plb") -> None:
        import ipaddress

        net = ipaddress.ip_network(subnet)
        if net.version != 4 or net.num_addresses < 4:
            raise ValueError(f"subnet {subnet!r} must be IPv4 with room for two hosts")
        self.prefixlen = net.prefixlen
        self.ip_a = ip_a or str(net.network_address + 1)
        self.ip_b = ip_b or str(net.network_address + 2)
        self.dev_a, self.dev_b = dev_a, dev_b
        tag = uuid.uuid4().hex[:6]
        self.netns_a = NetNS(f"{prefix}-a-{tag}")
        try:
            self.netns_b = NetNS(f"{prefix}-b-{tag}")
        except BaseException:
            self.netns_a.close()
            raise
        self.ns_a, self.ns_b = self.netns_a.name, self.netns_b.name
        try:
            self.netns_a.ip("link", "add", dev_a, "type", "veth", "peer", "name", dev_b,
                            "netns", self.ns_b)
            for ns, dev, addr in ((self.netns_a, dev_a, self.ip_a),
                                  (self.netns_b, dev_b, self.ip_b)):
                ns.ip("addr", "add", f"{addr}/{self.prefixlen}", "dev", dev)
                ns.ip("link", "set", dev, "up")
        except BaseException:
            self.close()
            raise

    def _ns(self, side: Union[str, NetNS]) -> NetNS:
        if isinstance(side, NetNS):
            return side
        if side in ("a", self.ns_a):
            return self.netns_a
        if side in ("b", self.ns_b):
            return self.netns_b
        raise ValueError(f"{side!r} is neither side of the veth pair ('a', 'b', "
                         f"{self.ns_a!r}, {self.ns_b!r})")

    def socket_in(self, side: Union[str, NetNS], type: int = socket.SOCK_DGRAM) -> socket.socket:
        """An IPv4 socket created in side ``"a"`` or ``"b"`` (or its namespace's name)."""
        return self._ns(side).socket(socket.AF_INET, type)

    def send_udp(self, count: int = 1, *, port: int = 9999, payload: bytes = b"x" * 32,
                 src: str = "a") -> int:
        """Send ``count`` UDP datagrams from side ``src`` to the other side's ``port``
        (nothing needs to listen there); returns ``count``."""
        dst = self.ip_b if self._ns(src) is self.netns_a else self.ip_a
        with self.socket_in(src) as s:
            for _ in range(count):
                s.sendto(payload, (dst, port))
        return count

    def close(self) -> None:
        """Delete both namespaces, and with them the pair; idempotent."""
        for ns in (getattr(self, "netns_a", None), getattr(self, "netns_b", None)):
            if ns is not None:
                ns.close()

    def __repr__(self) -> str:
        return (f"<pylibbpf.testing.VethPair {self.ns_a}:{self.dev_a} {self.ip_a} <-> "
                f"{self.ns_b}:{self.dev_b} {self.ip_b}>")

    def __enter__(self) -> "VethPair":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- BPF tokens: a user namespace with a delegating bpffs ---------------------------------

_SYS_FSOPEN, _SYS_FSCONFIG, _SYS_FSMOUNT = 430, 431, 432   # the same on every architecture
_FSCONFIG_SET_STRING, _FSCONFIG_CMD_CREATE = 1, 6
_CLONE_NEWNS, _CLONE_NEWUSER = 0x00020000, 0x10000000
#: the delegate_* options of bpffs (Linux 6.9+), "any" delegating everything
DELEGATE_ANY = {"delegate_cmds": "any", "delegate_maps": "any", "delegate_progs": "any",
                "delegate_attachs": "any"}


def _libc() -> Any:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def _sys(what: str, ret: int) -> int:
    import ctypes

    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def _send(sock: socket.socket, msg: bytes, fds: Sequence[int] = ()) -> None:
    socket.send_fds(sock, [len(msg).to_bytes(4, "little") + msg], list(fds))


def _recv(sock: socket.socket) -> Tuple[bytes, List[int]]:
    data, fds, _, _ = socket.recv_fds(sock, 1 << 20, 4)
    while len(data) >= 4 and len(data) < 4 + int.from_bytes(data[:4], "little"):
        more = sock.recv(1 << 20)
        if not more:
            break
        data += more
    if len(data) < 4:
        raise EOFError("the other side of the user-namespace set-up went away")
    return data[4:4 + int.from_bytes(data[:4], "little")], fds


def _delegate(fs_fd: int, options: Dict[str, str]) -> int:
    """Root's part: configure the bpffs context ``fs_fd`` (made inside the user
    namespace) with the delegate options, create it and return a mount fd of it."""
    from .errors import error_from_errno, not_supported
    from .system import support

    libc = _libc()
    what = "mount a bpffs for a user namespace with " + (
        ",".join(f"{k}={v}" for k, v in options.items()) or "no delegate_* options")
    try:
        for key, value in options.items():
            _sys(f"option {key}={value}",
                 libc.syscall(_SYS_FSCONFIG, fs_fd, _FSCONFIG_SET_STRING, key.encode(),
                              value.encode(), 0))
        _sys("FSCONFIG_CMD_CREATE",
             libc.syscall(_SYS_FSCONFIG, fs_fd, _FSCONFIG_CMD_CREATE, None, None, 0))
        return _sys("fsmount", libc.syscall(_SYS_FSMOUNT, fs_fd, 1, 0))  # FSMOUNT_CLOEXEC
    except OSError as e:
        sup = support("bpf_token")
        if not sup:
            # before 6.9 a bpffs has no delegate_* options (older ones ignore them) and
            # no user namespace may own one: creating it is refused (EPERM)
            raise not_supported(e.errno or _errno.EINVAL, what,
                                f"bpf_token: {sup.reason}") from None
        raise error_from_errno(e.errno or _errno.EINVAL, f"{what}: {e.strerror}") from None


def _exception_from(payload: Tuple[Any, ...]) -> BaseException:
    """Rebuild the child's exception: pylibbpf's errors (and builtins) by type, with
    errno and message; anything else as a RuntimeError carrying its traceback."""
    import builtins

    from . import errors

    _, name, errno_, message, tb = payload
    cls = getattr(errors, name, None) or getattr(builtins, name, None)
    if isinstance(cls, type) and issubclass(cls, BaseException):
        try:
            exc = cls(errno_, message) if errno_ is not None else cls(message)
            return exc
        except TypeError:
            pass
    return RuntimeError(f"{name} in the user namespace: {message}\n{tb}")


def run_in_userns(fn: Callable[[str], T], *, delegate: Optional[Dict[str, str]] = None,
                  uid: int = 65534, gid: int = 65534, timeout: float = 120.0) -> T:
    """Run ``fn(bpffs_path)`` in a child process in a new user namespace that holds
    no capability in the initial one, with a bpffs that delegates BPF to it, and
    return what ``fn`` returned (it must pickle); an exception ``fn`` raises is
    raised again here (pylibbpf's errors keep their type, errno and message).

    The recipe (the kernel wants the bpffs owned by the user namespace, and only
    root may set its delegate options): the child drops to ``uid``/``gid`` (root
    in the namespace), unshares a user and a mount namespace, and makes a bpffs
    context there with ``fsopen("bpf")``; it passes that fd to this (root)
    process, which sets ``delegate`` (default: everything, :data:`DELEGATE_ANY`)
    with ``fsconfig()``, creates the superblock and ``fsmount()``s it, and passes
    the mount fd back. ``bpffs_path`` is ``/proc/self/fd/N`` of that mount: give it
    to ``Object(..., token_path=…)`` or :class:`~pylibbpf.Token`. Needs root and
    a kernel with BPF tokens (6.9+): elsewhere the bpffs options raise
    :class:`~pylibbpf.NotSupportedError` naming ``bpf_token``.

    Import what ``fn`` needs and read its files before: the child runs as
    ``uid``, which may not read the checkout.
    """
    import pickle
    import traceback

    if os.geteuid() != 0:
        raise PermissionError(_errno.EPERM, "run_in_userns() needs root: only root sets "
                                            "a bpffs's delegate_* options")
    options = dict(DELEGATE_ANY if delegate is None else delegate)
    parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 0
        try:
            parent_sock.close()
            try:
                libc = _libc()
                os.setgroups([])
                os.setgid(gid)
                os.setuid(uid)
                _sys("unshare(CLONE_NEWUSER)", libc.unshare(_CLONE_NEWUSER))
                _send(child_sock, b"userns")
                _recv(child_sock)   # the maps are written
                _sys("unshare(CLONE_NEWNS)", libc.unshare(_CLONE_NEWNS))
                try:
                    fs_fd = _sys("fsopen(bpf)", libc.syscall(_SYS_FSOPEN, b"bpf", 1))
                except OSError as e:
                    from .errors import not_supported
                    from .system import support

                    sup = support("bpf_token")
                    if sup:
                        raise
                    # before 6.9, a user namespace mounts no bpffs at all
                    raise not_supported(e.errno or _errno.EPERM, "make a bpffs in a user "
                                        "namespace", f"bpf_token: {sup.reason}") from None
                _send(child_sock, b"fs", [fs_fd])
                os.close(fs_fd)
                msg, fds = _recv(child_sock)
                if msg != b"mnt" or not fds:
                    raise pickle.loads(msg)
                result: Tuple[Any, ...] = ("ok", fn(f"/proc/self/fd/{fds[0]}"))
            except BaseException as e:
                result = ("err", type(e).__name__, getattr(e, "errno", None),
                          getattr(e, "strerror", None) or str(e), traceback.format_exc())
            try:
                _send(child_sock, pickle.dumps(result))
            except Exception as e:
                _send(child_sock, pickle.dumps(("err", "RuntimeError", None,
                                                f"cannot return {result!r}: {e}", "")))
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    child_sock.close()
    done = False
    try:
        parent_sock.settimeout(timeout)
        msg, _ = _recv(parent_sock)
        if msg == b"userns":
            for name, ident in (("uid_map", uid), ("gid_map", gid)):
                with open(f"/proc/{pid}/{name}", "w") as f:
                    f.write(f"0 {ident} 1\n")
            _send(parent_sock, b"mapped")
            msg, fds = _recv(parent_sock)
        if msg == b"fs" and fds:
            try:
                mnt_fd = _delegate(fds[0], options)
            except BaseException as e:
                _send(parent_sock, pickle.dumps(RuntimeError("the bpffs set-up failed")))
                raise e
            finally:
                os.close(fds[0])
            _send(parent_sock, b"mnt", [mnt_fd])
            os.close(mnt_fd)
            msg, _ = _recv(parent_sock)
        payload = pickle.loads(msg)
        done = True
    finally:
        parent_sock.close()
        if not done:
            import signal

            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    if payload[0] == "ok":
        return payload[1]  # type: ignore[no-any-return]
    raise _exception_from(payload)


# --- the pytest plugin ------------------------------------------------------------------

class _Compiled:
    """Session-wide memo of compiled objects: (source, flags) -> object path."""

    def __init__(self) -> None:
        self.paths: Dict[Tuple[str, Tuple[str, ...], Tuple[str, ...]], Path] = {}

    def get(self, source: PathLike, cflags: Sequence[str], include_dirs: Sequence[PathLike],
            base: Path) -> Path:
        from .compiler import compile as compile_bpf

        src = Path(os.fspath(source))
        if not src.is_absolute():
            src = base / src
        key = (str(src.resolve()), tuple(cflags), tuple(os.fspath(d) for d in include_dirs))
        path = self.paths.get(key)
        if path is None:
            path = self.paths[key] = compile_bpf(src, cflags=cflags, include_dirs=include_dirs)
        return path


try:
    import pytest
except ImportError:  # pragma: no cover - the helpers work without pytest
    pytest = None  # type: ignore[assignment]

if pytest is not None:
    @pytest.fixture
    def bpf_netns() -> Iterator[NetNS]:
        """A fresh network namespace (:class:`NetNS`), deleted after the test."""
        with NetNS() as ns:
            yield ns

    @pytest.fixture
    def bpf_veth() -> Iterator[VethPair]:
        """Two fresh namespaces joined by a veth pair (:class:`VethPair`), deleted
        after the test."""
        with VethPair() as pair:
            yield pair

    @pytest.fixture(scope="session")
    def _pylibbpf_compiled() -> _Compiled:
        return _Compiled()

    @pytest.fixture
    def bpf_compile(request: Any, _pylibbpf_compiled: _Compiled) -> Callable[..., Path]:
        """``bpf_compile(source, cflags=(), include_dirs=())`` → the object's path.

        Each source is compiled once per session (and not at all when pylibbpf's
        compile cache has it); a relative path is taken from the test file's
        directory. clang's errors raise :class:`~pylibbpf.CompileError`."""
        base = Path(str(request.path)).parent

        def compile_once(source: PathLike, *, cflags: Sequence[str] = (),
                         include_dirs: Sequence[PathLike] = ()) -> Path:
            return _pylibbpf_compiled.get(source, cflags, include_dirs, base)

        return compile_once

    @pytest.fixture
    def bpf_object(request: Any,
                   bpf_compile: Callable[..., Path]) -> Iterator[Callable[..., Any]]:
        """``bpf_object(source, load=True, **Object options)`` → an opened (and by
        default loaded) :class:`~pylibbpf.Object` of a ``.bpf.c`` (compiled once per
        session) or ``.o`` (relative to the test file's directory), closed after
        the test."""
        from .object import Object

        made: List[Any] = []

        def open_object(source: PathLike, *, load: bool = True, cflags: Sequence[str] = (),
                        **kwargs: Any) -> Any:
            path = Path(os.fspath(source))
            if not path.is_absolute():
                path = Path(str(request.path)).parent / path
            if path.name.endswith(".c"):
                path = bpf_compile(path, cflags=cflags)
            obj = Object(path, **kwargs)
            made.append(obj)
            if load:
                obj.load()
            return obj

        yield open_object
        for obj in reversed(made):
            obj.close()

