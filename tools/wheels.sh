#!/usr/bin/env bash
# Release artifacts and their proof on pristine machines (run through ./dev.sh).
#
#   tools/wheels.sh build    dist/: the sdist (with the verified libbpf tarball), then a
#                            self-contained wheel per Debian suite, each built from that
#                            sdist in a fresh chroot with no network: bookworm -> CPython
#                            3.11, trixie -> CPython 3.13; libelf bundled by auditwheel
#                            repair, zlib by tools/bundle_zlib.py (both with patchelf)
#   tools/wheels.sh check    each wheel pip-installed into a venv in a fresh chroot of its
#                            suite that has only python3 + python3-venv, then the smoke
#                            test tools/wheel_smoke.py (load, attach, fire, ring buffer,
#                            raw bytecode test_run, ELF symbol index)
#   tools/wheels.sh sdist    only the sdist
#   tools/wheels.sh chroot-build SDIST OUTDIR    (inside the build chroot)
#
# WHEEL_SUITES="bookworm trixie" (the default) chooses the suites. The chroots come from
# tools/fresh-chroot.sh (cached bases in /tmp/fresh-chroot; the first trixie base takes a
# few minutes). Heavy steps run under nice.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DIST=$ROOT/dist
WORK=$ROOT/build/release
SUITES=${WHEEL_SUITES:-bookworm trixie}
# what a pristine machine has: python3 and venv (plus CA certificates, to reach the index)
PRISTINE="python3 python3-venv ca-certificates"
# what building from the sdist needs
BUILD_DEBS="gcc libc6-dev python3-dev python3-venv libelf-dev zlib1g-dev pkg-config"
# Python tools for the build, pinned: the sdist's build requirements, auditwheel and the
# patchelf it needs (>= 0.14.5: bookworm's Debian package, 0.14.3, is too old)
BUILD_PIP=("setuptools==84.2.1" "cffi==2.1.1" "auditwheel==6.8.2" "patchelf==0.17.2.4")
SDIST_PIP=("build==1.6.1")
VENV=${PYLIBBPF_VENV:-$ROOT/.venv}

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'wheels.sh: %s\n' "$*" >&2; exit 1; }
pin() { sed -n "s/^$1 *= *\"\\(.*\\)\"/\\1/p" vendor/libbpf/pin.toml; }
project_version() { sed -n 's/^version *= *"\(.*\)"/\1/p' pyproject.toml | head -1; }
python_of() { case $1 in bookworm) echo cp311 ;; trixie) echo cp313 ;; *) die "no CPython known for suite $1" ;; esac; }
sdist_path() { echo "$DIST/libbpf_cffi-$(project_version).tar.gz"; }
wheel_of() {   # the repaired wheel of suite $1
    local w
    w=$(ls "$DIST"/libbpf_cffi-"$(project_version)"-"$(python_of "$1")"-"$(python_of "$1")"-manylinux*_x86_64.whl 2>/dev/null | head -1)
    [ -n "$w" ] || die "no $(python_of "$1") wheel in dist/ (run ./dev.sh wheel first)"
    echo "$w"
}

make_sdist() {
    local version tarball sha src origin
    version=$(pin version)
    sha=$(pin sha256)
    say "libbpf $version: fetching (pinned, verified) for the sdist"
    "$VENV/bin/python" vendor/libbpf/fetch.py >/dev/null
    tarball=vendor/libbpf/libbpf-$version.tar.gz
    [ -f "$tarball" ] || die "$tarball missing after fetch.py (set LIBBPF_TARBALL to the release tarball)"
    [ "$(sha256sum "$tarball" | cut -d' ' -f1)" = "$sha" ] || die "$tarball: sha256 differs from the pin"
    if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
        say "warning: uncommitted changes are not in the release artifacts (built from HEAD $(git rev-parse --short HEAD))"
    fi
    src=$WORK/src
    rm -rf "$src" && mkdir -p "$src"
    git archive HEAD | tar -x -C "$src"
    cp "$tarball" "$src/vendor/libbpf/"
    origin=$(cat "$tarball.origin" 2>/dev/null || echo "a verified tarball")
    echo "the sdist's tarball (put there by ./dev.sh wheel; fetched from $origin)" \
        >"$src/vendor/libbpf/libbpf-$version.tar.gz.origin"
    if [ ! -x "$WORK/tools/bin/python" ]; then
        python3 -m venv "$WORK/tools"
        "$WORK/tools/bin/pip" install -q --disable-pip-version-check "${SDIST_PIP[@]}"
    fi
    say "sdist"
    mkdir -p "$DIST"
    rm -f "$(sdist_path)"
    PYLIBBPF_SDIST=1 "$WORK/tools/bin/python" -m build -q --sdist --outdir "$DIST" "$src" >/dev/null
    # what the sdist must (not) hold
    local listing
    listing=$(tar -tzf "$(sdist_path)")
    for f in "vendor/libbpf/libbpf-$version.tar.gz" vendor/libbpf/fetch.py vendor/libbpf/pin.toml \
             build_ffi.py LICENSE LICENSES/LGPL-2.1.txt pylibbpf/_csrc/shims.c; do
        grep -qx "libbpf_cffi-$(project_version)/$f" <<<"$listing" || die "sdist lacks $f"
    done
    if grep -E '\.so$|_build_info\.py$|pylibbpf/include/|libbpf-[0-9.]+/src/' <<<"$listing"; then
        die "sdist holds generated files or an unpacked libbpf tree (above)"
    fi
    say "$(basename "$(sdist_path)"): $(stat -c %s "$(sdist_path)") bytes"
}

smoke_object() {
    say "compiling the smoke test's BPF object (the pristine machines have no clang)"
    mkdir -p "$WORK"
    "$VENV/bin/python" -c 'import sys, pylibbpf; pylibbpf.compile(sys.argv[1], sys.argv[2], cache=False)' \
        tools/wheel_smoke.bpf.c "$WORK/wheel_smoke.bpf.o"
}

build_wheels() {
    local suite out sdist
    sdist=$(sdist_path)
    for suite in $SUITES; do
        say "wheel for $suite ($(python_of "$suite")), built from the sdist in a fresh $suite chroot"
        out=$WORK/out-$suite
        rm -rf "$out"
        SECONDS=0
        nice -n 10 tools/fresh-chroot.sh --suite "$suite" --packages "$PRISTINE" --timeout 40m \
            --add "$sdist:/root/in/$(basename "$sdist")" --out "$out:/root/out" . -- \
            "bash tools/wheels.sh chroot-build /root/in/$(basename "$sdist") /root/out"
        rm -f "$DIST"/libbpf_cffi-*-"$(python_of "$suite")"-*.whl
        cp "$out"/*.whl "$DIST/"
        cp "$out/auditwheel-show.txt" "$WORK/auditwheel-show-$suite.txt"
        say "$(basename "$(wheel_of "$suite")"): $(stat -c %s "$(wheel_of "$suite")") bytes, built in ${SECONDS}s"
        sed 's/^/    /' "$WORK/auditwheel-show-$suite.txt" >&2
    done
}

# Inside a fresh chroot: build dependencies with the network, then the wheel from the
# sdist with none (pip, the build and fetch.py could only use what the sdist holds).
chroot_build() {
    local sdist=$1 out=$2 raw=/root/raw bv=/root/build-venv whl
    say "build dependencies: $BUILD_DEBS"
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends $BUILD_DEBS >/dev/null
    python3 -m venv "$bv"
    "$bv/bin/pip" install -q --disable-pip-version-check "${BUILD_PIP[@]}"
    export PATH="$bv/bin:$PATH"   # auditwheel and bundle_zlib.py run the venv's patchelf
    say "building the wheel from $(basename "$sdist") with no network (unshare --net)"
    mkdir -p "$raw" "$out"
    PYLIBBPF_BUNDLE_NOTICES=1 unshare --net -- "$bv/bin/pip" wheel -q --disable-pip-version-check \
        --no-build-isolation --no-deps --no-index -w "$raw" "$sdist"
    whl=$(ls "$raw"/*.whl)
    say "auditwheel repair (bundles libelf and zlib, picks the most portable manylinux tag)"
    unshare --net -- "$bv/bin/auditwheel" repair -w "$out" "$whl"
    whl=$(ls "$out"/*.whl)
    # the policies count libz.so.1 as the system's; bundle it too
    "$bv/bin/python" tools/bundle_zlib.py "$whl" \
        "$(ldconfig -p | awk '$1 == "libz.so.1" && /x86-64/ { print $NF; exit }')"
    "$bv/bin/auditwheel" show "$whl" | tee "$out/auditwheel-show.txt"
    # nothing outside the policy: show must not list external libraries to bundle
    if grep -qi "external shared libraries are required" "$out/auditwheel-show.txt"; then
        echo "auditwheel reports libraries outside the manylinux policy" >&2; exit 1
    fi
    ldd "$(unzip_ext "$whl")" | sed 's/^/    ldd: /'
}

unzip_ext() {   # the wheel's extension, unpacked for ldd
    local d=/root/unpacked
    rm -rf "$d" && mkdir -p "$d"
    python3 -m zipfile -e "$1" "$d"
    ls "$d"/pylibbpf/_libbpf*.so
}

check_wheels() {
    local suite whl sha
    sha=$(pin sha256)
    [ -f "$WORK/wheel_smoke.bpf.o" ] || smoke_object
    for suite in $SUITES; do
        whl=$(wheel_of "$suite")
        say "smoke test of $(basename "$whl") in a fresh $suite chroot with only: $PRISTINE"
        SECONDS=0
        tools/fresh-chroot.sh --suite "$suite" --packages "$PRISTINE" --timeout 15m \
            --add "$whl:/root/in/$(basename "$whl")" --add "$WORK/wheel_smoke.bpf.o:/root/in/wheel_smoke.bpf.o" \
            . -- "set -e
for tool in gcc cc clang python3-config; do
    if command -v \$tool >/dev/null; then echo \"not pristine: \$tool is installed\"; exit 1; fi
done
for deb in libelf1 libelf1t64 libelf-dev python3-dev zlib1g-dev; do
    if dpkg-query -W -f='\${Status}' \$deb 2>/dev/null | grep -q 'install ok installed'; then
        echo \"not pristine: \$deb is installed\"; exit 1
    fi
done
python3 -m venv /root/venv
/root/venv/bin/pip install -q --disable-pip-version-check /root/in/$(basename "$whl")
/root/venv/bin/python tools/wheel_smoke.py /root/in/wheel_smoke.bpf.o $sha"
        say "$(basename "$whl"): smoke test passed in a fresh $suite chroot (${SECONDS}s)"
    done
}

case ${1:-} in
    build)
        make_sdist
        build_wheels
        smoke_object
        say "dist/:"; ls -l "$DIST" >&2
        ;;
    check) check_wheels ;;
    sdist) make_sdist ;;
    chroot-build) shift; chroot_build "$@" ;;
    *) echo "usage: $0 build|check" >&2; exit 2 ;;
esac
