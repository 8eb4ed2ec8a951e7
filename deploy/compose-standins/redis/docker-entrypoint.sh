#!/bin/sh
# The stand-in redis image's entry point, with the official image's rules: options or a .conf
# file as the first argument mean `redis-server ...`; `redis-server` started as root hands the
# working directory (/data) to the user redis and runs as that user; anything else runs as given.
set -e

if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
  set -- redis-server "$@"
fi

if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
  find . \! -user redis -exec chown redis '{}' +
  exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi

# The official image tightens the default umask for the server's files.
if [ "$(umask)" = 0022 ]; then
  umask 0077
fi

exec "$@"
