#!/usr/bin/env bash
# The seed's queue-status.sh, mapped onto the docmill CLI for those who know it.
# Every command runs `docmill queue ...`; the docmill commands say more (--help, --json).
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: bin/queue-status.sh COMMAND [ARGS]

  config              queue configuration and where each value comes from
                      (docmill queue config)
  status              masters, workers and queues on every host (docmill queue status)
  start               start the workers on every host again (docmill queue start)
  stop                stop the workers on every host after their running jobs
                      (docmill queue stop)
  restart             replace every worker after its current jobs (docmill queue restart)
  logs [QUEUE] [-f]   the workers' logs, all or one pool's (docmill queue logs)
  failed              failed jobs (docmill queue failed)
  retry all           retry every failed job (docmill queue retry all)
  retry ID...         retry failed jobs by id (docmill queue retry ID...)

The queue backend comes from the environment: DOCMILL_QUEUE_URL, else
QUEUE_CONNECTION=redis with REDIS_HOST/REDIS_PORT/REDIS_PASSWORD, else
sqlite:///storage/queue.db. Set DOCMILL to the docmill command to use another one.
USAGE
}

# The docmill command: $DOCMILL, else on PATH, else the project's virtualenv, else `uv run`.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -n "${DOCMILL:-}" ]]; then
  read -r -a docmill <<<"$DOCMILL"
elif command -v docmill >/dev/null 2>&1; then
  docmill=(docmill)
elif [[ -x "$root/.venv/bin/docmill" ]]; then
  docmill=("$root/.venv/bin/docmill")
elif command -v uv >/dev/null 2>&1; then
  docmill=(uv run --project "$root" docmill)
else
  echo "queue-status.sh: docmill is not installed here; install it (uv sync) or set DOCMILL" >&2
  exit 2
fi

command="${1:-}"
[[ $# -gt 0 ]] && shift

case "$command" in
  config | status | start | stop | restart | failed)
    exec "${docmill[@]}" queue "$command" "$@"
    ;;
  logs)
    exec "${docmill[@]}" queue logs "$@"
    ;;
  retry)
    if [[ $# -eq 0 ]]; then
      echo "queue-status.sh: retry needs 'all' or job ids, e.g.: bin/queue-status.sh retry all" >&2
      exit 2
    fi
    exec "${docmill[@]}" queue retry "$@"
    ;;
  help | -h | --help)
    usage
    ;;
  "")
    usage >&2
    exit 2
    ;;
  *)
    echo "queue-status.sh: unknown command '$command'" >&2
    usage >&2
    exit 2
    ;;
esac
