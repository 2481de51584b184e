#!/bin/sh
# pglab's `docker` command for the sandbox terminal (installed as
# /usr/local/bin/docker by scripts/build-sandbox-image.sh; pglab's local
# backend puts the same file on its terminal's PATH).
#
# The terminal already runs inside the learner's own PostgreSQL sandbox, the
# one service `postgres` of their compose file: there is no Docker engine
# here, and none is needed for the commands the course prints. They work as
# written, on this sandbox only:
#
#   docker compose exec [-T] postgres COMMAND [ARG...]
#   docker exec [-i] [-t] CONTAINER COMMAND [ARG...]   (CONTAINER: this sandbox's)
#   docker compose ps [postgres] / docker ps
#   docker compose logs [-f] [--tail N] [postgres]     (where the log is readable)
#
# COMMAND runs right here, in the current folder, so that `< scripts/x.sql`
# and `> backup.sql` mean the files beside you. Anything else is outside the
# sandbox: said as such on stderr, exit status 1.
#
# Environment (set by pglab's terminal): PGLAB_BACKEND (docker|local),
# PGLAB_CONTAINER (this sandbox's name), PGLAB_IMAGE, PGLAB_SERVICE
# (postgres), PGLAB_SERVER_LOG (the server log file, when one is readable).

service=${PGLAB_SERVICE:-postgres}
container=${PGLAB_CONTAINER:-}
image=${PGLAB_IMAGE:-postgres}
backend=${PGLAB_BACKEND:-docker}

usage() {
  cat <<EOF
This is pglab's docker for your sandbox terminal: you are inside your own
PostgreSQL sandbox (service "$service"${container:+, container $container}), and
only these forms work, on it alone:

  docker compose exec [-T] $service COMMAND [ARG...]
  docker exec [-i] [-t] ${container:-CONTAINER} COMMAND [ARG...]
  docker compose ps            docker ps
  docker compose logs [-f] [--tail N]

e.g.  docker compose exec postgres psql -U labuser -d labdb
      docker compose exec -T postgres psql -U labuser -d labdb < scripts/schema.sql
      docker compose exec postgres pg_dump -U labuser labdb > backup.sql
EOF
}

# Where the things a real Docker host does live in pglab.
hints() {
  cat >&2 <<EOF
  Bring your PostgreSQL up or down with your compose file: the sandbox panel's
  "Compose file..." page (Save and up; Down, with volumes or not).
  docker inspect: the panel's "Inspect (docker inspect)" fold, with a jq box
  (.[0].Mounts, .[0].State.Health.Status).
  docker logs: the panel's "Server log" fold (live, level filter, search).
EOF
}

outside() {
  echo "docker: \`$1\` is outside your sandbox: this terminal runs inside your own" >&2
  echo "PostgreSQL sandbox, not on a Docker host, so it reaches no engine and no other" >&2
  echo "container. Run \`docker help\` for the forms that work here." >&2
  hints
  exit 1
}

refuse() {
  echo "docker: $1" >&2
  exit 1
}

# Runs the command here, as the sandbox's own service would.
run() {
  [ $# -gt 0 ] || refuse "a command is needed, e.g. docker compose exec $service psql -U labuser -d labdb"
  exec "$@"
}

status() {
  if pg_isready -q >/dev/null 2>&1; then
    echo "Up (accepting connections)"
  else
    echo "Up (not accepting connections yet)"
  fi
}

ps_own() {
  printf '%-34s %-22s %-10s %s\n' NAME IMAGE SERVICE STATUS
  printf '%-34s %-22s %-10s %s\n' "${container:-$service}" "$image" "$service" "$(status)"
}

compose_exec() {
  while [ $# -gt 0 ]; do
    case "$1" in
      -T|--no-TTY|--no-tty|-i|--interactive|-t|--tty) shift ;;
      --) shift; break ;;
      -*) refuse "docker compose exec $1: only -T is available in the sandbox" ;;
      *) break ;;
    esac
  done
  [ $# -gt 0 ] || refuse "docker compose exec needs a service and a command, e.g. docker compose exec $service psql -U labuser -d labdb"
  if [ "$1" != "$service" ]; then
    refuse "no such service: $1 (your compose file has one service, $service; any other is outside your sandbox)"
  fi
  shift
  run "$@"
}

docker_exec() {
  while [ $# -gt 0 ]; do
    case "$1" in
      -i|-t|-it|-ti|--interactive|--tty) shift ;;
      -*) refuse "docker exec $1: only -i and -t are available in the sandbox" ;;
      *) break ;;
    esac
  done
  [ $# -gt 0 ] || refuse "docker exec needs a container and a command, e.g. docker exec -it ${container:-CONTAINER} psql"
  target=$1
  shift
  mine=0
  [ -n "$container" ] && [ "$target" = "$container" ] && mine=1
  [ -n "$container" ] && [ "$target" = "/$container" ] && mine=1
  if [ "$backend" = docker ] && [ -r /proc/sys/kernel/hostname ]; then
    # A container's hostname is its id's first 12 characters.
    [ "$target" = "$(cat /proc/sys/kernel/hostname)" ] && mine=1
  fi
  if [ "$mine" != 1 ]; then
    echo "docker: container $target is outside your sandbox: here only your own" >&2
    echo "container, ${container:-this sandbox}, can be reached (docker compose exec $service ... works too)." >&2
    exit 1
  fi
  run "$@"
}

compose_logs() {
  follow=0
  tail=all
  while [ $# -gt 0 ]; do
    case "$1" in
      -f|--follow) follow=1; shift ;;
      --tail|-n) [ $# -ge 2 ] || refuse "docker compose logs $1 needs a number"; tail=$2; shift 2 ;;
      --tail=*) tail=${1#--tail=}; shift ;;
      "$service") shift ;;
      -*) refuse "docker compose logs $1: only -f and --tail N are available in the sandbox" ;;
      *) refuse "no such service: $1 (your compose file has one service, $service)" ;;
    esac
  done
  log=${PGLAB_SERVER_LOG:-}
  if [ -z "$log" ] || [ ! -r "$log" ]; then
    echo "docker: your server's log is not readable from inside the sandbox: it is in the" >&2
    echo "sandbox panel's \"Server log\" fold (live, with a level filter and a search)," >&2
    echo "and at GET /api/sandbox/log." >&2
    exit 1
  fi
  [ "$tail" = all ] && tail=+1
  if [ "$follow" = 1 ]; then
    exec tail -n "$tail" -f "$log"
  fi
  exec tail -n "$tail" "$log"
}

compose() {
  # Global options of `docker compose` that name this project's file.
  while [ $# -gt 0 ]; do
    case "$1" in
      -f|--file|-p|--project-name) [ $# -ge 2 ] || refuse "docker compose $1 needs a value"; shift 2 ;;
      --file=*|--project-name=*) shift ;;
      *) break ;;
    esac
  done
  sub=${1:-}
  [ $# -gt 0 ] && shift
  case "$sub" in
    exec) compose_exec "$@" ;;
    ps)
      for a in "$@"; do
        case "$a" in
          "$service"|-q|--quiet) ;;
          *) outside "docker compose ps $*" ;;
        esac
      done
      case " $* " in
        *" -q "*|*" --quiet "*) echo "${container:-$service}"; exit 0 ;;
      esac
      ps_own
      exit 0
      ;;
    logs) compose_logs "$@" ;;
    version) echo "pglab sandbox docker compose (a stand-in for the course's commands)"; exit 0 ;;
    ""|help|--help|-h) usage; exit 0 ;;
    *) outside "docker compose $sub${*:+ $*}" ;;
  esac
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  compose) compose "$@" ;;
  exec) docker_exec "$@" ;;
  ps)
    [ $# -eq 0 ] || outside "docker ps $*"
    ps_own
    ;;
  version|--version|-v) echo "pglab sandbox docker (a stand-in for the course's commands; no engine here)" ;;
  ""|help|--help|-h) usage ;;
  *) outside "docker $cmd${*:+ $*}" ;;
esac
