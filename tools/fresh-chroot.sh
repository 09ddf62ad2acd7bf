#!/usr/bin/env bash
# fresh-chroot.sh - run a project's set-up commands in a throwaway, pristine
# Debian chroot ("does the README work on a fresh machine?").
# (pylibbpf's copy of ../shared/tools/fresh-chroot.sh, with --suite, --packages, --add,
# --out.)
#
#   fresh-chroot.sh [--keep] [--timeout SECS] [--rebuild] [--suite SUITE]
#                   [--packages "P1 P2 ..."] [--add HOST_PATH:CHROOT_PATH]...
#                   [--out HOST_DIR:CHROOT_DIR]... SRC_DIR -- COMMAND...
#
# * Cached base per suite and package list: $FRESH_CHROOT_CACHE/base-SUITE-HASH.tar
#   (default /tmp/fresh-chroot), built once with `debootstrap --variant=minbase SUITE`
#   (default bookworm) + the packages (default: python3 python3-venv python3-pip git
#   ca-certificates sudo; --no-install-recommends), using the Debian mirror named in
#   the host's /etc/apt (for a suite the host does not use, the same mirror with that
#   suite, its -updates and its -security). Rebuilt automatically when the host's
#   apt/CA config or the package list changes, or with --rebuild.
# * --add copies a host file or directory into the fresh rootfs (repeatable);
#   --out HOST_DIR:CHROOT_DIR copies what the command left in CHROOT_DIR back out.
# * Each run unpacks a fresh copy, `git clone`s SRC_DIR (committed files only)
#   to /root/project and copies SRC_DIR/../shared (if any) to /root/shared.
# * Mounts (/proc, rbind /sys incl. bpffs/tracefs/cgroups, rbind /dev incl.
#   /dev/pts, tmpfs /run) live in a private mount namespace made with unshare,
#   so nothing propagates to the host and everything disappears with the
#   namespace even if this script is killed; they are also unmounted explicitly.
# * COMMAND... (joined with spaces) runs as root via `bash -lc` in /root/project
#   with a clean environment, with the rootfs pivot_root'ed as the real root of a
#   private mount namespace (as a container runtime does), so / is a mount point and
#   paths in /proc/PID/maps and in nested namespaces read as on a real machine.
#   Exit status = the command's (124 = timed out, 125 = this tool failed).
set -euo pipefail

SUITE=bookworm
PACKAGES=(python3 python3-venv python3-pip git ca-certificates sudo)
BASE_FORMAT=2            # bump to force a rebuild after changing build_base
CACHE=${FRESH_CHROOT_CACHE:-/tmp/fresh-chroot}
set_base_paths() {       # the cached base of this suite + package list
    local h
    h=$(echo "$SUITE ${PACKAGES[*]}" | sha256sum | cut -c1-8)
    BASE=$CACHE/base-$SUITE-$h.tar
    STAMP=$CACHE/base-$SUITE-$h.stamp
}
SELF=$(readlink -f "${BASH_SOURCE[0]}")
CHROOT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf '[fresh-chroot] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 125; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

usage() {
    sed -n '2,31s/^# \{0,1\}//p' "$SELF"
    exit "${1:-0}"
}

# ---------------------------------------------------------------- host config
# First URI of an enabled "deb" source for $SUITE in the host's apt config; for a
# suite the host does not use, its first Debian archive URI (…/debian).
host_mirror() {
    local m
    m=$(host_suite_mirror "$SUITE" | awk 'NR == 1')
    [ -n "$m" ] || m=$(host_debian_uris | grep -E '/debian/?$' | awk 'NR == 1')
    printf '%s\n' "$m"
}

host_has_suite() { [ -n "$(host_suite_mirror "$SUITE")" ]; }

# URIs of every enabled "deb" source of the host (deb822 and one-line formats).
host_debian_uris() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk 'BEGIN { RS = "" }
             { types = uris = ""; enabled = "yes"
               n = split($0, L, "\n")
               for (i = 1; i <= n; i++) {
                   if (L[i] ~ /^[ \t]*#/) continue
                   k = L[i]; sub(/:.*/, "", k); k = tolower(k)
                   v = L[i]; sub(/^[^:]*:[ \t]*/, "", v)
                   if (k == "types") types = v; else if (k == "uris") uris = v
                   else if (k == "enabled") enabled = tolower(v)
               }
               if (types ~ /(^|[ \t])deb([ \t]|$)/ && enabled != "no") {
                   m = split(uris, u, /[ \t]+/); for (j = 1; j <= m; j++) if (u[j] != "") print u[j]
               } }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }; print $i }' "$f"
    done
}

host_suite_mirror() {
    local SUITE=$1
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk -v suite="$SUITE" '
            function flush() {
                if (types ~ /(^|[ \t])deb([ \t]|$)/ && enabled != "no" && uris != "" &&
                    (" " suites " ") ~ ("[ \t]" suite "[ \t]")) {
                    split(uris, u, /[ \t]+/); print u[1]; done = 1; exit
                }
                types = suites = uris = enabled = ""
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            /^[^ \t]/ {
                key = $0; sub(/:.*/, "", key); key = tolower(key)
                val = $0; sub(/^[^:]*:[ \t]*/, "", val); sub(/[ \t]+$/, "", val)
                if (key == "types") types = val; else if (key == "uris") uris = val
                else if (key == "suites") suites = val; else if (key == "enabled") enabled = tolower(val)
            }
            END { if (!done) flush() }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk -v suite="$SUITE" '$1 == "deb" {
            i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
            if ($(i + 1) == suite) { print $i; exit } }' "$f"
    done
}

# Host-local apt.conf.d snippets (not shipped by any package): proxy/validity
# settings etc. that the host needs to reach its archive.
host_apt_conf_snippets() {
    local f
    for f in /etc/apt/apt.conf.d/*; do
        [ -f "$f" ] || continue
        dpkg -S "$f" >/dev/null 2>&1 || printf '%s\n' "$f"
    done
}

host_sources() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && printf '%s\n' "$f"
    done
    return 0
}

# Everything the base tarball depends on; a change triggers a rebuild.
fingerprint() {
    {
        echo "format=$BASE_FORMAT suite=$SUITE packages=${PACKAGES[*]}"
        local files; mapfile -t files < <(host_sources; host_apt_conf_snippets)
        printf '%s\n' "${files[@]}"
        cat "${files[@]}" 2>/dev/null
        { find /etc/apt/preferences /etc/apt/preferences.d /etc/apt/trusted.gpg /etc/apt/trusted.gpg.d \
               /etc/apt/keyrings /usr/local/share/ca-certificates -type f 2>/dev/null || true; } |
            sort | xargs -r sha256sum
    } | sha256sum | cut -c1-16
}

copy_apt_config() {
    local r=$1 f k d srcs
    mapfile -t srcs < <(host_sources)
    rm -f "$r/etc/apt/sources.list"
    mkdir -p "$r/etc/apt/sources.list.d" "$r/etc/apt/preferences.d" "$r/etc/apt/trusted.gpg.d" \
             "$r/etc/apt/keyrings" "$r/etc/apt/apt.conf.d" "$r/etc/apt/auth.conf.d"
    if host_has_suite; then
        for f in "${srcs[@]}"; do cp -a "$f" "$r$f"; done
    else   # a suite the host does not use: the host's Debian mirrors, for that suite
        write_suite_sources "$r"
    fi
    for f in $(host_apt_conf_snippets); do cp -a "$f" "$r$f"; done
    for f in /etc/apt/apt.conf /etc/apt/preferences /etc/apt/trusted.gpg; do
        [ -f "$f" ] && cp -a "$f" "$r$f"
    done
    for d in preferences.d trusted.gpg.d keyrings auth.conf.d; do
        cp -a "/etc/apt/$d/." "$r/etc/apt/$d/"
    done
    # keyrings named by Signed-By that the chroot lacks
    for k in $(cat "${srcs[@]}" | grep -ioE '(signed-by:[[:space:]]*|signed-by=)/[^][[:space:],]+' |
               sed -E 's/^[^/]*//' | sort -u); do
        [ -f "$k" ] && [ ! -e "$r$k" ] && { mkdir -p "$r$(dirname "$k")"; cp -a "$k" "$r$k"; }
    done
    return 0
}

write_suite_sources() {
    local r=$1 main sec
    main=$(host_mirror)
    sec=$(host_debian_uris | grep -E '/debian-security/?$' | awk 'NR == 1')
    {
        printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\n' "$main" "$SUITE" "$SUITE"
        printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
        if [ -n "$sec" ]; then
            printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\n' "$sec" "$SUITE"
            printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
        fi
    } >"$r/etc/apt/sources.list.d/debian.sources"
}

# Network plumbing only: DNS, hosts, local CA certs (for TLS-intercepting egress).
copy_host_net_files() {
    local r=$1
    rm -f "$r/etc/resolv.conf" "$r/etc/hosts"
    cp -L /etc/resolv.conf "$r/etc/resolv.conf"
    cp -L /etc/hosts "$r/etc/hosts"
}

# ------------------------------------------------------- namespace-side helpers
chroot_procs() {   # pids whose root directory is inside $1, or in the run's pivoted mount namespace
    local p link ns=""
    [ -f "$1/../mntns" ] && ns=$(cat "$1/../mntns")
    for p in /proc/[0-9]*; do
        link=$(readlink "$p/root" 2>/dev/null) || continue
        case $link in "$1" | "$1"/*) printf '%s\n' "${p#/proc/}"; continue ;; esac
        if [ -n "$ns" ] && [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$ns" ]; then printf '%s\n' "${p#/proc/}"; fi
    done
    return 0
}

# Run "$@" with the chroot as the real root of a private mount namespace (pivot_root, like a
# container runtime), so paths in /proc/PID/maps and of nested namespaces read as on a real machine.
# $1 = root, $2 = file to record the namespace id in, then the command.
PIVOT='r=$1 nsf=$2; shift 2
readlink /proc/self/ns/mnt > "$nsf"
cd "$r" && mkdir -p .fresh-oldroot && pivot_root . .fresh-oldroot || exit 125
cd / && /.fresh-oldroot/usr/bin/umount -l /.fresh-oldroot || exit 125
exec "$@"'

kill_chroot_procs() {
    local r=$1 pids
    pids=$(chroot_procs "$r")
    [ -z "$pids" ] && return 0
    log "killing leftover processes in the chroot: $(echo $pids)"
    kill -TERM $pids 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        sleep 0.5
        pids=$(chroot_procs "$r"); [ -z "$pids" ] && return 0
    done
    kill -KILL $pids 2>/dev/null || true
    sleep 0.5
}

mounts_under() {   # mount points below $1 in this mount namespace, deepest first
    awk -v p="$1/" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo | sort -r
}

mount_all() {
    local r=$1
    # the chroot's / must be a mount point, as on a real machine (ip netns needs it)
    mountpoint -q "$r" || mount --bind "$r" "$r"
    mount -t proc -o nosuid,nodev,noexec proc "$r/proc"
    mount --rbind /sys "$r/sys";  mount --make-rslave "$r/sys"
    mount --rbind /dev "$r/dev";  mount --make-rslave "$r/dev"
    mount -t tmpfs -o nosuid,nodev,mode=0755 tmpfs "$r/run"
    mkdir -p "$r/run/lock"
    # What systemd mounts on a real machine, in case the host itself lacks it
    # (these mounts exist only in our namespace).
    mountpoint -q "$r/sys/fs/bpf"        || mount -t bpf bpf "$r/sys/fs/bpf" || true
    mountpoint -q "$r/sys/kernel/tracing" || mount -t tracefs tracefs "$r/sys/kernel/tracing" || true
    mountpoint -q "$r/sys/kernel/debug"   || mount -t debugfs debugfs "$r/sys/kernel/debug" 2>/dev/null || true
    mountpoint -q "$r/sys/fs/cgroup"      || mount -t cgroup2 cgroup2 "$r/sys/fs/cgroup" 2>/dev/null || true
}

unmount_all() {
    local r=$1 m left
    for m in run dev sys proc; do
        mountpoint -q "$r/$m" 2>/dev/null && { umount -R "$r/$m" 2>/dev/null || umount -R -l "$r/$m" || true; }
    done
    for m in $(mounts_under "$r"); do umount -l "$m" 2>/dev/null || true; done
    mountpoint -q "$r" 2>/dev/null && { umount "$r" 2>/dev/null || umount -l "$r" || true; }
    left=$(mounts_under "$r")
    [ -z "$left" ] || { log "WARNING: still mounted in namespace: $left"; return 1; }
}

chroot_env() {
    local v
    CENV=(HOME=/root USER=root LOGNAME=root SHELL=/bin/bash LANG=C.UTF-8 "PATH=$CHROOT_PATH"
          "TERM=${TERM:-dumb}" DEBIAN_FRONTEND=noninteractive)
    for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
        [ -n "${!v:-}" ] && CENV+=("$v=${!v}")
    done
    return 0
}

# Runs inside `unshare --mount --propagation private`.
inner_build() {
    local work=$1 root=$1/root mirror
    SUITE=$2; read -r -a PACKAGES <<<"$3"
    mirror=$(host_mirror | awk 'NR == 1')
    [ -n "$mirror" ] || die "no enabled 'deb ... $SUITE' source found in /etc/apt"
    trap 'unmount_all "$root" || true' EXIT
    log "debootstrap --variant=minbase $SUITE (mirror taken from host /etc/apt)"
    debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$root" "$mirror" \
        >"$work/debootstrap.log" 2>&1 || { tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
    copy_host_net_files "$root"
    copy_apt_config "$root"
    if compgen -G '/usr/local/share/ca-certificates/*' >/dev/null; then
        cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
    fi
    # Chroots must not start daemons from maintainer scripts.
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"; chmod 755 "$root/usr/sbin/policy-rc.d"
    mount -t proc proc "$root/proc"
    mount --rbind /dev "$root/dev"; mount --make-rslave "$root/dev"
    chroot_env
    local c=(chroot "$root" /usr/bin/env -i "${CENV[@]}")
    "${c[@]}" update-ca-certificates --fresh >/dev/null
    "${c[@]}" apt-get update -q
    "${c[@]}" apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"
    "${c[@]}" apt-get clean
    unmount_all "$root"
    trap - EXIT
    rm -f "$root/etc/resolv.conf"; : >"$root/etc/resolv.conf"
    rm -rf "$root/tmp/"* "$root/var/tmp/"* "$root/var/log/apt/"* "$root/root/.cache"
    tar --numeric-owner --xattrs --xattrs-include='*' -C "$root" -cf "$work/base.tar" .
}

# Runs inside `unshare --mount --propagation private`.
inner_run() {
    local run=$1 tmo=$2 cmd=$3 root=$1/root rc=0 cpid nsig=0
    on_sig() {
        nsig=$((nsig + 1))
        if [ "$nsig" -ge 2 ]; then
            log "SIG$1 again: killing everything in the chroot"
            # shellcheck disable=SC2046  # pid list
            kill -KILL $(chroot_procs "$root") 2>/dev/null || true
        elif [ "$1" != INT ]; then   # SIGINT from a terminal already reached the command
            kill -s "$1" "$cpid" 2>/dev/null || true
        fi
    }
    trap 'kill_chroot_procs "$root"; unmount_all "$root" || exit 125' EXIT
    trap 'on_sig INT' INT; trap 'on_sig TERM' TERM; trap 'on_sig HUP' HUP
    mount_all "$root"
    chroot_env
    env --default-signal=INT,QUIT \
        timeout --foreground --kill-after=10 "$tmo" \
        unshare --mount --propagation private -- /bin/sh -c "$PIVOT" sh "$root" "$run/mntns" \
        /usr/bin/env -i "${CENV[@]}" /bin/bash -lc "cd /root/project || exit 125
$cmd" <&3 3<&- &
    cpid=$!
    while kill -0 "$cpid" 2>/dev/null; do
        rc=0; wait "$cpid" || rc=$?
    done
    local rc2=0; wait "$cpid" 2>/dev/null || rc2=$?
    [ "$rc2" -ne 127 ] && rc=$rc2
    [ "$rc" -eq 124 ] && [ "$tmo" != 0 ] && log "command timed out after ${tmo}s"
    exit "$rc"
}

# ------------------------------------------------------------------ host side
run_in_namespace() {   # run this script's $1 helper in a private mount namespace
    unshare --mount --propagation private -- "$SELF" "$@"
}

host_mounts_under() { awk -v p="$1/" 'index($2, p) == 1 || $2 == substr(p, 1, length(p) - 1)' /proc/mounts; }

safe_rm() {
    local d=$1
    if [ -n "$(host_mounts_under "$d")" ]; then
        log "WARNING: host has mounts under $d, not deleting it:"; host_mounts_under "$d" >&2; return 1
    fi
    rm -rf --one-file-system "$d"
}

gc_stale_runs() {
    local d pid
    for d in "$CACHE"/run.*; do
        [ -d "$d" ] || continue
        [ -e "$d/KEEP" ] && continue
        pid=$(cat "$d/owner" 2>/dev/null || echo)
        [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && continue
        [ -n "$(chroot_procs "$d/root")" ] && continue
        log "removing stale run directory $d"
        safe_rm "$d" || true
    done
}

ensure_base() {
    local rebuild=$1 fp t0
    mkdir -p "$CACHE"
    exec 9>"$BASE.lock"
    flock 9
    fp=$(fingerprint)
    if [ "$rebuild" = 0 ] && [ -f "$BASE" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$fp" ]; then
        exec 9>&-; return 0
    fi
    [ -f "$BASE" ] && log "rebuilding base (rebuild requested or host apt/CA config changed)"
    command -v debootstrap >/dev/null || { log "installing debootstrap"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; } || die "debootstrap missing: apt-get update && apt-get install -y debootstrap"
    t0=$(now)
    work=$(mktemp -d "$CACHE/build.XXXXXX")
    trap 'safe_rm "$work" || true' EXIT
    run_in_namespace __build "$work" "$SUITE" "${PACKAGES[*]}" || die "building the base rootfs failed (log: $work/debootstrap.log)"
    mv "$work/base.tar" "$BASE.new" && mv "$BASE.new" "$BASE"
    echo "$fp" >"$STAMP"
    safe_rm "$work"; trap - EXIT
    log "TIMING base tarball built in $(since "$t0")s ($(du -h "$BASE" | cut -f1))"
    exec 9>&-
}

main() {
    local tmo=0 rebuild=0 src root t0 rc=0 ipid
    keep=0   # globals used by the EXIT trap: keep, run
    local adds=() outs=() a
    while [ $# -gt 0 ]; do
        case $1 in
            --suite) SUITE=${2:?--suite needs a suite}; shift ;;
            --suite=*) SUITE=${1#*=} ;;
            --packages) read -r -a PACKAGES <<<"${2//,/ }"; shift ;;
            --packages=*) a=${1#*=}; read -r -a PACKAGES <<<"${a//,/ }" ;;
            --add) adds+=("${2:?--add needs HOST_PATH:CHROOT_PATH}"); shift ;;
            --add=*) adds+=("${1#*=}") ;;
            --out) outs+=("${2:?--out needs HOST_DIR:CHROOT_DIR}"); shift ;;
            --out=*) outs+=("${1#*=}") ;;
            --keep) keep=1 ;;
            --timeout) tmo=${2:?--timeout needs seconds}; shift ;;
            --timeout=*) tmo=${1#*=} ;;
            --rebuild) rebuild=1 ;;
            -h | --help) usage 0 ;;
            --) die "SRC_DIR missing" ;;
            -*) log "unknown option $1"; usage 125 ;;
            *) break ;;
        esac
        shift
    done
    [ $# -ge 1 ] || usage 125
    src=$1; shift
    [ "${1:-}" = -- ] || die "expected '--' after SRC_DIR"
    shift
    [ $# -ge 1 ] || die "no COMMAND given"
    [ "$(id -u)" = 0 ] || die "must run as root"
    [[ $tmo =~ ^[0-9]+[smhd]?$ ]] || die "bad --timeout '$tmo'"
    [[ $SUITE =~ ^[a-z]+$ ]] || die "bad --suite '$SUITE'"
    set_base_paths
    src=$(readlink -f "$src")
    git -C "$src" rev-parse --git-dir >/dev/null 2>&1 || die "$src is not a git checkout"

    ensure_base "$rebuild"
    gc_stale_runs

    run=$(mktemp -d "$CACHE/run.XXXXXX")
    root=$run/root
    echo $$ >"$run/owner"
    [ "$keep" = 1 ] && : >"$run/KEEP"
    trap '[ "$keep" = 1 ] && log "kept: $root" || safe_rm "$run" || true' EXIT
    mkdir "$root"
    t0=$(now)
    tar --numeric-owner --xattrs --xattrs-include='*' -xpf "$BASE" -C "$root"
    log "TIMING fresh rootfs unpacked in $(since "$t0")s -> $root"
    copy_host_net_files "$root"
    git -c safe.directory='*' clone -q --no-hardlinks "$src" "$root/root/project" ||
        die "git clone of $src failed"
    for a in "${adds[@]}"; do
        [ -e "${a%%:*}" ] || die "--add: ${a%%:*} does not exist"
        mkdir -p "$root$(dirname "${a#*:}")"
        cp -a "${a%%:*}" "$root${a#*:}"
        log "added ${a%%:*} -> ${a#*:}"
    done
    if [ -d "$src/../shared" ]; then
        cp -a "$src/../shared" "$root/root/shared"
        log "copied $(readlink -f "$src/../shared") -> /root/shared"
    fi
    log "running in chroot (/root/project @ $(git -C "$src" rev-parse --short HEAD)): $*"

    # The namespace side runs in the background so that TERM/HUP sent to us can
    # be forwarded; Ctrl-C reaches it (and the command) directly via the tty.
    trap ':' INT
    trap 'kill -TERM "$ipid" 2>/dev/null || true' TERM HUP
    exec 3<&0
    env --default-signal=INT,QUIT unshare --mount --propagation private -- \
        "$SELF" __run "$run" "$tmo" "$*" <&3 &
    ipid=$!
    exec 3<&-
    while kill -0 "$ipid" 2>/dev/null; do
        rc=0; wait "$ipid" || rc=$?
    done
    local rc2=0; wait "$ipid" 2>/dev/null || rc2=$?
    [ "$rc2" -ne 127 ] && rc=$rc2
    trap - INT TERM HUP
    for a in "${outs[@]}"; do
        if [ -d "$root${a#*:}" ]; then
            mkdir -p "${a%%:*}" && cp -a "$root${a#*:}/." "${a%%:*}/" && log "copied out ${a#*:} -> ${a%%:*}"
        else
            log "--out: ${a#*:} does not exist in the chroot"; [ "$rc" = 0 ] && rc=125
        fi
    done
    if [ -n "$(host_mounts_under "$run")" ]; then
        log "WARNING: mounts left under $run in the host namespace"; rc=125
    fi
    log "command exited with status $rc"
    exit "$rc"
}

case ${1:-} in
    __build) shift; inner_build "$@" ;;
    __run) shift; exec 3<&0; inner_run "$@" ;;
    *) main "$@" ;;
esac
