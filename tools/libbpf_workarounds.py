"""Re-run each libbpf bug pylibbpf guards against, with the guard switched off, to
see whether the compiled-in libbpf still has it (run it when the libbpf pin moves).

    python3 tools/libbpf_workarounds.py            # this checkout's extension
    python3 tools/libbpf_workarounds.py --tree DIR # another checkout's (e.g. an older pin)

Each reproduction runs in a child process under a timeout, with pylibbpf's guard for
that bug disabled (monkeypatched in the child only). A line per bug says ``BUG`` (the
child crashed, hung or misbehaved as libbpf did) or ``fixed`` (libbpf itself gave a
clean error or the right answer), with what the child printed. The inputs are the
regression tests' own (tests/data and the one-field mutations of tests/test_errors.py).
Needs root and clang (it compiles two objects of tests/bpf).
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Dict, List, Tuple

TOP = Path(__file__).resolve().parents[1]
TESTS = TOP / "tests"

#: run in the child before the reproduction: turn pylibbpf's guards off
UNGUARD = """
import pylibbpf, pylibbpf.object as _o
from pylibbpf._ffi import ffi as _ffi, lib

class _Unguarded:
    # pylibbpf.object's lib with its guards off: the pre-checks at open
    # (pylibbpf_object_precheck) and the error-pointer check (both in
    # pylibbpf_object_open), and the BTF/struct_ops checks before load
    def __getattr__(self, name):
        return getattr(lib, name)

    def pylibbpf_object_open(self, path, buf, size, *options):
        if buf != _ffi.NULL:
            return lib.bpf_object__open_mem(buf, size, _ffi.NULL)
        return lib.bpf_object__open_file(path, _ffi.NULL)

    def pylibbpf_object_load_check(self, obj, check_btf):
        return 0

_o.lib = _Unguarded()
"""

#: open (from the path) and load; print the outcome
OPEN_LOAD = """
try:
    with pylibbpf.Object(PATH) as o:
        o.load()
        print('loaded', [p.name for p in o.programs.values()][:1])
except pylibbpf.BPFError as e:
    print('clean error:', type(e).__name__, str(e).splitlines()[0][-160:])
"""

#: dump a BTF file as C (vmlinux_h), with pylibbpf's BTF check answering "fine"
DUMP = """
import pylibbpf.btf as _btf
class _Unchecked:
    def __getattr__(self, name):
        return (lambda *a: 0) if name == 'pylibbpf_btf_check' else getattr(lib, name)
_btf.lib = _Unchecked()
try:
    print('dumped', len(_btf.vmlinux_h(PATH)), 'chars')
except pylibbpf.BPFError as e:
    print('clean error:', type(e).__name__, str(e).splitlines()[0][-160:])
"""

#: a struct_ops map's initial value: libbpf answers value_size bytes of its copy
INITIAL_VALUE = """
o = pylibbpf.Object(PATH)
m = o.maps['plb_cc_legacy']
lib.bpf_map__set_value_size(m._ptr, 1 << 26)
size = _ffi.new('size_t *')
p = lib.bpf_map__initial_value(m._ptr, size)
print('initial_value size', size[0], '(struct is 192 bytes)')
print('read', len(bytes(_ffi.buffer(p, size[0]))))
"""

#: max_entries of a memory-mapped map, set through libbpf directly: at close libbpf
#: unmaps a region sized by the new max_entries, taking whatever lies past its mapping
MAX_ENTRIES = """
import mmap
def mapped(lo, hi):
    n = 0
    for line in open('/proc/self/maps'):
        a, b = (int(x, 16) for x in line.split()[0].split('-'))
        n += max(0, min(b, hi) - max(a, lo))
    return n
o = pylibbpf.Object(PATH)
m = o.maps['.rodata']
addr = int(_ffi.cast('uintptr_t', lib.bpf_map__initial_value(m._ptr, _ffi.new('size_t *'))))
old = mmap.PAGESIZE * ((m.value_size + mmap.PAGESIZE - 1) // mmap.PAGESIZE)
new = old * 64
# whatever lies past libbpf's mapping (Python's heap, as it happens) goes at close
assert lib.bpf_map__set_max_entries(m._ptr, new // ((m.value_size + 7) // 8 * 8)) == 0
before = mapped(addr + old, addr + new)
print("mapped past it before close:", before, flush=True)
o.close()
after = mapped(addr + old, addr + new)
print(f'past libbpf mapping: {before} bytes mapped before close, {after} after')
if after < before:
    raise SystemExit(3)
"""


def _compile(name: str, out: Path) -> Path:
    import pylibbpf

    return pylibbpf.compile(TESTS / "bpf" / f"{name}.bpf.c", out / f"{name}.bpf.o")


def _inputs(out: Path) -> List[Tuple[str, str, Path]]:
    """(bug, child code, input path) for every reproduction."""
    sys.path.insert(0, str(TESTS))
    import test_errors as t  # the regression tests' own mutations

    data = TESTS / "data"
    struct_ops = _compile("attach_struct_ops", out)
    core = _compile("core_task", out)
    xdp = _compile("xdp_rewrite", out)
    cases: List[Tuple[str, str, Path]] = [
        ("kcfg extern size truncated to int (fuzz corpus; BTF check refuses the int)",
         OPEN_LOAD, data / "fuzz-kcfg-extern-size.bpf.o"),
        ("CO-RE bitfield on a zero-size base type: divide by zero",
         OPEN_LOAD, data / "fuzz-bitfield-size0.bpf.o"),
        ("struct_ops member offset far past its struct, read at load",
         OPEN_LOAD, data / "fuzz-struct-ops-member-offset.bpf.o"),
        ("FUNC_PROTO return type not checked by btf__new, dereferenced at load",
         OPEN_LOAD, data / "fuzz-func-proto-return-type.bpf.o"),
        ("FUNC_PROTO return type not checked by btf__new, indexed by btf_dump",
         DUMP, data / "fuzz-func-proto-return-type.bpf.o"),
    ]

    def mutated(name: str, src: Path, mutate: Callable[[bytearray], object]) -> Path:
        d = bytearray(src.read_bytes())
        mutate(d)
        p = out / f"{name}.bpf.o"
        p.write_bytes(bytes(d))
        return p

    def extern_3gib(d: bytearray) -> None:
        import struct

        types = t._btf_types(bytes(d))
        int_id, int_pos = next((i, pos) for i, (n, pos, k, _) in enumerate(types, 1)
                               if n == "int" and k == 1)
        struct.pack_into("<III", d, int_pos + 8, 4, 0x01000020, 0)
        arr_id, arr_pos = next((i, pos) for i, (_, pos, k, _) in enumerate(types, 1)
                               if k == 3 and struct.unpack_from("<I", d, pos + 12)[0] == int_id)
        struct.pack_into("<I", d, arr_pos + 20, 0x30000000)
        var_pos = next(pos for n, pos, k, _ in types if n == "CONFIG_PYLIBBPF_TEST_VALUE")
        struct.pack_into("<I", d, var_pos + 8, arr_id)

    cases.append(("kcfg extern of 3 GiB: size truncated to int, pointer outside IS_ERR",
                  OPEN_LOAD, mutated("extern", data / "fuzz-kcfg-extern-size.bpf.o",
                                     extern_3gib)))
    for name, mutate in [("struct_ops variable offset wraps in 32 bits", t._wrap_legacy_offset),
                         ("struct_ops struct smaller than its members (open)",
                          t._shrink_below_init),
                         ("BPF_MAP_TYPE_STRUCT_OPS map in SEC(.maps)", t._struct_ops_in_maps),
                         ("struct_ops bitfield placed by raw offset", t._bitfield_not_in_kernel)]:
        cases.append((name, OPEN_LOAD, mutated(mutate.__name__, struct_ops, mutate)))
    for name, mutate in [("typedef naming itself (CO-RE loops)", t._typedef_to_itself),
                         ("typedef loop of two", t._typedef_loop),
                         ("struct holding itself by value", t._struct_holds_itself),
                         ("array of itself", t._array_of_itself),
                         ("pointer to itself", t._pointer_to_itself),
                         ("int of 2 GiB", t._int_of_absurd_size)]:
        cases.append((name, OPEN_LOAD, mutated(mutate.__name__, core, mutate)))
    cases.append(("struct_ops initial value sized by value_size", INITIAL_VALUE, struct_ops))
    cases.append(("set_max_entries on a memory-mapped map", MAX_ENTRIES, xdp))
    return cases


def _run(tree: Path, code: str, path: Path) -> Tuple[str, str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    src = UNGUARD + f"PATH = {str(path)!r}\n" + code
    try:
        res = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True,
                             timeout=30, env=env, cwd="/")
    except subprocess.TimeoutExpired:
        return "BUG", "hung (killed after 30 s)"
    out = (res.stdout.strip().splitlines() or [""])[-1]
    if res.returncode < 0:
        return "BUG", f"killed by {signal.Signals(-res.returncode).name} {out}"
    if res.returncode != 0:
        err = (res.stderr.strip().splitlines() or [""])[-1]
        return "BUG", f"exit {res.returncode}: {out} {err[-160:]}"
    return "ran", out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", default=str(TOP), help="pylibbpf checkout whose extension to use")
    ap.add_argument("-k", default="", help="only the bugs whose description contains this")
    args = ap.parse_args()
    tree = Path(args.tree).resolve()
    env = {**os.environ, "PYTHONPATH": str(tree)}
    ver = subprocess.run([sys.executable, "-c",
                          "import pylibbpf; print(pylibbpf.libbpf_version())"],
                         capture_output=True, text=True, env=env, cwd="/").stdout.strip()
    print(f"libbpf {ver} ({tree})")
    results: Dict[str, Tuple[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="plb-workarounds-") as d:
        for name, code, path in _inputs(Path(d)):
            if args.k not in name:
                continue
            results[name] = _run(tree, code, path)
            verdict, what = results[name]
            print(f"{verdict:5} {name}: {what}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
