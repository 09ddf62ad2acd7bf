"""struct_ops: a map whose value is a kernel ops table (e.g. a TCP congestion
control, ``struct tcp_congestion_ops``) implemented by BPF programs.
Registering it is ``Map.attach_struct_ops()``; closing the Link unregisters it.

Maps in ``SEC(".struct_ops.link")`` register through a real kernel link
(pinnable, updatable with another map, detachable). Maps in
``SEC(".struct_ops")`` register the legacy way (no link): the Link keeps its
own duplicate of the map fd, so it unregisters safely even after the Object
was closed.
"""
from __future__ import annotations

import errno as _errno
import os

from .._ffi import ffi, lib, libbpf_log
from ..errors import BPFError, error_from_errno
from ..link import Link
from ..types import MapType

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..map import Map

__all__ = ["attach_struct_ops"]

BPF_F_LINK = 1 << 13


def attach_struct_ops(m: "Map") -> Link:
    what = f"register struct_ops map {m.name!r}"
    m._check()
    if m.type != MapType.STRUCT_OPS:
        raise BPFError(_errno.EINVAL, f"{what}: it is a {m.type.name.lower()} map, "
                                      "not struct_ops")
    if m._ptr is None:
        raise BPFError(_errno.EINVAL, f"{what}: only a struct_ops map of a loaded Object "
                                      "can be registered (its programs come from it)")
    map_fd = m.fd  # raises when not created (Object not loaded)
    with libbpf_log() as log:
        ptr = lib.bpf_map__attach_struct_ops(m._ptr)
        err = ffi.errno
    if ptr == ffi.NULL:
        if err == _errno.EEXIST:
            raise error_from_errno(err, f"{what}: something with the same name is already "
                                        "registered", libbpf_log=log.warnings)
        raise error_from_errno(err, what, libbpf_log=log.warnings)
    if m.flags & BPF_F_LINK:
        return Link(made_from=m, ptr=ptr, description=f"struct_ops {m.name!r}", struct_ops=True)

    # Legacy registration: libbpf's link would unregister through the Object's
    # map fd, which is gone once the Object is closed. Keep our own fd instead.
    try:
        own_fd = os.dup(map_fd)
    except OSError as e:
        lib.bpf_link__destroy(ptr)
        raise error_from_errno(e.errno or _errno.EMFILE, what) from None
    lib.bpf_link__disconnect(ptr)
    lib.bpf_link__destroy(ptr)  # frees libbpf's struct only; still registered
    zero = ffi.new("__u32 *", 0)

    def unregister() -> None:
        lib.bpf_map_delete_elem(own_fd, zero)

    def release() -> None:
        os.close(own_fd)

    return Link(made_from=m, description=f"struct_ops {m.name!r} (legacy, no link)", on_close=unregister,
                on_release=release)
