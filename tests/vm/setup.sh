#!/usr/bin/env bash
# Install what the kernel-matrix VM needs: qemu (TCG is enough), busybox-static,
# kmod (depmod for the unpacked modules), udev (the guest needs it for its console),
# and virtme-ng from PyPI into the given virtual environment.
#   tests/vm/setup.sh [VENV]      (as root; VENV defaults to ./.venv)
# Idempotent: installs only what is missing. Never fails the caller's set-up: when
# something cannot be installed, the VM tests are reported as skipped with the reason.
set -uo pipefail
VENV=${1:-${PYLIBBPF_VENV:-$(cd "$(dirname "$0")/../.." && pwd)/.venv}}

pkgs=(qemu-system-x86 busybox-static kmod udev)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "==> installing Debian packages for the VM tests: ${missing[*]}" >&2
    apt-get update -q >/dev/null || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
        || echo "warning: could not install ${missing[*]}; the VM tests will be skipped" >&2
fi

if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c 'import virtme_ng' 2>/dev/null; then
    echo "==> installing virtme-ng into $VENV" >&2
    "$VENV/bin/pip" install -q --disable-pip-version-check 'virtme-ng>=1.30' \
        || echo "warning: could not install virtme-ng; the VM tests will be skipped" >&2
fi
exit 0
