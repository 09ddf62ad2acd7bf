#!/bin/sh
# Runs INSIDE the VM (as root), started by tests/vm/run.py: guest.sh RUNDIR
# RUNDIR is shared read-write with the host; everything else the guest writes stays
# in the guest (the root is the host's filesystem, read-only, with tmpfs overlays).
RUN=$1
uname -r > "$RUN/started"
# the guest resets PATH: take the host's (same Python, same packages)
. "$RUN/env"
# the repository comes read-only from the host: overlay it so that tests may write
# into it, in the guest only
mkdir -p /run/pylibbpf-repo/upper /run/pylibbpf-repo/work
mount -t overlay pylibbpf-repo \
    -o "lowerdir=$PYLIBBPF_REPO,upperdir=/run/pylibbpf-repo/upper,workdir=/run/pylibbpf-repo/work" \
    "$PYLIBBPF_REPO" || echo "overlay on $PYLIBBPF_REPO failed" > "$RUN/guest-warnings"
cd "$PYLIBBPF_REPO" || exit 99
grep -q ' /sys/fs/bpf bpf ' /proc/mounts || { mkdir -p /sys/fs/bpf; mount -t bpf bpf /sys/fs/bpf; }
grep -q ' /sys/kernel/tracing tracefs ' /proc/mounts || mount -t tracefs tracefs /sys/kernel/tracing
grep -q ' /sys/kernel/debug debugfs ' /proc/mounts || mount -t debugfs debugfs /sys/kernel/debug
# as on an installed Debian system: /boot/config-$(uname -r) (libbpf reads Kconfig there)
[ -d "$PYLIBBPF_VM_BOOT" ] && mount --bind "$PYLIBBPF_VM_BOOT" /boot
mkdir -p /run/netns "$PYLIBBPF_CACHE"
cat /sys/kernel/security/lsm > "$RUN/lsm" 2>/dev/null
date +%s.%N > "$RUN/pytest-start"
set --
while IFS= read -r arg; do set -- "$@" "$arg"; done < "$RUN/args"   # one per line
"$PYLIBBPF_VM_PYTHON" -m pytest -p guest_plugin -p no:cacheprovider -o junit_family=xunit1 \
    --junitxml="$RUN/junit.xml" -q -rfEs --durations=15 "$@" \
    > "$RUN/pytest.log" 2>&1
echo $? > "$RUN/rc"
date +%s.%N > "$RUN/pytest-end"
sync
