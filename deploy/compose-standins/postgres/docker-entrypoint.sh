#!/usr/bin/env bash
# The stand-in postgres image's entry point, with the official image's rules for what
# docker-compose.yml uses: options as the first argument mean `postgres ...`; `postgres` started
# as root prepares PGDATA and the socket directory and runs as the user postgres; on the first
# start (no PGDATA/PG_VERSION) it initialises the cluster from POSTGRES_USER (default postgres),
# POSTGRES_PASSWORD (required) and POSTGRES_DB (default: the user's name); anything else runs as
# given.
set -Eeuo pipefail

if [ "${1:0:1}" = - ]; then
  set -- postgres "$@"
fi

if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  find "$PGDATA" \! -user postgres -exec chown postgres '{}' +
  chmod 00700 "$PGDATA"
  chown postgres:postgres /var/run/postgresql
  chmod 03775 /var/run/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?the database is uninitialised and POSTGRES_PASSWORD is not set}"
  user=${POSTGRES_USER:-postgres}
  db=${POSTGRES_DB:-$user}
  echo "docker-entrypoint: initialising $PGDATA (superuser $user, database $db)"
  initdb --username="$user" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") -D "$PGDATA"
  # Local socket connections are trusted (initdb's default); TCP needs the password.
  printf '\nhost all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
  # A server on the socket only while the database is created, so nobody connects half-way.
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
  if [ "$db" != postgres ]; then
    psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$user" --dbname postgres --set db="$db" \
      <<<'CREATE DATABASE :"db";'
  fi
  pg_ctl -D "$PGDATA" -m fast -w stop
  echo "docker-entrypoint: initialised; starting the server"
fi

exec "$@"
