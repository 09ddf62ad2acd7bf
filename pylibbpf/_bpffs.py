"""Is a path on a BPF filesystem (bpffs)? Pins live only there.

libbpf finds out by trying (creating the parent directory on the way, and
keeping the refused path as the map's pin path); these answer first, from the
mount table: the device of the path's nearest existing directory against the
devices of the mounted bpffs instances.
"""
from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, Optional, Tuple


def _mounts() -> Optional[Dict[int, str]]:
    """device number -> file system type of every mount (None: unreadable)."""
    out: Dict[int, str] = {}
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                pre, sep, post = line.partition(" - ")
                fields = pre.split()
                if not sep or len(fields) < 3 or ":" not in fields[2]:
                    continue
                major, _, minor = fields[2].partition(":")
                out[os.makedev(int(major), int(minor))] = post.split()[0] if post else ""
    except (OSError, ValueError):
        return None
    return out


def nearest_dir(path: str) -> str:
    """``path``'s parent directory, or its nearest ancestor that exists."""
    d = os.path.dirname(os.path.abspath(path)) or "/"
    while not os.path.isdir(d) and d != "/":
        d = os.path.dirname(d)
    return d


def fs_type(path: str) -> Optional[str]:
    """The file system type of ``path`` (which must exist), or None when unknown."""
    try:
        dev = os.stat(path).st_dev
    except OSError:
        return None
    mounts = _mounts()
    if mounts is None:
        return None
    return mounts.get(dev)


def check_pin_target(path: str) -> Optional[Tuple[str, str]]:
    """None when a pin at ``path`` may go on bpffs (or this can't be told), else
    (the directory looked at, its file system type)."""
    d = nearest_dir(path)
    t = fs_type(d)
    if t is None or t == "bpf":
        return None
    return d, t


def check_pin(path: str, what: str, *, libbpf_makes_parent: bool) -> None:
    """Refuse a pin before any call: ``path`` off bpffs, or a parent directory missing.

    libbpf's pin functions (an Object's map, program or link) create the pin's
    parent directory when it is missing, wherever it is, then find the path is
    not on bpffs; the raw ``BPF_OBJ_PIN`` answers EPERM off bpffs, which reads
    as a missing capability. Both are asked first, from the mount table, so the
    error names the directory and nothing is created outside bpffs.
    """
    import errno as _errno

    from .errors import BPFError, BPFNotFoundError

    bad = check_pin_target(path)
    if bad is not None:
        raise BPFError(_errno.EINVAL, f"{what}: {bad[0]!r} is on a {bad[1] or 'non-bpffs'} file "
                                      "system, not bpffs; pins live in a BPF file "
                                      "system (mount -t bpf bpf /sys/fs/bpf)")
    parent = os.path.dirname(os.path.abspath(path)) or "/"
    # libbpf makes the parent itself (one level), not the ones above it
    need = os.path.dirname(parent) if libbpf_makes_parent and parent != "/" else parent
    if not os.path.isdir(need):
        raise BPFNotFoundError(_errno.ENOENT, f"{what}: no directory {need!r} in bpffs "
                                              "(create it first)")
