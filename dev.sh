#!/usr/bin/env bash
# One entry point that sets everything up on a fresh Debian machine, then runs a job.
#   ./dev.sh demo              install, build, mount, then trace exec() calls for a few seconds
#   ./dev.sh test              install, build, mount, then mypy + the whole pytest suite
#   ./dev.sh setup             only the set-up
#   ./dev.sh python [ARGS…]    set up (not the VM tools), then the venv's python with ARGS,
#                              e.g. ./dev.sh python examples/execsnoop.py
#   ./dev.sh run CMD [ARGS…]   set up (not the VM tools), then CMD with the venv active
#                              (its bin/ first on PATH), e.g. ./dev.sh run pylibbpf features
#   ./dev.sh wheel             release artifacts in dist/: the sdist (with libbpf's verified
#                              tarball) and self-contained manylinux wheels for CPython 3.11
#                              and 3.13, each built from the sdist in a fresh Debian chroot
#                              (bookworm, trixie) with no network (tools/wheels.sh)
#   ./dev.sh wheel-check       each wheel installed in a fresh chroot of its suite that has
#                              only python3 + python3-venv, then its smoke test
# Extra arguments after "test" go to pytest; after "demo", to the demo. "python" and "run"
# keep the caller's working directory. Everything runs as root (through sudo if needed):
# installing packages, mounting and eBPF itself need it. The venv's python is also
# .venv/bin/python, or plain python after ". .venv/bin/activate"; a bare "sudo python3"
# is the system's python, which lacks pylibbpf's dependencies.
set -euo pipefail
CALLER_DIR=$PWD
cd "$(dirname "$0")"
ROOT=$PWD
VENV=${PYLIBBPF_VENV:-$ROOT/.venv}
PY=${PYTHON:-python3}

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

need_root() {
    if [ "$(id -u)" != 0 ]; then
        # from the caller's directory: $0 may be relative to it, and "python"/"run" keep it
        if command -v sudo >/dev/null; then cd "$CALLER_DIR" && exec sudo -E "$0" "$@"; fi
        echo "dev.sh must run as root (eBPF needs CAP_BPF/CAP_SYS_ADMIN)" >&2; exit 1
    fi
}

install_packages() {
    # clang/llvm: BPF compiler (Debian's default, 14 on bookworm), and clang-19/llvm-19
    # beside it: pylibbpf.compile() picks the newest clang, and may_goto loops (can_loop),
    # CPU v4 instructions and arena programs need clang 18-19; llvm-19 brings the matching
    # llvm-objdump-19/llvm-strip-19; libelf/zlib: libbpf; sdt: USDT; g++/binutils: uprobe
    # test targets (C++, strip, objcopy); util-linux: setpriv/unshare in tests;
    # python3: Debian's dtrace-enabled CPython, traced by the USDT example;
    # chromium: headless browser that checks the flame graph SVG; tmux: a real terminal
    # for the test of `pylibbpf top`'s live view; patchelf: the release tooling's test
    # (tests/test_release.py)
    local pkgs=(clang llvm libelf-dev zlib1g-dev pkg-config iproute2 systemtap-sdt-dev patchelf
                dpkg-dev gcc g++ binutils make util-linux ca-certificates python3 chromium
                tmux)
    # clang-19 where the Debian suite has it (bookworm and later; a fresh machine's
    # package lists may be empty until updated); else the default clang must do
    if dpkg-query -W -f='${Status}' clang-19 2>/dev/null | grep -q "install ok installed" \
            || apt-cache show clang-19 >/dev/null 2>&1 \
            || { apt-get update -q >/dev/null && apt-cache show clang-19 >/dev/null 2>&1; }; then
        pkgs+=(clang-19 llvm-19)
    else
        say "no clang-19 package in this Debian suite: BPF programs compile with its default clang"
    fi
    if ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then pkgs+=(python3-venv); fi
    if ! "$PY" -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null; then
        pkgs+=(python3-dev)
    fi
    local missing=()
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing Debian packages: ${missing[*]}"
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

mount_filesystems() {
    if ! grep -q ' /sys/kernel/tracing tracefs ' /proc/mounts; then
        say "mounting tracefs on /sys/kernel/tracing"
        mount -t tracefs tracefs /sys/kernel/tracing
    fi
    if ! grep -q ' /sys/fs/bpf bpf ' /proc/mounts; then
        say "mounting bpffs on /sys/fs/bpf"
        mkdir -p /sys/fs/bpf && mount -t bpf bpf /sys/fs/bpf
    fi
    if ! grep -q ' cgroup2 ' /proc/mounts; then
        say "mounting cgroup2 on /run/pylibbpf-cgroup2"
        mkdir -p /run/pylibbpf-cgroup2 && mount -t cgroup2 none /run/pylibbpf-cgroup2
    fi
}

build() {
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating virtual environment $VENV"
        "$PY" -m venv "$VENV"
    fi
    # rebuild only when the package's sources changed
    local stamp
    stamp=$(cat pyproject.toml setup.py build_ffi.py vendor/libbpf/pin.toml vendor/libbpf/fetch.py \
            $(find pylibbpf -type f \( -name '*.py' -o -name '*.h' -o -name '*.c' \) \
              ! -path 'pylibbpf/include/*' ! -name _build_info.py | sort) | sha256sum | cut -c1-32)
    if [ "$(cat "$VENV/.pylibbpf-stamp" 2>/dev/null)" != "$stamp" ] \
            || ! ls pylibbpf/_libbpf*.so >/dev/null 2>&1; then
        say "fetching libbpf (pinned, verified) and building pylibbpf"
        "$VENV/bin/python" vendor/libbpf/fetch.py >/dev/null
        "$VENV/bin/pip" install -q --disable-pip-version-check ".[test,numpy,disasm,demangle]"
        # the same extension in the source tree too: code run from the top
        # directory (python -m pylibbpf, examples, the VM guest) imports it from here
        "$VENV/bin/python" build_ffi.py >/dev/null
        echo "$stamp" > "$VENV/.pylibbpf-stamp"
    fi
}

prepare() {
    install_packages
    mount_filesystems
    build
}

enter_venv() {
    cd "$CALLER_DIR"
    export VIRTUAL_ENV=$VENV PATH="$VENV/bin:$PATH"
    unset PYTHONHOME
}

setup() {
    prepare
    # qemu + virtme-ng for the kernel-matrix VM tests (skipped with a reason if unavailable)
    bash tests/vm/setup.sh "$VENV"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
    demo)
        need_root demo "$@"
        setup
        say "demo: tracing exec() on this machine (examples/execsnoop.py)"
        exec "$VENV/bin/python" examples/execsnoop.py "$@"
        ;;
    test)
        need_root test "$@"
        setup
        say "mypy on the package"
        "$VENV/bin/mypy" pylibbpf
        say "pytest"
        exec "$VENV/bin/pytest" -q "$@"
        ;;
    setup)
        need_root setup
        setup
        ;;
    python)
        need_root python "$@"
        prepare >&2  # stdout belongs to the command
        enter_venv
        exec "$VENV/bin/python" "$@"
        ;;
    run)
        if [ $# -eq 0 ]; then echo "usage: $0 run CMD [ARGS…]" >&2; exit 2; fi
        need_root run "$@"
        prepare >&2
        enter_venv
        exec "$@"
        ;;
    wheel)
        need_root wheel
        prepare
        exec bash tools/wheels.sh build
        ;;
    wheel-check)
        need_root wheel-check
        prepare
        exec bash tools/wheels.sh check
        ;;
    *)
        echo "usage: $0 demo|test|setup [ARGS…] | python [ARGS…] | run CMD [ARGS…] | wheel | wheel-check" >&2
        exit 2
        ;;
esac
