#!/bin/sh
# Starts supervisord for docmill, but only when its web UI's credentials are set.
#
#     start-supervisord.sh -n -c /etc/docmill/supervisor/supervisord.conf
#     start-supervisord.sh --check        # only the check (systemd's ExecStartPre)
#
# supervisord.conf takes the UI's user and password from SUPERVISOR_USER and
# SUPERVISOR_PASSWORD. supervisord itself refuses to start when either is unset, but when they
# are set and empty (as `SUPERVISOR_USER=` in an env file sets them), it serves the UI, which
# can stop and start the workers, WITHOUT authentication. This script refuses both cases, then
# replaces itself with supervisord (the same process: systemd and signals see supervisord).
#
# Arguments go to supervisord as they are. SUPERVISORD names the program to run (default:
# supervisord on PATH). Exit status 78 (EX_CONFIG) when a credential is missing.
set -eu

missing=""
[ -n "${SUPERVISOR_USER:-}" ] || missing="SUPERVISOR_USER"
[ -n "${SUPERVISOR_PASSWORD:-}" ] || missing="${missing:+$missing and }SUPERVISOR_PASSWORD"
if [ -n "$missing" ]; then
  echo "start-supervisord: not starting supervisord, empty or not set: $missing." \
    "Without both, supervisord serves its web UI (inet_http_server, 127.0.0.1:9001) without" \
    "authentication. Set SUPERVISOR_USER and SUPERVISOR_PASSWORD in supervisord's environment" \
    "(/etc/docmill/docmill.env under systemd); see docs/operations.md, \"Under Supervisor\"." >&2
  exit 78
fi

if [ "${1:-}" = "--check" ]; then
  exit 0
fi
exec "${SUPERVISORD:-supervisord}" "$@"
