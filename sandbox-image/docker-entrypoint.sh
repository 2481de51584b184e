#!/bin/sh
# Entrypoint of the pglab course sandbox image (pglab/sandbox:15).
#
# Does what the official `postgres` image's entrypoint does, so that pglab
# drives both the same way: reads POSTGRES_USER / POSTGRES_PASSWORD /
# POSTGRES_DB / POSTGRES_INITDB_ARGS, runs initdb into PGDATA on first start
# (or copies the image's template cluster made for exactly these settings),
# creates the database, runs /docker-entrypoint-initdb.d/*.sql and *.sh, drops
# to the postgres user and execs postgres (which becomes PID 1).
#
# Nothing listens on the real socket dir (/var/run/postgresql) until the
# final server runs: the first-start work uses single-user mode, or a
# temporary server on a private socket dir, so a client polling the socket
# never reaches a half-initialised cluster.
set -eu

: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
export PGDATA

# `docker run IMAGE -c x=y` means `postgres -c x=y`, as in the official image.
case "${1:-postgres}" in
  -*) set -- postgres "$@" ;;
esac
[ $# -gt 0 ] || set -- postgres

if [ "$1" != postgres ]; then
  exec "$@"
fi

if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  # Clients outside the container (pglab) reach the socket through a bind
  # mount of this folder.
  chmod 3777 /var/run/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

# First start, made restartable: a marker goes into PGDATA before anything
# else and leaves it last, and the cluster is built in a staging folder and
# moved into place. A first start cut short (the container killed, the engine
# stopped mid-copy) leaves the marker behind; the next start finds it, clears
# the half-made cluster (no learner has used it yet) and begins again. Without
# it, a half-copied cluster with PG_VERSION in it looked initialised and
# never started again (seen under the classroom load test).
marker="$PGDATA/.pglab-init-incomplete"
if [ -e "$marker" ]; then
  echo "docker-entrypoint: an earlier first start was cut short: initialising again" >&2
  find "$PGDATA" -mindepth 1 -maxdepth 1 ! -name lost+found -exec rm -rf {} +
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "docker-entrypoint: POSTGRES_PASSWORD must be set on first start" >&2
    exit 1
  fi
  : >"$marker"
  staging="$PGDATA/.pglab-staging"
  rm -rf "$staging"
  mkdir -m 700 "$staging"
  template=/usr/share/pglab/template
  if [ -d "$template" ] &&
    [ "$(cat "$template.key" 2>/dev/null)" = "$POSTGRES_USER|$POSTGRES_DB|${POSTGRES_INITDB_ARGS:-}" ]; then
    # The image's ready-made cluster for exactly these settings (see
    # make-template.sh): copy it and set this sandbox's password.
    cp -a "$template/." "$staging/"
    password_sql="$(printf '%s' "$POSTGRES_PASSWORD" | sed "s/'/''/g")"
    echo "ALTER ROLE \"$POSTGRES_USER\" PASSWORD '$password_sql';" |
      postgres --single -D "$staging" -c fsync=off -c jit=off postgres >/dev/null
  else
    pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of flags.
    initdb -D "$staging" -U "$POSTGRES_USER" --pwfile="$pwfile" \
      --auth-host=scram-sha-256 ${POSTGRES_INITDB_ARGS:-} >/dev/null
    rm -f "$pwfile"
    printf '\nhost all all all scram-sha-256\n' >>"$staging/pg_hba.conf"

    if [ "$POSTGRES_DB" != postgres ]; then
      # Single-user mode: no socket, no password, no temporary server to
      # stop. fsync=off for this one command only (like initdb --no-sync,
      # it only guards against an OS crash during the first start).
      echo "CREATE DATABASE \"$POSTGRES_DB\" STRATEGY FILE_COPY;" |
        postgres --single -D "$staging" -c fsync=off -c jit=off postgres >/dev/null
    fi
  fi
  # Into place: renames within the volume, PG_VERSION last of all.
  find "$staging" -mindepth 1 -maxdepth 1 ! -name PG_VERSION -exec mv -t "$PGDATA" {} +
  mv "$staging/PG_VERSION" "$PGDATA/"
  rmdir "$staging"

  if [ -n "$(ls -A /docker-entrypoint-initdb.d 2>/dev/null || true)" ]; then
    tmpsock="$(mktemp -d)"
    pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -c unix_socket_directories=$tmpsock" start >/dev/null
    export PGHOST="$tmpsock" PGUSER="$POSTGRES_USER" PGDATABASE="$POSTGRES_DB" PGPASSWORD="$POSTGRES_PASSWORD"
    for f in /docker-entrypoint-initdb.d/*; do
      case "$f" in
        *.sql) echo "docker-entrypoint: running $f"; psql -v ON_ERROR_STOP=1 -q -f "$f" ;;
        *.sh) echo "docker-entrypoint: running $f"; . "$f" ;;
        *) echo "docker-entrypoint: ignoring $f" ;;
      esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    rmdir "$tmpsock"
  fi
  rm -f "$marker"
  echo "docker-entrypoint: cluster initialised"
fi

# A learner may lower max_connections with ALTER SYSTEM (the connections
# lab). Below 10 nothing is left for pglab's own sessions beside the 3 slots
# reserved for superusers (below 4 the server would not start at all), so
# such a value is overridden here, and the log says so.
auto="$PGDATA/postgresql.auto.conf"
if [ -f "$auto" ]; then
  mc="$(sed -n "s/^[[:space:]]*max_connections[[:space:]]*=[[:space:]]*'*\([0-9][0-9]*\).*/\1/p" "$auto" | tail -n 1)"
  if [ -n "$mc" ] && [ "$mc" -lt 10 ]; then
    echo "docker-entrypoint: max_connections = $mc (from ALTER SYSTEM) is below pglab's minimum of 10; starting with 10" >&2
    set -- "$@" -c max_connections=10
  fi
fi

exec "$@"
