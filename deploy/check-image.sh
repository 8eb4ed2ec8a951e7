#!/usr/bin/env bash
# Builds docmill's image from this checkout with podman and checks that it works:
#
#   1. `docmill demo` in a container without network: the bundled documents through the whole
#      pipeline (SQLite, the offline processor); 5 of the 6 complete, the broken PDF fails;
#   2. `docmill serve` with API tokens set: GET /api/health answers 200 without a token, the
#      documents API answers 401 without it and 200 with it;
#   3. `docmill supervise` in a container with a host name (as docker-compose.yml gives it):
#      `docmill queue status --local` (compose's health check) exits 0 and names that host,
#      and the image's stop signal stops the master gracefully (exit 0).
#
# Usage:
#
#     deploy/check-image.sh [--base IMAGE] [--make-base] [--tag TAG]
#
#   --base IMAGE  the image to build on (Dockerfile ARG BASE_IMAGE); default $DOCMILL_BASE_IMAGE,
#                 else docker.io/library/python:3.11-slim. An image podman already has is used
#                 as it is (podman build --pull=never); another one is pulled.
#   --make-base   where no image registry answers: build the base image locally with debootstrap
#                 (root, `apt-get install -y debootstrap`) unless podman has it already; the
#                 base defaults to local/python:3.11-slim then. Made by hand, that is:
#
#       debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates \
#           bookworm ROOTFS http://deb.debian.org/debian
#       rm -f ROOTFS/usr/lib/python3*/EXTERNALLY-MANAGED     # let pip install uv into it
#       cp /etc/ssl/certs/ca-certificates.crt ROOTFS/etc/ssl/certs/   # the host's CA bundle
#       tar -C ROOTFS -c . | podman import --change 'ENV LANG=C.UTF-8' - local/python:3.11-slim
#
#   --tag TAG     the image built; default docmill:check.
#
# podman runs with a configuration of its own (written to a temporary directory and named by
# CONTAINERS_CONF and CONTAINERS_STORAGE_CONF): the runc runtime, cgroupfs, the vfs storage
# driver and explicit ulimits, which work on hosts without systemd or overlay support. Images
# are kept in $DOCMILL_CHECK_STATE (default ~/.cache/docmill-check-image), so the base image
# is made once; delete that directory to reclaim the space. The build runs with the host's
# network (--network host) so that uv reaches the package index. deploy/check-common.sh holds
# what this script shares with deploy/check-compose.sh (that configuration, the base image).
#
# Exit status: 0 when every check passed, 1 when one failed, 2 on a usage error, 3 when podman
# (or, for --make-base, debootstrap) is missing.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CHECK_NAME=check-image
# shellcheck source=deploy/check-common.sh
. "$ROOT/deploy/check-common.sh"
base=${DOCMILL_BASE_IMAGE:-}
make_base=no
tag=docmill:check

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --base) [ $# -ge 2 ] || { usage >&2; exit 2; }; base=$2; shift 2 ;;
    --base=*) base=${1#--base=}; shift ;;
    --make-base) make_base=yes; shift ;;
    --tag) [ $# -ge 2 ] || { usage >&2; exit 2; }; tag=$2; shift 2 ;;
    --tag=*) tag=${1#--tag=}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "check-image: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
if [ -z "$base" ]; then
  if [ "$make_base" = yes ]; then base=$LOCAL_BASE; else base=$DEFAULT_BASE; fi
fi

command -v podman >/dev/null || { echo "check-image: podman is not installed (apt-get install -y podman runc)" >&2; exit 3; }
command -v curl >/dev/null || { echo "check-image: curl is not installed" >&2; exit 3; }

scratch=$(mktemp -d)
containers=()
cleanup() {
  local id
  for id in "${containers[@]}"; do podman rm -f -t 0 "$id" >/dev/null 2>&1 || true; done
  rm -rf "$scratch"
}
trap cleanup EXIT
use_check_podman "$scratch"

pull=never
if ! podman image exists "$base"; then
  if [ "$make_base" = yes ]; then
    make_base_image "$base" "$scratch"
  else
    echo "check-image: podman has no $base; pulling it (no registry? use --make-base)"
    pull=missing
  fi
fi

step "building $tag on $base (podman build --pull=$pull; vfs storage: a few minutes)"
started=$(date +%s)
podman build --pull="$pull" --network host --build-arg BASE_IMAGE="$base" \
  --tag "$tag" --file "$ROOT/Dockerfile" "$ROOT"
build_s=$(seconds_since "$started")
echo "image $tag built in $build_s s"
podman image prune --force >/dev/null 2>&1 || true

failed=0
check() {  # check NAME CONDITION-DESCRIPTION: report a result line
  if [ "$2" = ok ]; then echo "  ok    $1"; else echo "  FAIL  $1: $2"; failed=1; fi
}

step "docmill demo (no network)"
started=$(date +%s)
if podman run --rm --network none "$tag" demo >"$scratch/demo.out" 2>&1; then demo_rc=0; else demo_rc=$?; fi
cat "$scratch/demo.out"
demo_s=$(seconds_since "$started")
check "demo exited 0 ($demo_s s)" "$([ "$demo_rc" = 0 ] && echo ok || echo "exit $demo_rc")"
check "demo completed 5 of 6 documents" \
  "$(grep -q '5 of 6 documents completed' "$scratch/demo.out" && echo ok || echo 'no "5 of 6 documents completed" in its output')"

step "docmill serve with API tokens, on the host's loopback"
BEARER=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
api=$(podman run -d --network host -e DOCMILL_API_TOKENS="$BEARER" "$tag" serve --host 127.0.0.1 --port "$port") \
  || die "podman could not start the API's container"
containers+=("$api")
health=000
for _ in $(seq 1 90); do
  health=$(curl -s -o "$scratch/health.json" -w '%{http_code}' "http://127.0.0.1:$port/api/health" || true)
  [ "$health" = 200 ] && break
  [ "$(podman inspect -f '{{.State.Running}}' "$api")" = true ] || break
  sleep 1
done
echo "GET /api/health -> $health $(cat "$scratch/health.json" 2>/dev/null || true)"
check "GET /api/health answers 200" "$([ "$health" = 200 ] && echo ok || echo "got $health")"
anonymous=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/api/documents" || true)
check "GET /api/documents without the token answers 401" "$([ "$anonymous" = 401 ] && echo ok || echo "got $anonymous")"
authorized=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $BEARER" \
  "http://127.0.0.1:$port/api/documents" || true)
check "GET /api/documents with the token answers 200" "$([ "$authorized" = 200 ] && echo ok || echo "got $authorized")"
[ "$health" = 200 ] || podman logs "$api" 2>&1 | tail -n 30
podman stop -t 30 "$api" >/dev/null || true

step "docmill supervise as host docmill-check (no network)"
master=$(podman run -d --network none --hostname docmill-check \
  -e DOCMILL_APP=docmill.documents.jobs:registry "$tag" supervise) \
  || die "podman could not start the master's container"
containers+=("$master")
status_rc=1
for _ in $(seq 1 90); do
  if podman exec "$master" docmill queue status --local >"$scratch/status.out" 2>&1; then status_rc=0; break; fi
  [ "$(podman inspect -f '{{.State.Running}}' "$master")" = true ] || break
  sleep 1
done
cat "$scratch/status.out"
check "docmill queue status --local exits 0 with the master running" \
  "$([ "$status_rc" = 0 ] && echo ok || echo "exit status not 0")"
podman exec "$master" docmill queue status --local --json >"$scratch/status.json" 2>&1 || true
check "queue status names the host docmill-check" \
  "$(grep -q '"host": *"docmill-check"' "$scratch/status.json" && echo ok || echo 'host name not in its --json output')"
podman stop -t 60 "$master" >/dev/null || true
stop_rc=$(podman inspect -f '{{.State.ExitCode}}' "$master")
check "the stop signal stops the master gracefully (exit 0)" "$([ "$stop_rc" = 0 ] && echo ok || echo "exit $stop_rc")"
[ "$status_rc" = 0 ] && [ "$stop_rc" = 0 ] || podman logs "$master" 2>&1 | tail -n 30

echo
if [ "$failed" = 0 ]; then
  echo "check-image: $tag (on $base) built in $build_s s; demo, API health and supervise passed"
else
  die "$tag (on $base): some checks failed (above)"
fi
