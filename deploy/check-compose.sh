#!/usr/bin/env bash
# Follows the Docker Compose deploy of docs/operations.md ("With Docker Compose") on this host,
# with podman-compose in place of `docker compose`, and checks that the stack works:
#
#   1. on a checkout without .env: `cp .env.example .env`, then REDIS_PASSWORD, POSTGRES_PASSWORD
#      and DOCMILL_API_TOKENS filled in with `openssl rand -hex 24`, as the docs say;
#   2. `up -d --build`, `ps`, `exec supervisor docmill queue status` (must exit 0);
#   3. GET /api/health on 127.0.0.1:8000 answers 200; the documents API answers 401 without the
#      token; a document uploaded with it completes (no LLM key in .env: the offline processor);
#   4. every service's health check passes; redis-server and postgres run as their own users;
#   5. `logs supervisor`; `stop supervisor` stops the master gracefully (exit 0); `down
#      --volumes` removes the containers, the network and the volumes.
#
# Usage:
#
#     deploy/check-compose.sh [--no-registry] [--base IMAGE] [--keep] [CHECKOUT]
#
#   CHECKOUT       the docmill checkout to deploy, e.g. a fresh `git clone`; it must have no .env
#                  (the script writes one, and removes it at the end). Default: a temporary copy
#                  of the files git knows in this checkout (tracked, or untracked and not
#                  ignored) as they are in the working tree: a fresh clone with its changes.
#   --no-registry  where no image registry answers: build locally what `up` would pull. That is
#                  the base image (as check-image.sh --make-base: debootstrap, as root) unless
#                  podman has it, and STAND-INS for the images docker-compose.yml names for its
#                  redis and postgres services (redis:7.4, postgres:16), built from
#                  deploy/compose-standins/ on that base and tagged under those names in this
#                  script's own podman storage: Debian bookworm's Redis 7.0 and PostgreSQL 15
#                  behind entry points that do what the official images do for this compose
#                  file. They exist only to check the compose file on a machine without a
#                  registry; production pulls the official images.
#   --base IMAGE   the image the docmill image is built on (the Dockerfile's BASE_IMAGE); default
#                  $DOCMILL_BASE_IMAGE, else docker.io/library/python:3.11-slim, or
#                  local/python:3.11-slim with --no-registry.
#   --keep         leave the stack running at the end (the supervisor started again after its
#                  stop check), also after a failure, with the checkout, its .env and podman's
#                  configuration, instead of `down --volumes`; the script prints how to take it
#                  down. The next run removes what is left.
#
# podman-compose $PODMAN_COMPOSE_VERSION (default 1.6.0) comes from PyPI into a virtualenv under
# the checks' state directory; podman runs with deploy/check-image.sh's configuration and
# storage (deploy/check-common.sh, ~/.cache/docmill-check-image), so images either script built
# are reused. The compose project, network and volumes are docmill's (`name: docmill`), in that
# storage only; what an interrupted run left there is removed first. Where this differs from
# typing the documented commands, the difference is the runner's, not the deploy's:
#   - the build: `up --build --pull never|missing --build-arg BASE_IMAGE=...`, with podman
#     build's `--network host` (so that uv reaches the package index) and one build at a time
#     (both docmill services build the same image);
#   - `exec -T` (no terminal here; COLUMNS=160 so that the status tables are not cut to 80
#     columns) and `logs` without -f;
#   - health: podman runs health checks on a schedule only through systemd timers, which a host
#     without systemd as PID 1 has not, and podman-compose enforces `depends_on: condition:
#     service_healthy` only on podman 4.6 and later (an older one prints "Ignored ... condition
#     check" and starts every service at once). So the script does what `docker compose up`
#     does there: `up -d redis postgres`, their health checks (`podman healthcheck run`) until
#     both pass, then the documented `up -d --build`, which leaves those two running and starts
#     api and supervisor; it runs their health checks itself too. docker-compose.yml is used as
#     it is.
#
# Exit status: 0 when every check passed, 1 when one failed, 2 on a usage error, 3 when a tool
# is missing (podman, curl, openssl, git, python3 with venv; debootstrap for --no-registry).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CHECK_NAME=check-compose
# shellcheck source=deploy/check-common.sh
. "$ROOT/deploy/check-common.sh"
PODMAN_COMPOSE_VERSION=${PODMAN_COMPOSE_VERSION:-1.6.0}
API=http://127.0.0.1:8000
base=${DOCMILL_BASE_IMAGE:-}
no_registry=no
keep=no
checkout=

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }
bad_usage() { echo "check-compose: $*" >&2; usage >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --no-registry) no_registry=yes; shift ;;
    --base) [ $# -ge 2 ] || bad_usage "--base needs an image"; base=$2; shift 2 ;;
    --base=*) base=${1#--base=}; shift ;;
    --keep) keep=yes; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) bad_usage "unknown argument: $1" ;;
    *) [ -z "$checkout" ] || bad_usage "one checkout only (got $checkout and $1)"; checkout=$1; shift ;;
  esac
done
refuse() { echo "check-compose: $*" >&2; exit 2; }
if [ -n "$checkout" ]; then
  [ -d "$checkout" ] || refuse "no such directory: $checkout"
  checkout=$(cd "$checkout" && pwd)
  for need in docker-compose.yml .env.example Dockerfile; do
    [ -f "$checkout/$need" ] || refuse "$checkout has no $need: not a docmill checkout"
  done
  [ ! -e "$checkout/.env" ] || refuse "$checkout/.env exists; this check writes its own .env (use a fresh clone, or move it away)"
fi
if [ -z "$base" ]; then
  if [ "$no_registry" = yes ]; then base=$LOCAL_BASE; else base=$DEFAULT_BASE; fi
fi

missing() { echo "check-compose: $1 is not installed${2:+ ($2)}" >&2; exit 3; }
command -v podman >/dev/null || missing podman "apt-get install -y podman runc"
command -v curl >/dev/null || missing curl
command -v openssl >/dev/null || missing openssl
command -v python3 >/dev/null || missing python3 "and python3-venv, for podman-compose's virtualenv"
[ -n "$checkout" ] || command -v git >/dev/null || missing git "to copy this checkout; or pass a checkout"

started_all=$(date +%s)
scratch=$(mktemp -d)
wrote_env=no
stack=no
project=
venv=
cleanup() {
  if [ "$stack" = yes ] && [ "$keep" = no ]; then
    echo "check-compose: taking the stack down (down --volumes)" >&2
    (cd "$checkout" && "$venv/bin/podman-compose" down --volumes) >/dev/null 2>&1 || true
    remove_project_leftovers >/dev/null 2>&1 || true
  fi
  if [ "$stack" = yes ] && [ "$keep" = yes ]; then
    # The stack stays, and with it what reaches it: the checkout, its .env, podman's configuration.
    echo "check-compose: --keep: the stack runs on; take it down with" >&2
    echo "  cd $checkout && CONTAINERS_CONF=$CONTAINERS_CONF CONTAINERS_STORAGE_CONF=$CONTAINERS_STORAGE_CONF \\" >&2
    local env_file=
    case "$checkout" in "$scratch"/*) ;; *) env_file=" $checkout/.env" ;; esac
    echo "    $venv/bin/podman-compose down --volumes; rm -rf $scratch$env_file" >&2
    return
  fi
  if [ "$wrote_env" = yes ]; then rm -f "$checkout/.env"; fi
  rm -rf "$scratch"
}
trap cleanup EXIT
use_check_podman "$scratch"
state=$(check_state_dir)

# ----------------------------------------------------------------------------- the checkout

if [ -z "$checkout" ]; then
  checkout=$scratch/docmill
  mkdir "$checkout"
  step "copying this checkout's files (as git lists them, from the working tree) to $checkout"
  (
    cd "$ROOT"
    git ls-files -z --cached --others --exclude-standard \
      | while IFS= read -r -d '' file; do
          if [ -e "$file" ] || [ -L "$file" ]; then printf '%s\0' "$file"; fi
        done \
      | tar --null -T - -cf -
  ) | tar -C "$checkout" -xf -
  [ ! -e "$checkout/.env" ] || die "the copy has a .env: git does not ignore it in $ROOT"
fi

# ----------------------------------------------------------------------------- podman-compose

venv=$state/podman-compose-$PODMAN_COMPOSE_VERSION
if [ ! -x "$venv/bin/podman-compose" ]; then
  step "installing podman-compose $PODMAN_COMPOSE_VERSION from PyPI into $venv"
  { python3 -m venv "$venv" && "$venv/bin/python" -m pip install --quiet "podman-compose==$PODMAN_COMPOSE_VERSION"; } \
    || { rm -rf "$venv"; die "could not install podman-compose $PODMAN_COMPOSE_VERSION"; }
fi
# Both docmill services build the same image: one podman command at a time, so the second build
# finds the first one's layers.
pc() { (cd "$checkout" && "$venv/bin/podman-compose" --parallel 1 --podman-build-args "--network host" "$@"); }
compose() { echo "+ podman-compose $*"; pc "$@"; }

# What docker-compose.yml names: the project, and the images of its services that are pulled.
"$venv/bin/python" - "$checkout/docker-compose.yml" >"$scratch/compose.txt" <<'EOF'
import os, sys, yaml
with open(sys.argv[1]) as f:
    compose = yaml.safe_load(f)
print("project", compose.get("name") or os.path.basename(os.path.dirname(os.path.abspath(sys.argv[1]))))
for name, service in compose["services"].items():
    if "image" in service and "build" not in service:
        print("image", name, service["image"])
EOF
project=$(awk '$1 == "project" { print $2 }' "$scratch/compose.txt")

# The name podman stores an image under: Docker Hub's for a short name, as docker resolves it.
qualified() {
  case "$1" in
    */*) case "${1%%/*}" in *.*|*:*|localhost) echo "$1" ;; *) echo "docker.io/$1" ;; esac ;;
    *) echo "docker.io/library/$1" ;;
  esac
}

# ----------------------------------------------------------------------------- images

build_s=
if [ "$no_registry" = yes ]; then
  pull=never
  if ! podman image exists "$base"; then
    make_base_image "$base" "$scratch"
  fi
  started=$(date +%s)
  while read -r kind service image; do
    [ "$kind" = image ] || continue
    context=$ROOT/deploy/compose-standins/$service
    [ -f "$context/Containerfile" ] || die "no registry, and no stand-in for $service ($image) in deploy/compose-standins/"
    # Built again only when its files or the base image changed (a cached build still takes a
    # while with vfs): the image carries a digest of both.
    source=$( { podman image inspect -f '{{.Id}}' "$base"; cd "$context" && find . -type f -print0 | sort -z | xargs -0 sha256sum; } | sha256sum | cut -c1-16)
    name=$(qualified "$image")
    if [ "$(podman image inspect -f '{{index .Labels "docmill.stand-in.source"}}' "$name" 2>/dev/null)" = "$source" ]; then
      echo "the STAND-IN $name for $image ($service) is up to date (production pulls the official image)"
      continue
    fi
    step "building a STAND-IN for $image ($service) on $base: deploy/compose-standins/$service (production pulls the official image)"
    podman build --pull=never --network host --build-arg BASE_IMAGE="$base" --label "docmill.stand-in.source=$source" \
      --tag "$name" --file "$context/Containerfile" "$context" >"$scratch/standin.log" 2>&1 \
      || { tail -n 40 "$scratch/standin.log" >&2; die "the stand-in for $image did not build"; }
    echo "stand-in $name ready"
  done <"$scratch/compose.txt"
  build_s=$(seconds_since "$started")
  podman image prune --force >/dev/null 2>&1 || true  # the stand-ins' earlier builds
else
  # Pulled by their full names: podman may have no unqualified-search registries for short ones.
  pull=missing
  while read -r kind service image; do
    [ "$kind" = image ] || continue
    name=$(qualified "$image")
    if [ "$(podman image inspect -f '{{index .Labels "docmill.stand-in"}}' "$name" 2>/dev/null)" = yes ]; then
      step "pulling $name over the stand-in a --no-registry run left under its name"
    elif podman image exists "$name"; then
      continue
    else
      step "pulling $name ($service)"
    fi
    podman pull "$name" || die "could not pull $name (no registry here? use --no-registry)"
  done <"$scratch/compose.txt"
fi

# ----------------------------------------------------------------------------- the stack

project_containers() { podman ps -a -q --filter "label=io.podman.compose.project=$project"; }
container_of() {
  podman ps -a -q --filter "label=io.podman.compose.project=$project" \
    --filter "label=com.docker.compose.service=$1" | head -n 1
}
remove_project_leftovers() {
  local id volume
  # --depend: podman-compose makes each container require the ones it depends on.
  for id in $(project_containers); do podman rm -f -t 0 --depend "$id" >/dev/null 2>&1 || true; done
  [ -z "$(project_containers)" ] || die "could not remove the containers of project $project"
  for volume in $(podman volume ls -q --filter "label=io.podman.compose.project=$project"); do
    podman volume rm -f "$volume" >/dev/null
  done
  if podman network exists "${project}_default"; then podman network rm -f "${project}_default" >/dev/null; fi
}
if [ -n "$(project_containers)" ] || [ -n "$(podman volume ls -q --filter "label=io.podman.compose.project=$project")" ]; then
  step "removing the containers and volumes an interrupted check left in its podman storage"
  remove_project_leftovers
fi
if (exec 3<>/dev/tcp/127.0.0.1/8000) 2>/dev/null; then
  die "something listens on 127.0.0.1:8000 already, where docker-compose.yml publishes the API"
fi

failed=0
check() {  # check NAME RESULT: "ok", or why not
  if [ "$2" = ok ]; then echo "  ok    $1"; else echo "  FAIL  $1: $2"; failed=1; fi
}
# health_check SERVICE SECONDS: run the service's health check until it passes (0) or time is up.
health_check() {
  local id deadline
  id=$(container_of "$1")
  [ -n "$id" ] || return 1
  deadline=$(( $(date +%s) + $2 ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    if podman healthcheck run "$id" >/dev/null 2>&1; then return 0; fi
    [ "$(podman inspect -f '{{.State.Running}}' "$id")" = true ] || return 1
    sleep 2
  done
  return 1
}
# runs_as SERVICE: the user of the container's first process.
runs_as() { podman top "$(container_of "$1")" user 2>/dev/null | awk 'NR == 2 { print $1 }'; }

step "cp .env.example .env; REDIS_PASSWORD, POSTGRES_PASSWORD and DOCMILL_API_TOKENS from openssl rand -hex 24"
cp "$checkout/.env.example" "$checkout/.env"
wrote_env=yes
chmod 0600 "$checkout/.env"
fill_env() {  # fill_env NAME: the empty "NAME=" line of .env gets a fresh value, kept in $filled
  grep -qx "$1=" "$checkout/.env" || die ".env.example has no empty $1= line to fill in"
  filled=$(openssl rand -hex 24)
  sed -i "s/^$1=\$/$1=$filled/" "$checkout/.env"
}
fill_env REDIS_PASSWORD
fill_env POSTGRES_PASSWORD
fill_env DOCMILL_API_TOKENS
BEARER=$filled

stack=yes
step "the services docmill's depend on (condition: service_healthy), and their health checks"
echo "(without systemd, podman reports \"unable to get systemd connection to add healthchecks\": expected here)"
started=$(date +%s)
compose up -d redis postgres
for service in redis postgres; do
  if health_check "$service" 120; then result=ok; else result="not healthy after 120 s"; fi
  check "$service is healthy ($(seconds_since "$started") s after up)" "$result"
  [ "$result" = ok ] || { podman logs "$(container_of "$service")" 2>&1 | tail -n 30; die "$service did not become healthy"; }
done

step "docker compose up -d --build (the image: podman build, vfs storage; a few minutes)"
started=$(date +%s)
compose up -d --build --pull "$pull" --build-arg "BASE_IMAGE=$base" || die "up -d --build failed"
up_s=$(seconds_since "$started")
echo "up -d --build took $up_s s"
podman image prune --force >/dev/null 2>&1 || true  # the image's earlier builds

step "docker compose ps"
compose ps
running=$(podman ps -q --filter "label=io.podman.compose.project=$project" --filter status=running | wc -l)
check "4 services are running" "$([ "$running" = 4 ] && echo ok || echo "$running are")"

step "docker compose exec supervisor docmill queue status"
status_rc=1
for _ in $(seq 1 60); do
  if pc exec -T -e COLUMNS=160 supervisor docmill queue status >"$scratch/status.out" 2>&1; then status_rc=0; break; fi
  sleep 2
done
echo "+ podman-compose exec -T -e COLUMNS=160 supervisor docmill queue status"
cat "$scratch/status.out"
check "docmill queue status exits 0" "$([ "$status_rc" = 0 ] && echo ok || echo "it did not within 120 s")"
pc exec -T supervisor docmill queue status --json >"$scratch/status.json" 2>&1 || true
check "queue status --json names the master's host docmill-supervisor" \
  "$(grep -q '"host": *"docmill-supervisor"' "$scratch/status.json" && echo ok || echo 'not in its output')"

step "the API on $API"
health=000
for _ in $(seq 1 60); do
  health=$(curl -s -o "$scratch/health.json" -w '%{http_code}' "$API/api/health" || true)
  [ "$health" = 200 ] && break
  sleep 2
done
echo "GET /api/health -> $health $(cat "$scratch/health.json" 2>/dev/null || true)"
check "GET /api/health answers 200" "$([ "$health" = 200 ] && echo ok || echo "got $health")"
anonymous=$(curl -s -o /dev/null -w '%{http_code}' "$API/api/documents" || true)
check "GET /api/documents without the token answers 401" "$([ "$anonymous" = 401 ] && echo ok || echo "got $anonymous")"

json() {  # json FIELD <DOCUMENT: one field of a JSON object, empty when absent
  python3 -c 'import json, sys; v = json.load(sys.stdin).get(sys.argv[1]); print("" if v is None else v)' "$1"
}
document=$checkout/examples/documents/quarterly-report.pdf
step "uploading $(basename "$document") with the token, and waiting for it"
started=$(date +%s)
uploaded=$(curl -s -o "$scratch/upload.json" -w '%{http_code}' -H "Authorization: Bearer $BEARER" \
  -F "file=@$document" "$API/api/documents" || true)
echo "POST /api/documents -> $uploaded $(head -c 300 "$scratch/upload.json" 2>/dev/null || true)"
check "the upload answers 201" "$([ "$uploaded" = 201 ] && echo ok || echo "got $uploaded")"
id=$(json id <"$scratch/upload.json" 2>/dev/null || true)
status=none
if [ -n "$id" ]; then
  last=
  for _ in $(seq 1 150); do
    curl -s -H "Authorization: Bearer $BEARER" "$API/api/documents/$id" >"$scratch/document.json" || true
    status=$(json status <"$scratch/document.json" 2>/dev/null || echo unreadable)
    if [ "$status" != "$last" ]; then echo "  $(seconds_since "$started") s: $status"; last=$status; fi
    case "$status" in completed|failed|cancelled|awaiting_approval) break ;; esac
    sleep 2
  done
fi
document_s=$(seconds_since "$started")
check "document $id completed ($document_s s after its upload)" \
  "$([ "$status" = completed ] && echo ok || echo "status $status, error: $(json error <"$scratch/document.json" 2>/dev/null || true)")"
if [ "$status" = completed ]; then
  curl -s -H "Authorization: Bearer $BEARER" "$API/api/documents/$id/result?format=markdown" | head -n 12
fi

step "the services' health checks, and who runs the servers"
for service in redis postgres api supervisor; do
  if health_check "$service" 60; then result=ok; else result="it fails"; fi
  check "$service: health check passes ($(podman inspect -f '{{.State.Health.Status}}' "$(container_of "$service")"))" "$result"
done
user=$(runs_as redis)
check "redis-server runs as the user redis" "$([ "$user" = redis ] && echo ok || echo "it runs as $user")"
user=$(runs_as postgres)
check "postgres runs as the user postgres" "$([ "$user" = postgres ] && echo ok || echo "it runs as $user")"

step "docker compose logs supervisor (its last 25 lines)"
echo "+ podman-compose logs supervisor"
pc logs supervisor >"$scratch/supervisor.log" 2>&1 || true
tail -n 25 "$scratch/supervisor.log"

step "docker compose stop supervisor (SIGTERM; stop_grace_period)"
started=$(date +%s)
supervisor=$(container_of supervisor)
compose stop supervisor >/dev/null
stop_rc=$(podman inspect -f '{{.State.ExitCode}}' "$supervisor")
check "the master stopped gracefully, exit 0 ($(seconds_since "$started") s)" \
  "$([ "$stop_rc" = 0 ] && echo ok || echo "exit $stop_rc")"

if [ "$keep" = yes ]; then
  pc start supervisor >/dev/null
else
  step "docker compose down --volumes"
  started=$(date +%s)
  compose down --volumes >/dev/null
  left=$(project_containers | wc -l)
  volumes=$(podman volume ls -q --filter "label=io.podman.compose.project=$project" | wc -l)
  check "down --volumes left no container and no volume ($(seconds_since "$started") s)" \
    "$([ "$left$volumes" = 00 ] && echo ok || echo "$left containers, $volumes volumes left")"
  if podman network exists "${project}_default"; then
    echo "  note  podman-compose left the network ${project}_default; removing it"
    podman network rm -f "${project}_default" >/dev/null
  fi
  stack=no
fi

echo
if [ "$failed" = 0 ]; then
  echo "check-compose: the compose deploy works${build_s:+ (stand-ins ready in ${build_s} s)}: up --build" \
    "${up_s} s, the document completed ${document_s} s after its upload; $(seconds_since "$started_all") s in all"
else
  die "some checks failed (above)"
fi
