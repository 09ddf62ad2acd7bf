"""Corrupt BPF objects and ELF files give pylibbpf errors naming the input, before
any absurd allocation (issue 17: huge BTF sizes, escapes from the BTF codecs and
the ELF symbol index). Objects are tests/bpf/corrupt_base.bpf.c with one BTF field
patched; decoding runs in a child with a 1 GiB address-space limit, so a codec
that allocates what the BTF claims shows as a MemoryError, not a swapping host."""
from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

import pylibbpf
from pylibbpf import elf
from _children import same_pylibbpf

# --- a minimal BTF reader (64-bit little-endian ELF, as clang emits) -------------------

KIND_ARRAY, KIND_STRUCT, KIND_PTR, KIND_VAR, KIND_DATASEC = 3, 4, 2, 14, 15


def _sections(data: bytes) -> Dict[str, Tuple[int, int, int]]:
    """name -> (offset of its header, file offset, size)."""
    shoff, = struct.unpack_from("<Q", data, 40)
    shnum, shstrndx = struct.unpack_from("<HH", data, 60)
    hdrs = [shoff + 64 * i for i in range(shnum)]
    _, _, _, _, so, ss = struct.unpack_from("<IIQQQQ", data, hdrs[shstrndx])
    names = data[so:so + ss]
    out = {}
    for h in hdrs:
        name, _t, _f, _a, off, size = struct.unpack_from("<IIQQQQ", data, h)
        out[names[name:names.index(b"\0", name)].decode()] = (h, off, size)
    return out


class Btf:
    """The type records of an object's .BTF: id -> (file offset, kind, vlen, name)."""

    def __init__(self, data: bytes) -> None:
        _, base, _ = _sections(data)[".BTF"]
        hdr_len, type_off, type_len, str_off, _ = struct.unpack_from("<IIIII", data, base + 4)
        strs = base + hdr_len + str_off
        self.types: Dict[int, Tuple[int, int, int, str]] = {}
        pos, end, tid = base + hdr_len + type_off, base + hdr_len + type_off + type_len, 0
        extra = {1: 4, 3: 12, 14: 4, 17: 4}
        per = {4: 12, 5: 12, 6: 8, 13: 8, 15: 12, 19: 12}
        while pos < end:
            tid += 1
            name_off, info = struct.unpack_from("<II", data, pos)
            kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
            name = data[strs + name_off:data.index(b"\0", strs + name_off)].decode()
            self.types[tid] = (pos, kind, vlen, name)
            pos += 12 + extra.get(kind, 0) + per.get(kind, 0) * vlen
        self.data, self.strs = data, strs

    def find(self, kind: int, name: str) -> int:
        return next(t for t, (_, k, _, n) in self.types.items() if k == kind and n == name)

    def ref(self, tid: int) -> int:
        return struct.unpack_from("<I", self.data, self.types[tid][0] + 8)[0]

    def member(self, tid: int, name: str) -> Tuple[int, int]:
        """(file offset of the member record, its type id) of a struct member."""
        pos, _, vlen, _ = self.types[tid]
        for i in range(vlen):
            off = pos + 12 + 12 * i
            noff, mtype = struct.unpack_from("<II", self.data, off)
            if self.data[self.strs + noff:self.data.index(b"\0", self.strs + noff)] == \
                    name.encode():
                return off, mtype
        raise KeyError(name)

    def arrays_of(self, nelems: int) -> List[int]:
        """File offsets of the nelems fields of every array of ``nelems``."""
        return [pos + 20 for pos, kind, _, _ in self.types.values()
                if kind == KIND_ARRAY and struct.unpack_from("<I", self.data, pos + 20)[0]
                == nelems]


@pytest.fixture(scope="module")
def base(bpf_objects) -> bytes:
    return bpf_objects["corrupt_base"].read_bytes()


def _patch(data: bytes, at: int, value: int) -> bytes:
    out = bytearray(data)
    out[at:at + 4] = struct.pack("<I", value)
    return bytes(out)


def _decode_in_child(tmp_path: Path, data: bytes, expr: str) -> str:
    """Open ``data`` in a child limited to 1 GiB of address space and evaluate
    ``expr`` (``o`` is the Object): 'ok', or the exception's class and message."""
    path = tmp_path / "corrupt.bpf.o"
    path.write_bytes(data)
    code = textwrap.dedent(f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        import pylibbpf
        try:
            with pylibbpf.Object(open({str(path)!r}, "rb").read(), name="corrupt") as o:
                {expr}
            print("ok")
        except Exception as e:
            print(type(e).__name__, isinstance(e, pylibbpf.BPFError), e)
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, **same_pylibbpf())
    assert res.returncode == 0, f"child died with {res.returncode}: {res.stderr[-800:]}"
    return res.stdout.strip()


# --- item 8: sizes -------------------------------------------------------------------

def test_huge_array_in_a_map_value_is_refused_before_allocating(base, tmp_path) -> None:
    """struct big { __u32 vals[5]; ... } with vals[268435456]: a 1 GiB codec."""
    btf = Btf(base)
    (at,) = btf.arrays_of(5)
    out = _decode_in_child(tmp_path, _patch(base, at, 1 << 28),
                           "o.maps['bigmap'].value_type")
    # refused at open by the BTF check (the array no longer fits its struct), or,
    # where BTF passes, by the codec's bound before it allocates
    at_open = "corrupt BTF: BTF type [" in out and "(struct 'big'): member 0 'vals' ends at " \
        "bit 8589934592, past the 32 bytes of the struct" in out
    at_decode = out.startswith("ELFError True value of map 'bigmap': BTF type ") and \
        "'__u32[268435456]'" in out and "1073741824 bytes, more than pylibbpf decodes" in out
    assert out.startswith("ELFError True") and (at_open or at_decode), out


def test_huge_rodata_array_is_refused_before_allocating(base, tmp_path) -> None:
    """const volatile __u16 ro_vals[3] as ro_vals[536870912]: the section gives it 6 bytes."""
    btf = Btf(base)
    (at,) = btf.arrays_of(3)
    out = _decode_in_child(tmp_path, _patch(base, at, 1 << 29), "o.rodata.to_dict()")
    assert out.startswith("ELFError True variable 'ro_vals' of section '.rodata' in object "
                          "'corrupt': its type "), out
    assert "is 1073741824 bytes, the section gives it 6 (corrupt BTF)" in out, out


def test_map_value_bigger_than_any_map_is_refused(base, tmp_path) -> None:
    """A value type that is the map's size but absurd (libbpf takes the size from BTF)."""
    btf = Btf(base)
    big = btf.find(KIND_STRUCT, "big")
    (at,) = btf.arrays_of(5)
    data = _patch(_patch(base, at, (1 << 28) - 2), btf.types[big][0] + 8, 1 << 30)
    out = _decode_in_child(tmp_path, data, "o.maps['bigmap'].value_type")
    assert out.startswith("ELFError True value of map 'bigmap': BTF type [") and \
        "'big' of object 'corrupt' is 1073741824 bytes, more than pylibbpf decodes (16 MiB" \
        in out, out


# --- item 14: codec escapes ------------------------------------------------------------

def test_struct_members_past_its_size_give_elferror(base, tmp_path) -> None:
    """struct big (32 bytes) said to be 16: was an AssertionError from typed.py."""
    btf = Btf(base)
    big = btf.find(KIND_STRUCT, "big")
    out = _decode_in_child(tmp_path, _patch(base, btf.types[big][0] + 8, 16),
                           "o.maps['bigmap'].value_type")
    # refused at open by the BTF check, or (where BTF passes) by the codec
    at_open = "(struct 'big'): member 0 'vals' ends at bit 160, past the 16 bytes of the " \
        "struct" in out
    at_decode = out.startswith("ELFError True value of map 'bigmap': decode BTF type ") and \
        "'big' of object 'corrupt': corrupt type (struct big: its members' layout is " \
        "32 bytes, the type says 16)" in out
    assert out.startswith("ELFError True") and (at_open or at_decode), out


def test_variable_outside_its_section_gives_elferror(base, tmp_path) -> None:
    """A .bss variable running past the section's end: to_dict() was a struct.error
    (libbpf sets each variable's offset from its symbol at open, not its size)."""
    btf = Btf(base)
    bss = btf.find(KIND_DATASEC, ".bss")
    pos = btf.types[bss][0]
    out = _decode_in_child(tmp_path, _patch(base, pos + 12 + 8, 4096), "o.bss.to_dict()")
    assert out == ("ELFError True variable 'hits' of section '.bss' in object 'corrupt': its "
                   "4096 bytes at offset 0 lie outside the section's 8 bytes (corrupt BTF) "
                   "[EINVAL]"), out


def test_unknown_map_type_number_is_an_elferror(base, tmp_path) -> None:
    """__uint(type, 4096): Map.type was a ValueError from the MapType enum."""
    btf = Btf(base)
    st = btf.ref(btf.find(KIND_VAR, "bigmap"))
    _, ptr = btf.member(st, "type")
    arr = btf.ref(ptr)
    at = btf.types[arr][0] + 20
    out = _decode_in_child(tmp_path, _patch(base, at, 4096),
                           "m = o.maps['bigmap']; print(repr(m)); m.type")
    first, second = out.splitlines()
    assert first.startswith("<pylibbpf.Map 'bigmap' type=4096 "), first
    assert second == ("ELFError True map 'bigmap' of 'corrupt' has map type number 4096, which "
                      "pylibbpf does not know (a corrupt object, or a newer kernel's type) "
                      "[EINVAL]"), second
    out = _decode_in_child(tmp_path, _patch(base, at, 4096), "o.maps['bigmap'].key_type")
    assert out.startswith("ELFError True map 'bigmap' of 'corrupt' has map type number 4096"), out


def _raw_btf(types: List[bytes], strings: bytes) -> bytes:
    body = b"".join(types)
    return struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(body), len(body),
                       len(strings)) + body + strings


def test_types_nesting_too_deep_give_elferror(tmp_path) -> None:
    """70 typedefs, each of the one before: was a ValueError."""
    from pylibbpf._ffi import ffi, lib
    from pylibbpf.btf import BTF

    strings = b"\0int\0" + b"".join(b"t%d\0" % i for i in range(70))
    offs = [5]
    for i in range(69):
        offs.append(offs[-1] + len(b"t%d\0" % i))
    types = [struct.pack("<IIII", 1, 1 << 24, 4, (1 << 24) | 32)]  # [1] int
    types += [struct.pack("<III", offs[i], 8 << 24, i + 1) for i in range(70)]  # typedefs
    path = tmp_path / "deep.btf"
    path.write_bytes(_raw_btf(types, strings))
    ptr = lib.btf__parse(str(path).encode(), ffi.NULL)
    assert ptr != ffi.NULL
    btf = BTF(ptr, owned=True, label="deep.btf")
    # (named where the 65th level is reached)
    with pytest.raises(pylibbpf.ELFError, match=r"BTF type \[6\] 't4' of deep.btf nests more "
                                                r"than 64 types deep \(corrupt BTF\?\)"):
        btf.codec(71)
    assert btf.codec(60).size == 4  # shallower ones still decode
    btf.close()


def test_object_path_with_a_nul_byte_is_a_bpferror() -> None:
    with pytest.raises(pylibbpf.ELFError, match=r"BPF object path 'a\\x00b' contains a NUL byte"):
        pylibbpf.Object("a\0b")


# --- item 13: the ELF symbol index ---------------------------------------------------

@pytest.fixture(scope="module")
def versioned_lib(tmp_path_factory) -> bytes:
    """A small shared library with .gnu.version_d (a version script) and .gnu.version_r."""
    if shutil.which("gcc") is None:
        pytest.fail("gcc is needed (dev.sh installs it)")
    d = tmp_path_factory.mktemp("elfbase")
    (d / "v.map").write_text("V1 { global: lib_add; local: *; };\n")
    (d / "t.c").write_text("#include <stdio.h>\nint lib_add(int a, int b) "
                           "{ puts(\"x\"); return a + b; }\n")
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-o", str(d / "libv.so"), str(d / "t.c"),
                    f"-Wl,--version-script={d / 'v.map'}"], check=True)
    return (d / "libv.so").read_bytes()


def _shdr_patch(data: bytes, section: str, field: int, width: int, value: int) -> bytes:
    h, _, _ = _sections(data)[section]
    out = bytearray(data)
    out[h + field:h + field + width] = value.to_bytes(width, "little")
    return bytes(out)


@pytest.mark.parametrize("section, field, width, value, why", [
    # sh_link of the version definitions: the string table looked up as sections[999]
    (".gnu.version_d", 40, 4, 999, "a version section links to section 999 of"),
    (".gnu.version_r", 40, 4, 999, "a version section links to section 999 of"),
    # a symbol table of 2**40 bytes: read (allocated) whole
    (".dynsym", 32, 8, 1 << 40, "runs past the end of the file"),
    # a string table at offset 2**63 - 1: seek overflowed
    (".dynstr", 24, 8, (1 << 63) - 1, "runs past the end of the file"),
    (".dynstr", 24, 8, (1 << 64) - 1, "runs past the end of the file"),
])
def test_malformed_elf_gives_elferror_naming_the_file(versioned_lib, tmp_path, section, field,
                                                       width, value, why) -> None:
    path = tmp_path / "libbad.so"
    path.write_bytes(_shdr_patch(versioned_lib, section, field, width, value))
    elf.clear_cache()
    for call in (lambda: elf.functions(str(path)), lambda: elf.resolve(str(path), "lib_add")):
        with pytest.raises(pylibbpf.ELFError) as ei:
            call()
        assert str(path) in str(ei.value) and why in str(ei.value), str(ei.value)
    path.write_bytes(versioned_lib)  # the same file, intact: resolves
    elf.clear_cache()
    assert elf.resolve(str(path), "lib_add").offset > 0


# --- the corpus of fuzz findings -----------------------------------------------------

CORPUS = Path(__file__).resolve().parent / "data" / "fuzz-structured"
FUZZ = Path(__file__).resolve().parent.parent / "fuzz" / "fuzz_structured.py"


def test_fuzz_corpus_replays_clean() -> None:
    """Inputs the structure-aware fuzzer once failed on (escapes, memory blow-ups) run
    through the same steps (open, list, decode key/value types and globals, load; the
    symbol index for ELF files) in a child limited to 1 GiB: only BPFErrors now."""
    files = sorted(str(p) for p in CORPUS.iterdir())
    assert files
    res = subprocess.run([sys.executable, str(FUZZ), "--replay", "--memory", "1024", *files],
                         capture_output=True, text=True, timeout=600, **same_pylibbpf())
    assert res.returncode in (0, 1), res.stderr[-2000:]
    stats = json.loads(res.stdout.strip().splitlines()[-1])
    assert stats["inputs"] == len(files) and stats["failures"] == [], stats["failures"]


# --- malformed hash tables of .dynsym (issue 18: lookups go through them, in C) -----

@pytest.fixture(scope="module")
def hashed_libs(tmp_path_factory) -> Dict[str, bytes]:
    """A shared library of 40 exported functions, with only a GNU hash table
    ("gnu") or only a SysV one ("sysv"), so that chains hold several symbols."""
    if shutil.which("gcc") is None:
        pytest.fail("gcc is needed (dev.sh installs it)")
    d = tmp_path_factory.mktemp("hashlib")
    (d / "t.c").write_text("".join(f"int f{i}(int a) {{ return a + {i}; }}\n"
                                   for i in range(40)))
    out = {}
    for style in ("gnu", "sysv"):
        so = d / f"lib{style}.so"
        subprocess.run(["gcc", "-shared", "-fPIC", "-O1", f"-Wl,--hash-style={style}", "-o",
                        str(so), str(d / "t.c")], check=True)
        out[style] = so.read_bytes()
    return out


def _hash_patch(data: bytes, style: str, how: str) -> bytes:
    """``data`` with its .gnu.hash / .hash changed as ``how`` says."""
    _h, off, size = _sections(data)[".gnu.hash" if style == "gnu" else ".hash"]
    out = bytearray(data)

    def put(at: int, value: int) -> None:
        struct.pack_into("<I", out, off + at, value)

    if style == "gnu":
        nbuckets, _symoffset, bloom, _shift = struct.unpack_from("<4I", data, off)
        buckets = 16 + 8 * bloom
        chain = buckets + 4 * nbuckets
        if how == "no buckets":
            put(0, 0)
        elif how == "huge bloom":
            put(8, 0x10000000)
        elif how == "symoffset past the table":
            put(4, 0xFFFFFF)
        elif how == "buckets past the table":
            for k in range(nbuckets):
                put(buckets + 4 * k, 0xFFFFFF00)
        elif how == "chains without end":
            for at in range(chain, size - 3, 4):
                put(at, struct.unpack_from("<I", data, off + at)[0] & ~1)
    else:
        nbucket, nchain = struct.unpack_from("<2I", data, off)
        chains = 8 + 4 * nbucket
        if how == "no buckets":
            put(0, 0)
        elif how == "nchain not the symbol count":
            put(4, nchain + 5)
        elif how == "chain links past the end":
            for k in range(1, nchain):
                put(chains + 4 * k, 0xFFFF)
        elif how == "chains that loop":
            for k in range(nbucket):
                put(8 + 4 * k, 1)
            for k in range(nchain):
                put(chains + 4 * k, 1)
    return bytes(out)


HASH_CASES = [
    ("gnu", "no buckets", "has no buckets"),
    ("gnu", "huge bloom", "bloom filter"),
    ("gnu", "symoffset past the table", "starts at symbol 16777215"),
    ("gnu", "buckets past the table", "a chain that runs past the last symbol"),
    ("gnu", "chains without end", "a chain that runs past the last symbol"),
    ("sysv", "no buckets", "has no buckets"),
    ("sysv", "nchain not the symbol count", "chain entries for"),
    ("sysv", "chain links past the end", "a chain link past its end"),
    ("sysv", "chains that loop", "a chain that loops"),
]

_HASH_CHILD = r"""
import json, sys
import pylibbpf
from pylibbpf import elf
out = []
for path, fast in json.loads(sys.argv[1]):
    got = []
    for call in ("lookup", "resolve"):
        elf.clear_cache()
        try:
            idx = elf.symbol_index(path)
            if not fast:
                idx._fast[""] = None  # the Python path
            elif idx._fast_lookup("") is None:
                got.append("no C path")
                continue
            r = idx.lookup("f7") if call == "lookup" else elf.resolve(path, "f7")
            got.append(f"no error: {r!r}")
        except pylibbpf.ELFError as e:
            got.append(str(e))
        except Exception as e:
            got.append(f"escape {type(e).__name__}: {e}")
    out.append(got)
print(json.dumps(out))
"""


def test_malformed_hash_tables_give_elferror(hashed_libs, tmp_path) -> None:
    """Bogus bucket counts, bloom sizes, symbol offsets and chain links of .gnu.hash
    and .hash (lookups follow them, in C and in the Python fallback) are ELFErrors
    naming the file and the table; nothing crashes, loops or reads past the table.
    The checks run in a child: a bad read in C would kill it, not the test run."""
    for style, data in hashed_libs.items():  # intact: both paths find f7
        path = tmp_path / f"ok-{style}.so"
        path.write_bytes(data)
        elf.clear_cache()
        assert elf.resolve(str(path), "f7").symbol is not None
    jobs = []
    for k, (style, how, _why) in enumerate(HASH_CASES):
        path = tmp_path / f"bad{k}-{style}.so"
        path.write_bytes(_hash_patch(hashed_libs[style], style, how))
        jobs += [(str(path), True), (str(path), False)]
    res = subprocess.run([sys.executable, "-c", _HASH_CHILD, json.dumps(jobs)],
                         capture_output=True, text=True, timeout=300, **same_pylibbpf())
    assert res.returncode == 0, res.stderr[-2000:]
    results = json.loads(res.stdout)
    for (path, fast), got in zip(jobs, results):
        style, how, why = HASH_CASES[int(Path(path).name[3:].split("-")[0])]
        table = ".gnu.hash" if style == "gnu" else ".hash"
        for msg in got:
            assert path in msg and f"the {table} of .dynsym" in msg and why in msg, \
                (style, how, fast, msg)


_NAMED_GLOBALS = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
const volatile int plbknob = 3;
int plbcount;
SEC("tracepoint/syscalls/sys_enter_getpid")
int count(void *ctx) { plbcount += plbknob; return 0; }
char LICENSE[] SEC("license") = "GPL";
"""


def test_a_global_whose_btf_name_is_not_utf8_is_an_elf_error() -> None:
    """Found by the 1,000,000-input fuzz run: a variable's BTF name that is not UTF-8
    escaped from obj.section() as UnicodeDecodeError."""
    data = Path(pylibbpf.compile(text=_NAMED_GLOBALS)).read_bytes()
    assert b"plbknob" in data
    with pylibbpf.Object(data.replace(b"plbknob", b"plbk\xbcob"), name="bad") as obj:
        with pytest.raises(pylibbpf.ELFError) as ei:
            obj.section(".rodata")
    assert str(ei.value) == ("read data section '.rodata' of object 'bad': corrupt BTF: the "
                             "name b'plbk\\xbcob' is not UTF-8 (invalid start byte at byte 4) "
                             "[EINVAL]"), str(ei.value)
    with pylibbpf.Object(data, name="good") as obj:  # the intact object reads fine
        assert obj.section(".rodata").to_dict() == {"plbknob": 3}


_NAMED_MAP = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, int);
	__type(value, long);
} plbmapname SEC(".maps");
SEC("tracepoint/syscalls/sys_enter_getpid")
int count(void *ctx) { int k = 0; long *v = bpf_map_lookup_elem(&plbmapname, &k);
	if (v) __sync_fetch_and_add(v, 1); return 0; }
char LICENSE[] SEC("license") = "GPL";
"""


def test_a_map_whose_name_is_not_utf8_opens_with_an_escaped_name() -> None:
    """A map's ELF symbol (and BTF variable) name that is not UTF-8: libbpf takes it
    as it is; its name reads back with the byte escaped, never a UnicodeDecodeError."""
    data = Path(pylibbpf.compile(text=_NAMED_MAP)).read_bytes()
    assert b"plbmapname" in data
    with pylibbpf.Object(data.replace(b"plbmapname", b"plbm\xbcpname"), name="bad") as obj:
        assert list(obj.maps) == ["plbm\\xbcpname"]
        assert obj.maps["plbm\\xbcpname"].name == "plbm\\xbcpname"
