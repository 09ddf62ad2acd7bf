#!/usr/bin/env bash
# Install everything the kernel-matrix VM needs (tests/vm/run.py's pre-flight, VM_TOOLS,
# checks each of these programs and names its package when one is missing):
#   qemu-system-x86  qemu-system-x86_64, the emulator (TCG is enough)
#   busybox-static   a statically linked busybox for virtme-ng's initramfs
#   file             virtme-ng runs `file` on the kernel image and on busybox
#   kmod             depmod (the unpacked kernel's module index), modprobe (virtme-ng
#                    picks the guest's drivers; the guest kernel loads modules)
#   udev             systemd-udevd and udevadm, started by virtme-ng-init in the guest
#   iproute2         `ip`, for the guest tests' network namespaces and veth pairs
# and virtme-ng (vng, virtme-run) from PyPI into the given virtual environment.
#   tests/vm/setup.sh [VENV]      (as root; VENV defaults to ./.venv)
# Idempotent: installs only what is missing. Never fails the caller's set-up: when
# something cannot be installed, the VM tests are skipped with the reason -- or, when
# the matrix is required (CI set, or PYLIBBPF_VM_REQUIRED=1), they fail with it.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
VENV=${1:-${PYLIBBPF_VENV:-$(cd "$HERE/../.." && pwd)/.venv}}

pkgs=(qemu-system-x86 busybox-static file kmod udev iproute2)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "==> installing Debian packages for the VM tests: ${missing[*]}" >&2
    apt-get update -q >/dev/null || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
        || echo "warning: could not install ${missing[*]}; the VM tests will be skipped (failed under CI)" >&2
fi

if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c 'import virtme_ng' 2>/dev/null; then
    echo "==> installing virtme-ng into $VENV" >&2
    "$VENV/bin/pip" install -q --disable-pip-version-check 'virtme-ng>=1.30' \
        || echo "warning: could not install virtme-ng; the VM tests will be skipped (failed under CI)" >&2
fi

# the same pre-flight the tests run: say now what is still missing, and from where
if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" "$HERE/run.py" --check >/dev/null; then
    echo "warning: the kernel-matrix VM cannot start here (see above); the VM tests will be" \
         "skipped (failed under CI)" >&2
fi
exit 0
