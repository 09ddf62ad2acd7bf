"""netkit: programs on a netkit device pair's primary or peer side (Linux 6.7+)."""
from __future__ import annotations

import errno as _errno
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional, Union

from ..errors import BPFError, NotSupportedError, error_from_errno
from ..link import Link
from ..types import AttachType
from .tcx import Anchor, direction_type, ifname, mprog_attach
from ._common import resolve_ifindex
from ._kinds import privileged_for_bpf

if TYPE_CHECKING:
    from ..program import Program

__all__ = ["attach_netkit", "kernel_has_netkit"]

_NETKIT = {"primary": AttachType.NETKIT_PRIMARY, "peer": AttachType.NETKIT_PEER}


def kernel_has_netkit() -> bool:
    """Whether this kernel has the netkit driver (built in or loaded)."""
    if os.path.isdir("/sys/module/netkit"):
        return True
    try:
        with open("/proc/kallsyms") as f:
            return any(" netkit_xmit" in line for line in f)
    except OSError:
        return False


def attach_netkit(prog: "Program", interface: Union[str, int], *,
                  side: Optional[str] = None, before: Anchor = None, after: Anchor = None,
                  expected_revision: int = 0) -> Link:
    atype = direction_type(side, _NETKIT, prog, "netkit")
    ifindex = resolve_ifindex(interface)
    try:
        return mprog_attach(prog, ifindex, atype, before, after, expected_revision,
                            "netkit", "bpf_program__attach_netkit", "bpf_netkit_opts")
    except NotSupportedError:
        raise  # no netkit in this kernel (system.support("netkit") says why)
    except BPFError as e:
        if e.errno == _errno.ENXIO:
            raise error_from_errno(e.errno, f"attach netkit program {prog.name!r}: "
                                   f"{ifname(ifindex)!r} is not a netkit device") from None
        if e.errno == _errno.EACCES and privileged_for_bpf():
            # the kernel's answer for the peer device of a pair: not a privilege matter
            raise BPFError(e.errno, f"attach netkit program {prog.name!r} to "
                                    f"{ifname(ifindex)!r}: that is the peer device of a "
                                    "netkit pair; attach to the primary device with "
                                    "side='peer' instead") from None
        raise
