#!/usr/bin/env bash
# The emulated aarch64 lane (issue 16): a cached Debian bookworm arm64 rootfs run under qemu-user.
#
#   lane.sh rootfs          build the rootfs once (cached by recipe) and print its path
#   lane.sh run CMD...      run CMD inside the chroot (WORK_DIR=DIR appears as /work) with /proc, /dev, /sys and an aarch64
#                           /proc/cpuinfo mounted; everything mounted is unmounted on exit
#   lane.sh test            the whole lane: the runtime tests and the x86 golden references on arm64
#   lane.sh ssh-command     sshd forced command: run $SSH_ORIGINAL_COMMAND inside the chroot
#   lane.sh clean           remove every cached rootfs
#
# Needs root (debootstrap, chroot, mounts). Emulated timings mean nothing: the lane checks behaviour
# and numbers, never speed.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
SUITE=bookworm
ARCH=arm64
VARIANT=minbase
INCLUDE=python3,python3-venv,python3-pip,ca-certificates
# Bump when anything that goes into the cached rootfs changes.
RECIPE_VERSION=1
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/edge-sdk/arm64"
# qemu's `max` CPU advertises SME, with which XNNPACK's int8 results differ by up to 200 steps and
# float32 slows to 1.5 s per call; a Neoverse-N1 is what a Raspberry Pi 5 / Graviton 2 class device is.
export QEMU_CPU=neoverse-n1

die() { echo "error: $*" >&2; exit 2; }
log() { echo "[arm64] $*" >&2; }

recipe_key() {
    printf 'suite=%s arch=%s variant=%s include=%s version=%s\n' "$SUITE" "$ARCH" "$VARIANT" "$INCLUDE" \
        "$RECIPE_VERSION" | sha256sum | cut -c1-16
}

ROOTFS="$CACHE_ROOT/rootfs-$(recipe_key)"

# The first Debian (non-security) mirror named in the host's apt sources, deb822 or one-line format.
debian_mirror() {
    local uri=""
    if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
        uri=$(awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}' /etc/apt/sources.list.d/*.sources \
              | grep -v -- '-security' | head -n1 || true)
    fi
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri=$(awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/) {print $i; break}}' \
              /etc/apt/sources.list | grep -v -- '-security' | head -n1 || true)
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

need_root() { [ "$(id -u)" = 0 ] || die "the arm64 lane needs root (debootstrap, chroot, mounts); run it as root"; }

ensure_host_tools() {
    local missing=""
    command -v qemu-aarch64-static >/dev/null || missing="$missing qemu-user-static"
    command -v update-binfmts >/dev/null || missing="$missing binfmt-support"
    command -v debootstrap >/dev/null || missing="$missing debootstrap"
    if [ -n "$missing" ]; then
        log "installing Debian packages:$missing"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    fi
    if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    fi
    if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
        update-binfmts --enable qemu-aarch64 || update-binfmts --import qemu-aarch64
    fi
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || die "binfmt_misc has no qemu-aarch64 entry after update-binfmts --enable qemu-aarch64"
}

cmd_rootfs() {
    need_root
    ensure_host_tools
    if [ -f "$ROOTFS/.edge-sdk-rootfs-complete" ]; then
        echo "$ROOTFS"
        return 0
    fi
    mkdir -p "$CACHE_ROOT"
    local mirror tmp
    mirror=$(debian_mirror)
    # Build beside the final place and rename, so an interrupted build never looks like a cached rootfs.
    tmp=$(mktemp -d "$CACHE_ROOT/.building-XXXXXX")
    log "debootstrap $SUITE $ARCH ($VARIANT, $INCLUDE) from $mirror into $tmp (6 minutes on an idle 2-core machine, 30 on a loaded one)"
    if ! debootstrap --arch="$ARCH" --variant="$VARIANT" --include="$INCLUDE" "$SUITE" "$tmp" "$mirror" \
            > "$CACHE_ROOT/debootstrap.log" 2>&1; then
        tail -n 20 "$CACHE_ROOT/debootstrap.log" >&2
        findmnt -rno TARGET | grep "^$tmp/" | sort -r | xargs -r -n1 umount -l || true
        rm -rf --one-file-system "$tmp"
        die "debootstrap failed (full log: $CACHE_ROOT/debootstrap.log)"
    fi
    printf 'suite=%s arch=%s variant=%s include=%s version=%s mirror=%s\n' \
        "$SUITE" "$ARCH" "$VARIANT" "$INCLUDE" "$RECIPE_VERSION" "$mirror" > "$tmp/.edge-sdk-rootfs-complete"
    rm -rf --one-file-system "$ROOTFS"
    mv "$tmp" "$ROOTFS"
    log "rootfs ready: $ROOTFS ($(du -sh "$ROOTFS" | cut -f1))"
    echo "$ROOTFS"
}

cmd_clean() {
    # Refuse while anything is still mounted inside the cache: rm would follow into the host's /proc or /dev.
    if [ -d "$CACHE_ROOT" ] && findmnt -rno TARGET | grep -q "^$CACHE_ROOT/"; then
        die "something is still mounted under $CACHE_ROOT; unmount it first (findmnt | grep $CACHE_ROOT)"
    fi
    rm -rf --one-file-system "$CACHE_ROOT"
    log "removed $CACHE_ROOT"
}

# ------------------------------------------------------------------------------------------------
# mounts: every one is recorded and undone by the EXIT trap, in reverse order, even on failure

MOUNTED=()
WORK_TO_REMOVE=""

# The EXIT trap: unmount first, so removing the work dir can never reach into a bind mount.
cleanup() {
    unmount_all
    if [ -n "$WORK_TO_REMOVE" ]; then rm -rf --one-file-system "$WORK_TO_REMOVE"; fi
}

unmount_all() {
    local i
    for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
        umount "${MOUNTED[$i]}" 2>/dev/null || umount -l "${MOUNTED[$i]}" 2>/dev/null \
            || echo "warning: could not unmount ${MOUNTED[$i]}" >&2
    done
    MOUNTED=()
}

mount_recorded() {  # mount_recorded TARGET mount-args...
    local target=$1
    shift
    mount "$@" "$target"
    MOUNTED+=("$target")
}

# An aarch64 /proc/cpuinfo: LiteRT reads it to pick kernels, and under qemu-user the process would
# otherwise see the host's x86 one and segfault in allocate_tensors().
write_cpuinfo() {
    local cpus i
    cpus=$(nproc)
    for ((i = 0; i < cpus; i++)); do
        printf 'processor\t: %d\nBogoMIPS\t: 50.00\n' "$i"
        printf 'Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs\n'
        printf 'CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x3\nCPU part\t: 0xd0c\nCPU revision\t: 1\n\n'
    done
}

# Mount what a process in the chroot needs; WORK (a host directory) appears as /work in the chroot.
enter_prepare() {
    local work=${1:-}
    mount_recorded "$ROOTFS/proc" -t proc proc
    mount_recorded "$ROOTFS/sys" --bind /sys  # a second sysfs mount with other flags is refused
    mount_recorded "$ROOTFS/dev" --bind /dev
    write_cpuinfo > "$ROOTFS/etc/edge-sdk-aarch64-cpuinfo"
    mount_recorded "$ROOTFS/proc/cpuinfo" --bind "$ROOTFS/etc/edge-sdk-aarch64-cpuinfo"
    if [ -n "$work" ]; then
        mkdir -p "$ROOTFS/work"
        mount_recorded "$ROOTFS/work" --bind "$work"
    fi
    cp -L /etc/resolv.conf "$ROOTFS/etc/resolv.conf" 2>/dev/null || true
}

in_chroot() {
    chroot "$ROOTFS" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
        LANG=C.UTF-8 QEMU_CPU="$QEMU_CPU" PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180 \
        ${HTTPS_PROXY:+HTTPS_PROXY=$HTTPS_PROXY} ${HTTP_PROXY:+HTTP_PROXY=$HTTP_PROXY} \
        ${https_proxy:+https_proxy=$https_proxy} ${http_proxy:+http_proxy=$http_proxy} \
        ${EXTRA_ENV[@]+"${EXTRA_ENV[@]}"} "$@"
}

# pip in the chroot must trust the same CAs as the host (a TLS-inspecting egress adds its own) and
# use the host's package index when it is a network one (file:// indexes are the host's x86 wheels).
configure_pip() {
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        # update-ca-certificates takes minutes under emulation: run it only when the host's set changed.
        local wanted
        wanted=$(cat /usr/local/share/ca-certificates/*.crt | sha256sum | cut -d' ' -f1)
        if [ "$(cat "$ROOTFS/etc/edge-sdk-host-ca.sha256" 2>/dev/null)" != "$wanted" ]; then
            log "installing the host's local CA certificates in the chroot (update-ca-certificates)"
            mkdir -p "$ROOTFS/usr/local/share/ca-certificates"
            cp /usr/local/share/ca-certificates/*.crt "$ROOTFS/usr/local/share/ca-certificates/"
            in_chroot update-ca-certificates >/dev/null 2>&1 || die "update-ca-certificates failed in the chroot"
            echo "$wanted" > "$ROOTFS/etc/edge-sdk-host-ca.sha256"
        fi
    fi
    local index
    index=$(pip3 config get global.index-url 2>/dev/null || echo "${PIP_INDEX_URL:-}")
    {
        echo "[global]"
        echo "cert = /etc/ssl/certs/ca-certificates.crt"
        case "$index" in http://*|https://*) echo "index-url = $index" ;; esac
    } > "$ROOTFS/etc/pip.conf"
}

# ------------------------------------------------------------------------------------------------

VENV=/opt/edge-sdk-venv
# What the device venv holds besides the edge-sdk wheel: the runtime's own requirements, the test
# runner, and cryptography for `edge-sdk verify` (all have aarch64 wheels).
VENV_REQUIREMENTS="numpy>=1.26,<3 ai-edge-litert==2.3.0 pytest cryptography"

ensure_venv() {
    local stamp="$ROOTFS$VENV/.edge-sdk-requirements"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$VENV_REQUIREMENTS" ]; then
        return 0
    fi
    log "creating $VENV in the chroot: $VENV_REQUIREMENTS"
    rm -rf --one-file-system "$ROOTFS$VENV"
    in_chroot python3 -m venv "$VENV"
    # shellcheck disable=SC2086
    in_chroot "$VENV/bin/pip" install --quiet --only-binary=:all: $VENV_REQUIREMENTS \
        || die "pip install in the chroot failed (network, CA certificates or the index; see above)"
    echo "$VENV_REQUIREMENTS" > "$stamp"
}

# Build the edge-sdk wheel from this checkout (a copy, so the tree gets no build/ or egg-info).
build_wheel() {
    local out=$1 src
    src=$(mktemp -d)
    cp -r "$REPO/pyproject.toml" "$REPO/README.md" "$REPO/edge_sdk" "$REPO/converters" "$REPO/training" "$src/"
    local python=${HOST_PYTHON:-$REPO/.venv/bin/python}
    "$python" -m pip wheel --quiet --no-deps --no-build-isolation -w "$out" "$src" >/dev/null \
        || die "building the edge-sdk wheel failed"
    rm -rf "$src"
    ls "$out"/edge_sdk-*.whl
}

cmd_run() {
    need_root
    [ -f "$ROOTFS/.edge-sdk-rootfs-complete" ] || die "no arm64 rootfs at $ROOTFS yet; run '$0 rootfs' first"
    ensure_host_tools
    enter_prepare "${WORK_DIR:-}"
    in_chroot "$@"
}

# The whole lane: runtime tests + golden references written on x86, checked on aarch64.
cmd_test() {
    need_root
    local started work wheel models status
    started=$(date +%s)
    cmd_rootfs >/dev/null
    work=$(mktemp -d /tmp/edge-sdk-arm64-XXXXXX)
    WORK_TO_REMOVE=$work
    models="$work/models"
    if [ -n "${EDGE_SDK_TEST_MODELS:-}" ]; then
        cp -r "$EDGE_SDK_TEST_MODELS" "$models"
    else
        log "exporting the runtime test models and golden references on the host (TensorFlow)"
        PYTHONPATH="$REPO" "${HOST_PYTHON:-$REPO/.venv/bin/python}" "$REPO/tests/target/export_models.py" "$models" >&2
    fi
    wheel=$(build_wheel "$work/dist")
    mkdir -p "$work/tests"
    cp -r "$REPO/tests/conftest.py" "$REPO/tests/runtime" "$REPO/tests/target" "$work/tests/"
    find "$work/tests" -name __pycache__ -prune -exec rm -rf {} +
    enter_prepare "$work"
    configure_pip
    ensure_venv
    in_chroot "$VENV/bin/pip" install --quiet --no-deps --force-reinstall "/work/dist/$(basename "$wheel")"
    log "machine in the chroot: $(in_chroot uname -m), python $(in_chroot "$VENV/bin/python" -c 'import platform; print(platform.python_version())'), QEMU_CPU=$QEMU_CPU"
    set +e
    EXTRA_ENV=(EDGE_SDK_TEST_MODELS=/work/models)
    in_chroot /bin/sh -c "cd /work && $VENV/bin/python -m pytest tests/runtime tests/target -q -p no:cacheprovider -rxXs ${PYTEST_ARGS:-}"
    status=$?
    EXTRA_ENV=()
    set -e
    log "lane finished with pytest exit $status in $(( $(date +%s) - started )) s"
    return $status
}

# sshd's forced command for a loopback "aarch64 device" (tests/target/test_remote_bench.py): run the
# client's command ($SSH_ORIGINAL_COMMAND) inside the chroot, with the lane's venv first on PATH.
cmd_ssh_command() {
    need_root
    [ -f "$ROOTFS/.edge-sdk-rootfs-complete" ] || die "no arm64 rootfs at $ROOTFS; run make test-arm64 first"
    [ -n "${SSH_ORIGINAL_COMMAND:-}" ] || die "ssh-command runs \$SSH_ORIGINAL_COMMAND, which is empty"
    enter_prepare ""
    chroot "$ROOTFS" /usr/bin/env -i HOME=/root LANG=C.UTF-8 QEMU_CPU="$QEMU_CPU" \
        PATH="$VENV/bin:/usr/local/bin:/usr/bin:/bin" /bin/sh -c "$SSH_ORIGINAL_COMMAND"
}

# Everything runs from main, read whole before it starts: editing this file mid-run is harmless.
main() {
    # Mounts go into a private mount namespace: the kernel drops them when the last process in it ends
    # (even on SIGKILL), and concurrent runs on the same rootfs (the lane, an ssh session) never see or
    # unmount each other's. The EXIT trap still unmounts them in order.
    case "${1:-}" in
        run|test|ssh-command)
            if [ -z "${EDGE_SDK_ARM64_NAMESPACE:-}" ] && [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
                EDGE_SDK_ARM64_NAMESPACE=1 exec unshare --mount --propagation private "$0" "$@"
            fi ;;
    esac
    EXTRA_ENV=()
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    case "${1:-}" in
        rootfs) cmd_rootfs ;;
        run) shift; [ $# -gt 0 ] || die "usage: $0 run CMD..."; cmd_run "$@" ;;
        test) cmd_test ;;
        ssh-command) cmd_ssh_command ;;
        clean) cmd_clean ;;
        *) die "usage: $0 rootfs|run CMD...|test|clean (got '${1:-}')" ;;
    esac
}

{ main "$@"; exit $?; }
