#!/bin/sh
# Runs once at image build time, as root inside the image: makes a template
# cluster (/usr/share/pglab/template) for pglab's settings, so that a
# sandbox's first start copies 40 MB instead of running initdb (about a
# second of CPU, two under a 0.5 CPU limit). The entrypoint uses it only
# when POSTGRES_USER, POSTGRES_DB and POSTGRES_INITDB_ARGS are exactly these;
# anything else gets a real initdb. The placeholder password is replaced on
# first start.
set -eu
BIN=/usr/lib/postgresql/15/bin
T=/usr/share/pglab/template
USER_NAME=labuser
DB=labdb
# Exactly what pglab passes in POSTGRES_INITDB_ARGS (src/sandbox/docker/spec.rs).
ARGS="--auth-local=scram-sha-256 --no-sync -E UTF8 --locale=C.UTF-8"

as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

rm -rf "$T"
mkdir -p /usr/share/pglab
chown postgres:postgres /usr/share/pglab
pw="$(mktemp)"
od -An -tx1 -N24 /dev/urandom | tr -d ' \n' >"$pw"
chown postgres "$pw"
# shellcheck disable=SC2086 # ARGS is a list of flags.
as_pg "$BIN/initdb" -D "$T" -U "$USER_NAME" --pwfile="$pw" --auth-host=scram-sha-256 $ARGS >/dev/null
rm -f "$pw"
printf '\nhost all all all scram-sha-256\n' >>"$T/pg_hba.conf"
# In the config file rather than on pglab's command line, so that the
# connections lab can lower it with ALTER SYSTEM and a restart.
printf '\n# pglab sandbox\nmax_connections = 20\n' >>"$T/postgresql.conf"
echo "CREATE DATABASE $DB STRATEGY FILE_COPY;" |
  as_pg "$BIN/postgres" --single -D "$T" -c fsync=off -c jit=off postgres >/dev/null
echo "$USER_NAME|$DB|$ARGS" >/usr/share/pglab/template.key
