"""Build pylibbpf._libbpf: cffi API mode, with libbpf compiled in from source.

The pinned libbpf release is fetched and verified by vendor/libbpf/fetch.py
(or taken from LIBBPF_SRC). Its C sources are compiled into the extension
together with pylibbpf's small shims; only libelf and zlib are linked.

Before anything is fetched or compiled, :func:`check_build_deps` looks for what
the build needs (a C compiler, ``ar``, ``Python.h``, ``libelf.h``, ``zlib.h``) and
stops with one message naming every missing piece and its Debian package.

``setup.py`` (``cffi_modules``) runs this file and takes ``ffibuilder``;
``python build_ffi.py`` builds the extension in place. Imported as the module
``build_ffi`` (as the tests do) it builds nothing.
"""
from __future__ import annotations

import functools
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import sys
import sysconfig
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

if TYPE_CHECKING:
    from cffi import FFI

ROOT = Path(__file__).resolve().parent


class BuildDepsError(SystemExit):
    """Something the build needs is missing; the message says what and how to get it."""


def compiler_command() -> List[str]:
    """The C compiler the build uses: $CC, else the one Python was built with."""
    return shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")


def _debian_package_of_compiler(name: str) -> str:
    return "clang" if "clang" in os.path.basename(name) else "gcc"


@functools.lru_cache(maxsize=None)
def pkg_config(*args: str) -> Optional[List[str]]:
    """``pkg-config ARGS libelf zlib`` split into words, or None without pkg-config
    (or when it does not know both libraries): then the compiler's defaults are used."""
    exe = shutil.which("pkg-config")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, *args, "libelf", "zlib"], capture_output=True, text=True,
                             timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return shlex.split(out.stdout) if out.returncode == 0 else None


def parse_search_dirs(output: str) -> List[str]:
    """The ``#include <...>`` directories from ``cc -E -v`` output (gcc and clang)."""
    dirs: List[str] = []
    inside = False
    for line in output.splitlines():
        if line.startswith("#include <...> search starts here:"):
            inside = True
        elif line.startswith("End of search list."):
            break
        elif inside and line.startswith(" "):
            dirs.append(line.strip().split(" (")[0])  # clang: "/path (framework directory)"
    return dirs


def header_search_dirs(cc: Sequence[str], extra: Sequence[str] = ()) -> List[str]:
    """Where ``#include <x.h>`` is found: the compiler's own list when it runs, else the
    usual Debian directories; plus $CPATH, $C_INCLUDE_PATH, -I in $CPPFLAGS/$CFLAGS."""
    dirs = list(extra)
    for var in ("CPPFLAGS", "CFLAGS"):
        words = shlex.split(os.environ.get(var, ""))
        for i, w in enumerate(words):
            if w == "-I" and i + 1 < len(words):
                dirs.append(words[i + 1])
            elif w.startswith("-I"):
                dirs.append(w[2:])
    for var in ("CPATH", "C_INCLUDE_PATH"):
        dirs += [d for d in os.environ.get(var, "").split(":") if d]
    found: List[str] = []
    if cc and shutil.which(cc[0]):
        try:
            out = subprocess.run([*cc, "-E", "-v", "-x", "c", os.devnull],
                                 capture_output=True, text=True, timeout=60)
            found = parse_search_dirs(out.stderr)
        except (OSError, subprocess.SubprocessError):
            pass
    if not found:
        multiarch = sysconfig.get_config_var("MULTIARCH") or ""
        found = ["/usr/local/include", *([f"/usr/include/{multiarch}"] if multiarch else []),
                 "/usr/include"]
    return [d for d in dirs if d] + found


def check_build_deps(*, cc: Sequence[str], path: Optional[str], include_dirs: Sequence[str],
                     python_include: str) -> List[Tuple[str, str]]:
    """What is missing for the build, as (what, Debian package) pairs; [] when nothing.

    ``cc`` is the compiler command, looked up on ``path`` (None: $PATH) with ``ar``;
    ``Python.h`` must be in ``python_include``, ``libelf.h`` and ``zlib.h`` in one of
    ``include_dirs``.
    """
    missing: List[Tuple[str, str]] = []
    compiler = cc[0] if cc else "cc"
    if not shutil.which(compiler, path=path):
        missing.append((f"C compiler {compiler}", _debian_package_of_compiler(compiler)))
    if not shutil.which("ar", path=path):
        missing.append(("ar", "binutils"))
    if not (Path(python_include) / "Python.h").is_file():
        missing.append(("Python.h", "python3-dev"))
    for header, package in (("libelf.h", "libelf-dev"), ("zlib.h", "zlib1g-dev")):
        if not any((Path(d) / header).is_file() for d in include_dirs):
            missing.append((header, package))
    return missing


def build_deps_message(missing: Sequence[Tuple[str, str]]) -> str:
    """One message for every missing piece: ``cannot build pylibbpf: missing gcc
    (Debian package gcc), Python.h (python3-dev) — install with: apt-get install …``."""
    items = [f"{what} ({'Debian package ' if i == 0 else ''}{pkg})"
             for i, (what, pkg) in enumerate(missing)]
    packages = list(dict.fromkeys(pkg for _, pkg in missing))
    return (f"cannot build pylibbpf: missing {', '.join(items)} — install with: "
            f"apt-get install {' '.join(packages)}")


def ensure_build_deps() -> None:
    """Stop the build with one clear message when something it needs is missing."""
    cc = compiler_command()
    python_include = sysconfig.get_paths()["include"]
    include_dirs = header_search_dirs(cc, pkg_config_include_dirs())
    missing = check_build_deps(cc=cc, path=None, include_dirs=include_dirs,
                               python_include=python_include)
    if missing:
        raise BuildDepsError(
            build_deps_message(missing)
            + f"\n(compiler: {' '.join(cc)} (from $CC, else Python's sysconfig); Python.h "
              f"looked for in {python_include}; libelf.h and zlib.h in "
              f"{', '.join(dict.fromkeys(include_dirs))})")


def pkg_config_include_dirs() -> List[str]:
    return [w[2:] for w in pkg_config("--cflags-only-I") or [] if w.startswith("-I")]


def pkg_config_link() -> Tuple[List[str], List[str]]:
    """(library dirs, libraries) for libelf and zlib: pkg-config's, else -lelf -lz."""
    words = pkg_config("--libs")
    if not words:
        return [], ["elf", "z"]
    libs = [w[2:] for w in words if w.startswith("-l")]
    return [w[2:] for w in words if w.startswith("-L")], libs or ["elf", "z"]


# Headers installed with the package, so BPF programs and C code can be built
# against the same libbpf that pylibbpf runs.
PACKAGED_HEADERS = (
    "bpf_helpers.h", "bpf_helper_defs.h", "bpf_tracing.h", "bpf_core_read.h",
    "bpf_endian.h", "usdt.bpf.h", "libbpf.h", "libbpf_common.h", "libbpf_legacy.h",
    "libbpf_version.h", "bpf.h", "btf.h", "skel_internal.h",
)


def libbpf_tree() -> Path:
    sys.path.insert(0, str(ROOT / "vendor" / "libbpf"))
    try:
        from fetch import ensure_libbpf  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    return Path(ensure_libbpf())


def install_licenses(tree: Path) -> None:
    """libbpf's license files go into the package (pylibbpf/licenses/libbpf/), so every
    installed copy, a wheel included, carries the license of the code compiled into it."""
    dest = ROOT / "pylibbpf" / "licenses" / "libbpf"
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(tree.glob("LICENSE*")):
        shutil.copy2(path, dest / path.name)


def _debian_package_of(path: str) -> Optional[str]:
    out = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
    if out.returncode != 0:
        return None
    return out.stdout.split(":", 1)[0].strip() or None


def install_bundled_notices() -> None:
    """For a wheel that bundles the build machine's libelf and zlib (``./dev.sh wheel``
    sets PYLIBBPF_BUNDLE_NOTICES=1): the Debian copyright file of every package that
    provides them, or a library they load (libzstd), goes into pylibbpf/licenses/."""
    cc = compiler_command()
    libs: List[str] = []
    for name in ("libelf.so", "libz.so"):
        out = subprocess.run([*cc, f"-print-file-name={name}"], capture_output=True,
                             text=True)
        real = os.path.realpath(out.stdout.strip())
        if not os.path.isfile(real):
            raise BuildDepsError(f"cannot bundle notices: {name} not found by {cc[0]}")
        libs.append(real)
        ldd = subprocess.run(["ldd", real], capture_output=True, text=True).stdout
        for line in ldd.splitlines():
            parts = line.split("=>")
            dep = parts[1].split("(")[0].strip() if len(parts) == 2 else ""
            base = os.path.basename(dep)
            if dep and not base.startswith(("libc.so", "ld-linux", "libm.so", "libpthread",
                                              "libdl.so", "librt.so")):
                libs.append(os.path.realpath(dep))
    dest = ROOT / "pylibbpf" / "licenses"
    dest.mkdir(parents=True, exist_ok=True)
    for lib in dict.fromkeys(libs):
        pkg = _debian_package_of(lib) or _debian_package_of(lib.replace("/usr/lib/", "/lib/", 1))
        copyright_file = Path("/usr/share/doc") / (pkg or "?").split(":")[0] / "copyright"
        if pkg is None or not copyright_file.is_file():
            raise BuildDepsError(f"cannot bundle notices: no Debian copyright file for {lib}"
                                 f" (package {pkg})")
        shutil.copy2(copyright_file, dest / f"{pkg.split(':')[0]}.copyright")


def _first_line(cmd: Sequence[str]) -> str:
    try:
        out = subprocess.run(list(cmd), capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return ""
    return (out.stdout or out.stderr).strip().splitlines()[0] if out.returncode == 0 and \
        (out.stdout or out.stderr).strip() else ""


def build_info(tree: Path) -> Dict[str, str]:
    """Where this build's libbpf came from and what it was built with (``pylibbpf version``)."""
    sys.path.insert(0, str(ROOT / "vendor" / "libbpf"))
    try:
        from fetch import describe  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    libbpf = describe(tree)
    exe = shutil.which("pkg-config")
    versions = []
    for lib in ("libelf", "zlib"):
        v = _first_line([exe, "--modversion", lib]) if exe else ""
        versions.append(f"{lib} {v or '(version unknown)'}")
    system = ""
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                system = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    libc = " ".join(platform.libc_ver()).strip()
    return {
        "libbpf_version": libbpf["version"],
        "libbpf_sha256": libbpf["sha256"],
        "libbpf_origin": libbpf["origin"],
        "linked": ", ".join(versions),
        "built_on": ", ".join(x for x in (system, libc, _first_line([*compiler_command(),
                                                                      "--version"])) if x),
    }


def write_build_info(info: Dict[str, str]) -> None:
    """pylibbpf/_build_info.py (generated, not in git): read by ``pylibbpf version``."""
    text = ('"""Generated by build_ffi.py when the extension was built; not in git."""\n'
            f"BUILD_INFO = {info!r}\n")
    path = ROOT / "pylibbpf" / "_build_info.py"
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


def install_headers(tree: Path) -> None:
    dest = ROOT / "pylibbpf" / "include" / "bpf"
    dest.mkdir(parents=True, exist_ok=True)
    for name in PACKAGED_HEADERS:
        shutil.copy2(tree / "src" / name, dest / name)


LIBBPF_CFLAGS = ["-O2", "-g", "-fPIC", "-fvisibility=hidden", "-DLIBBPF_API=",
                 "-D_LARGEFILE64_SOURCE", "-D_FILE_OFFSET_BITS=64", "-Wno-unused-function"]


# libbpf's btf_new() checks every type of a BTF it parsed (btf_sanity_check): for the
# running kernel's own BTF, mapped from sysfs, ~1.7 ms of a fresh process's first
# CO-RE load (126,412 types), although the kernel checked that BTF itself when it
# booted. pylibbpf compiles btf.c with one line changed: a BTF mapped from a file
# (only btf__load_vmlinux_btf's sysfs path does that) skips the check when
# pylibbpf_kernel_btf_trusted() says so, which _csrc/kbtf.c answers only during its
# own load of /sys/kernel/btf/vmlinux, found on a sysfs mount. The hook is a weak
# symbol: a program linking libbpf.a without pylibbpf's extension (the C references
# in bench/) runs the check as libbpf always does.
_BTF_SANITY_CALL = "\terr = err ?: btf_sanity_check(btf);\n"
_BTF_SANITY_HOOKED = ("\terr = err ?: ((is_mmap && pylibbpf_kernel_btf_trusted && "
                      "pylibbpf_kernel_btf_trusted()) ? 0 : btf_sanity_check(btf));\n")
_BTF_NEW = ("static struct btf *btf_new(const void *data, __u32 size, struct btf *base_btf, "
            "bool is_mmap)\n")
_BTF_HOOK = ("/* pylibbpf (build_ffi.py): the kernel's own BTF, mapped from sysfs, is not "
             "checked again */\nextern int pylibbpf_kernel_btf_trusted(void) "
             "__attribute__((weak));\n")


def hooked_btf_source(src: Path) -> str:
    """libbpf's btf.c with the kernel-BTF hook (see _BTF_SANITY_HOOKED)."""
    text = (src / "btf.c").read_text()
    if text.count(_BTF_SANITY_CALL) != 1 or text.count(_BTF_NEW) != 1 \
            or text.index(_BTF_NEW) > text.index(_BTF_SANITY_CALL):
        raise SystemExit(f"build_ffi.py: {src / 'btf.c'}: btf_new() is not what pylibbpf's "
                         "kernel-BTF hook expects (one sanity-check call in btf_new(..., "
                         "bool is_mmap)); review _BTF_SANITY_HOOKED for this libbpf release")
    return _BTF_HOOK + text.replace(_BTF_SANITY_CALL, _BTF_SANITY_HOOKED)


def build_libbpf_archive(tree: Path) -> Path:
    """Compile libbpf's sources (in parallel) into a static archive, cached by content.

    Only pylibbpf's own module is recompiled on later builds.
    """
    cc = compiler_command()
    src = tree / "src"
    sources = sorted(src.glob("*.c"))
    includes = ["-I", str(src), "-I", str(tree / "include"), "-I", str(tree / "include" / "uapi")]
    for d in pkg_config_include_dirs():  # libelf/zlib outside the default paths
        includes += ["-I", d]
    key = hashlib.sha256()
    for part in (cc, LIBBPF_CFLAGS, includes):
        key.update(repr(part).encode())
    hooked_btf = hooked_btf_source(src)
    for path in sorted(src.glob("*.[ch]")):
        key.update(path.name.encode())
        key.update(hooked_btf.encode() if path.name == "btf.c" else path.read_bytes())
    out_dir = ROOT / "build" / f"libbpf-{key.hexdigest()[:16]}"
    archive = out_dir / "libbpf.a"
    if archive.exists():
        return archive
    tmp = out_dir.with_name(out_dir.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)

    hooked = tmp / "hooked"
    hooked.mkdir()
    (hooked / "btf.c").write_text(hooked_btf)  # its headers come from -I src
    sources = [hooked / "btf.c" if c.name == "btf.c" else c for c in sources]

    def compile_one(c: Path) -> Path:
        obj = tmp / (c.stem + ".o")
        subprocess.run([*cc, *LIBBPF_CFLAGS, *includes, "-c", str(c), "-o", str(obj)],
                       check=True)
        return obj

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        objs: List[Path] = list(pool.map(compile_one, sources))
    subprocess.run(["ar", "rcs", str(tmp / "libbpf.a"), *map(str, objs)], check=True)
    if out_dir.exists():
        shutil.rmtree(out_dir, ignore_errors=True)
    try:
        tmp.rename(out_dir)
    except OSError:  # another build won the race; use its archive
        shutil.rmtree(tmp, ignore_errors=True)
    return archive


def cdefs() -> str:
    parts = sorted((ROOT / "pylibbpf" / "_cdefs").glob("*.h"))
    return "\n".join(p.read_text() for p in parts)


def checks_hash() -> str:
    """A hash of the open's pre-checks (shims.c) and of verdicts.c: the key of
    the remembered verdicts, so another build's are not used."""
    h = hashlib.sha256()
    for name in ("shims.c", "verdicts.c"):
        h.update((ROOT / "pylibbpf" / "_csrc" / name).read_bytes())
    return h.hexdigest()[:16]


def make_ffi() -> FFI:
    ensure_build_deps()  # before fetching or compiling anything
    try:
        from cffi import FFI
    except ImportError:
        raise SystemExit(f"cannot build pylibbpf: cffi is not installed for {sys.executable}; "
                         "use the virtual environment's python (.venv/bin/python after "
                         "./dev.sh setup) or 'pip install cffi'") from None
    tree = libbpf_tree()
    install_headers(tree)
    install_licenses(tree)
    if os.environ.get("PYLIBBPF_BUNDLE_NOTICES") == "1":
        install_bundled_notices()
    write_build_info(build_info(tree))
    src = tree / "src"
    archive = build_libbpf_archive(tree)
    library_dirs, libraries = pkg_config_link()
    ffi = FFI()
    ffi.cdef(cdefs())
    preamble = "\n".join([
        '#include "libbpf.h"',
        '#include "bpf.h"',
        '#include "btf.h"',
        '#include "libbpf_version.h"',
        "#include <linux/if_link.h>",
        (ROOT / "pylibbpf" / "_csrc" / "verdicts.c").read_text(),
        (ROOT / "pylibbpf" / "_csrc" / "shims.c").read_text(),
        (ROOT / "pylibbpf" / "_csrc" / "kbtf.c").read_text(),
        (ROOT / "pylibbpf" / "_csrc" / "featcache.c").read_text(),
        (ROOT / "pylibbpf" / "_csrc" / "events.c").read_text(),
        (ROOT / "pylibbpf" / "_csrc" / "fast.c").read_text(),
        (ROOT / "pylibbpf" / "_csrc" / "elfsym.c").read_text(),
    ])
    ffi.set_source(
        "pylibbpf._libbpf",
        preamble,
        include_dirs=[str(src), str(tree / "include"), str(tree / "include" / "uapi"),
                      *pkg_config_include_dirs()],
        # _fast.c uses the full CPython API (vectorcall, tuple internals)
        define_macros=[("_LARGEFILE64_SOURCE", None), ("_FILE_OFFSET_BITS", "64"),
                       ("LIBBPF_API", ""), ("_CFFI_NO_LIMITED_API", None),
                       # the open's pre-checks: their remembered verdicts are this
                       # build's own (verdicts.c)
                       ("PYLIBBPF_CHECKS_HASH", f'"{checks_hash()}"')],
        py_limited_api=False,
        extra_compile_args=["-O2", "-fvisibility=hidden", "-Wno-unused-function"],
        extra_objects=[str(archive)],
        # the kernel's BTF parsed once per process and shared by every load (kbtf.c);
        # libbpf's positive feature probes remembered per boot (featcache.c)
        extra_link_args=["-Wl,--wrap=btf__load_vmlinux_btf", "-Wl,--wrap=btf__free",
                         "-Wl,--wrap=feat_supported"],
        library_dirs=library_dirs,
        runtime_library_dirs=library_dirs,  # pkg-config's -L, if any: found at run time too
        libraries=libraries,
    )
    return ffi


# setup.py's cffi_modules runs this file (as "__cffi__") and takes ffibuilder;
# "python build_ffi.py" builds in place; "import build_ffi" (tests) builds nothing.
if __name__ != "build_ffi":
    ffibuilder = make_ffi()

if __name__ == "__main__":
    # development build: python build_ffi.py  -> pylibbpf/_libbpf*.so, swapped in atomically
    import tempfile

    (ROOT / "build").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=ROOT / "build") as tmpdir:
        built = Path(ffibuilder.compile(tmpdir=tmpdir))
        dest = ROOT / "pylibbpf" / built.name
        staged = dest.with_name(dest.name + ".new")
        shutil.copy2(built, staged)
        staged.replace(dest)
    print(dest)
