# shellcheck shell=bash
# Shared by deploy/check-image.sh and deploy/check-compose.sh: sourced, never run. Each sets
# CHECK_NAME (its name in messages) and a scratch directory of its own before calling these.
#
# podman runs with a configuration of its own, written to the scratch directory and named by
# CONTAINERS_CONF and CONTAINERS_STORAGE_CONF: the runc runtime, cgroupfs, the vfs storage
# driver and explicit ulimits, which work on hosts without systemd or overlay support. Images
# and volumes are kept in $DOCMILL_CHECK_STATE (default ~/.cache/docmill-check-image), the same
# storage for both scripts, so the base image and the docmill image's layers are made once.

# shellcheck disable=SC2034  # used by the scripts that source this file
DEFAULT_BASE=docker.io/library/python:3.11-slim
# shellcheck disable=SC2034
LOCAL_BASE=local/python:3.11-slim

die() { echo "$CHECK_NAME: $*" >&2; exit 1; }
step() { printf '\n==> %s\n' "$*"; }
seconds_since() { echo $(( $(date +%s) - $1 )); }

# check_state_dir: where podman keeps the checks' images (printed).
check_state_dir() {
  echo "${DOCMILL_CHECK_STATE:-${XDG_CACHE_HOME:-$HOME/.cache}/docmill-check-image}"
}

# use_check_podman SCRATCH: point podman at the checks' configuration and storage.
use_check_podman() {
  local scratch=$1 state
  state=$(check_state_dir)
  mkdir -p "$state/storage" "$state/run"
  cat >"$scratch/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
  cat >"$scratch/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$state/storage"
runroot = "$state/run"
EOF
  export CONTAINERS_CONF=$scratch/containers.conf CONTAINERS_STORAGE_CONF=$scratch/storage.conf
}

# make_base_image IMAGE SCRATCH: Debian bookworm minbase with Python 3.11, pip and venv, made
# with debootstrap (root) and imported into podman as IMAGE.
make_base_image() {
  local image=$1 scratch=$2 rootfs started need
  command -v debootstrap >/dev/null || { echo "$CHECK_NAME: building a base image needs debootstrap (apt-get install -y debootstrap)" >&2; exit 3; }
  [ "$(id -u)" = 0 ] || die "building a base image needs root (debootstrap)"
  started=$(date +%s)
  rootfs=$(mktemp -d "${TMPDIR:-/var/tmp}/docmill-rootfs.XXXXXX")
  step "making the base image $image with debootstrap (Debian bookworm, minbase) in $rootfs"
  debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates \
    bookworm "$rootfs" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$scratch/debootstrap.log" 2>&1 \
    || { tail -n 30 "$scratch/debootstrap.log" >&2; rm -rf "$rootfs"; die "debootstrap failed"; }
  # pip may install into the system Python (the Dockerfile installs uv with it).
  rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
  # The host's CA bundle, so TLS through the host's trusted proxies works inside the build too.
  if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  fi
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  # The image's / is this directory: mktemp made it 0700, which would lock every user but root out.
  chmod 0755 "$rootfs"
  # What the Dockerfile runs besides uv: python3 -m pip, uv venv (python3-venv), groupadd, useradd.
  for need in usr/bin/python3 usr/sbin/groupadd usr/sbin/useradd; do
    [ -x "$rootfs/$need" ] || { rm -rf "$rootfs"; die "the debootstrap root has no /$need"; }
  done
  tar -C "$rootfs" -c . | podman import --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$image" >/dev/null
  rm -rf "$rootfs"
  echo "base image $image made in $(seconds_since "$started") s"
}
