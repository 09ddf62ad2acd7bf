"""BTF: the kernel's (or an object's) type information.

For now: :func:`vmlinux_h`, which writes the C header of every kernel type
(the ``vmlinux.h`` CO-RE programs include), through libbpf's btf_dump API.
"""
from __future__ import annotations

import os
from typing import Optional, Union

from ._ffi import ffi, lib, libbpf_log
from .errors import check_ptr, error_from_errno

__all__ = ["vmlinux_h", "KERNEL_BTF"]

KERNEL_BTF = "/sys/kernel/btf/vmlinux"

_HEAD = """\
/* Kernel types from BTF, written by pylibbpf.btf.vmlinux_h(). */
#ifndef __VMLINUX_H__
#define __VMLINUX_H__

#ifndef BPF_NO_PRESERVE_ACCESS_INDEX
#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)
#endif

"""
_TAIL = """
#ifndef BPF_NO_PRESERVE_ACCESS_INDEX
#pragma clang attribute pop
#endif

#endif /* __VMLINUX_H__ */
"""


def vmlinux_h(btf_path: Optional[Union[str, "os.PathLike[str]"]] = None) -> str:
    """The C declarations of every type in the kernel's BTF (or ``btf_path``'s)."""
    with libbpf_log() as log:
        if btf_path is None:
            btf = lib.btf__load_vmlinux_btf()
            label = "the running kernel's BTF"
        else:
            label = os.fspath(btf_path)
            btf = lib.btf__parse(label.encode(), ffi.NULL)
        err = ffi.errno
    check_ptr(btf, err, f"load BTF from {label}", libbpf_log=log.warnings)
    buf = ffi.new("struct pylibbpf_strbuf *")
    try:
        dump = lib.pylibbpf_btf_dump_new(btf, buf)
        check_ptr(dump, ffi.errno, "create btf_dump")
        try:
            for type_id in range(1, lib.btf__type_cnt(btf)):
                ret = lib.btf_dump__dump_type(dump, type_id)
                if ret < 0:
                    raise error_from_errno(-ret, f"dump BTF type {type_id} of {label}")
        finally:
            lib.btf_dump__free(dump)
        if buf.err:
            raise error_from_errno(buf.err, f"dump BTF of {label}")
        body = ffi.unpack(buf.data, buf.len).decode() if buf.len else ""
    finally:
        lib.pylibbpf_strbuf_free(buf)
        lib.btf__free(btf)
    return _HEAD + body + _TAIL
