#!/usr/bin/env bash
# Builds the course sandbox image (pglab/sandbox:15) offline, from the Debian
# packages of this machine's apt mirror: no container registry needed.
#
#   scripts/build-sandbox-image.sh           # exits at once when the image is up to date
#   scripts/build-sandbox-image.sh --force   # rebuilds it
#
# Steps: debootstrap a minimal bookworm root; install postgresql-15 (with
# contrib: pg_stat_statements...), alembic (its command and python3-alembic) and python3-psycopg2 (the
# migrations lab), nano, less and procps (ps, for the terminal), with service starts blocked and no default
# cluster; make a template cluster for pglab's settings
# (sandbox-image/make-template.sh); strip docs, locales, man pages and the
# LLVM JIT; add our entrypoint (sandbox-image/docker-entrypoint.sh) and the
# terminal's `docker` command (sandbox-image/docker-shim.sh); `docker import`
# the tree.
# Where a registry is reachable, sandbox-image/Dockerfile builds the same image.
#
# Environment: PGLAB_SANDBOX_IMAGE (default pglab/sandbox:15),
# DEBIAN_MIRROR (default: the bookworm mirror from /etc/apt/sources.list*).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE="${PGLAB_SANDBOX_IMAGE:-pglab/sandbox:15}"
FORCE=0
case "${1:-}" in
  --force) FORCE=1 ;;
  "") ;;
  -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
  *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

if ! docker info >/dev/null 2>&1; then
  echo "build-sandbox-image: no Docker engine answers (start dockerd first)" >&2
  exit 1
fi
# The image carries a hash of its recipe (this script and sandbox-image/):
# an image built from an older recipe is rebuilt, so a machine that keeps
# its images between runs (CI's) never tests a stale one.
RECIPE="$(cat "$0" sandbox-image/* | sha256sum | cut -c1-16)"
if [ "$FORCE" = 0 ]; then
  have="$(docker image inspect --format '{{ index .Config.Labels "pglab.recipe" }}' "$IMAGE" 2>/dev/null || true)"
  if [ "$have" = "$RECIPE" ]; then
    echo "$IMAGE is present and up to date (recipe $RECIPE; use --force to rebuild)"
    exit 0
  fi
  [ -z "$have" ] || echo "$IMAGE was built from another recipe ($have): rebuilding"
fi
if [ "$(id -u)" != 0 ]; then
  echo "build-sandbox-image: debootstrap and chroot need root" >&2
  exit 1
fi
command -v debootstrap >/dev/null || {
  echo "build-sandbox-image: debootstrap is missing (apt-get install debootstrap)" >&2
  exit 1
}

# The machine's own Debian mirror (deb822 .sources or one-line sources.list),
# so that the build works wherever apt works.
mirror_from_apt() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk '
      /^URIs:/ { uri = $2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == "bookworm") ok = 1 }
      /^$/ { if (ok && uri != "") { print uri; exit } uri = ""; ok = 0 }
      END { if (ok && uri != "") print uri }
    ' "$f" | head -n1
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '$1 == "deb" && $3 == "bookworm" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' "$f"
  done
}
MIRROR="${DEBIAN_MIRROR:-$(mirror_from_apt | head -n1)}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"

WORK="$(mktemp -d /var/tmp/pglab-sandbox-image.XXXXXX)"
ROOT="$WORK/root"
cleanup() {
  umount "$ROOT/dev/shm" 2>/dev/null || true
  umount "$ROOT/proc" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

started=$SECONDS
echo "==> debootstrap bookworm from $MIRROR"
debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
  cp "$WORK/debootstrap.log" /var/tmp/pglab-sandbox-image-debootstrap.log
  tail -20 "$WORK/debootstrap.log" >&2
  exit 1
}

echo "==> installing PostgreSQL 15 and the lab tools"
# Block service starts inside the chroot, and no default cluster: pglab's
# entrypoint makes the one cluster on first start.
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
mkdir -p "$ROOT/etc/postgresql-common"
echo "create_main_cluster = false" >"$ROOT/etc/postgresql-common/createcluster.conf"
# Nothing of the docs, man pages or translations is ever installed
# (PostgreSQL's own man pages are alternatives targets: kept, ~1 MB).
mkdir -p "$ROOT/etc/dpkg/dpkg.cfg.d"
cat >"$ROOT/etc/dpkg/dpkg.cfg.d/01-pglab-slim" <<'CFG'
path-exclude=/usr/share/doc/*
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
CFG
# Debian's postinst scripts register man pages with update-alternatives,
# which fails when the man folders do not exist.
mkdir -p "$ROOT"/usr/share/man/man1 "$ROOT"/usr/share/man/man3 "$ROOT"/usr/share/man/man7
mount -t proc proc "$ROOT/proc"
# On bookworm, contrib (pg_stat_statements, pgcrypto...) ships inside
# postgresql-15; postgresql-contrib is the metapackage that names it.
chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive LC_ALL=C apt-get install -y -q \
  --no-install-recommends postgresql-15 postgresql-contrib python3-alembic \
  alembic python3-psycopg2 nano less procps >"$WORK/apt.log" 2>&1 || {
  cp "$WORK/apt.log" /var/tmp/pglab-sandbox-image-apt.log
  grep -iE 'error|fail' "$WORK/apt.log" | head -20 >&2
  echo "full log: /var/tmp/pglab-sandbox-image-apt.log" >&2
  exit 1
}

echo "==> template cluster (first starts copy it instead of running initdb)"
mkdir -p "$ROOT/dev/shm"
mount -t tmpfs tmpfs "$ROOT/dev/shm"
install -m 755 sandbox-image/make-template.sh "$ROOT/tmp/make-template.sh"
chroot "$ROOT" /tmp/make-template.sh
rm -f "$ROOT/tmp/make-template.sh"
umount "$ROOT/dev/shm"
umount "$ROOT/proc"

echo "==> slimming"
# LLVM JIT: pglab's servers run with jit = off; the JIT alone is ~120 MB.
rm -f "$ROOT"/usr/lib/postgresql/15/lib/llvmjit*.so "$ROOT"/usr/lib/postgresql/15/lib/llvmjit_types.bc
rm -rf "$ROOT"/usr/lib/postgresql/15/lib/bitcode
rm -f "$ROOT"/usr/lib/x86_64-linux-gnu/libLLVM-*.so* "$ROOT"/usr/lib/*/libLLVM-*.so*
rm -rf "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* \
  "$ROOT"/usr/share/locale/* "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin \
  "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/log/*.log "$ROOT"/var/cache/debconf/*-old \
  "$ROOT"/usr/sbin/policy-rc.d
find "$ROOT/usr/lib/python3" -name '__pycache__' -type d -prune -exec rm -rf {} + 2>/dev/null || true

echo "==> entrypoint and the terminal's docker command"
install -m 755 sandbox-image/docker-entrypoint.sh "$ROOT/usr/local/bin/docker-entrypoint.sh"
# `docker compose exec postgres psql ...` as the course prints it, run inside
# the learner's own sandbox (no engine in there; anything else is refused).
install -m 755 sandbox-image/docker-shim.sh "$ROOT/usr/local/bin/docker"
mkdir -p "$ROOT/docker-entrypoint-initdb.d" "$ROOT/var/lib/postgresql/data" "$ROOT/var/run/postgresql"
chroot "$ROOT" chown postgres:postgres /var/lib/postgresql/data /var/run/postgresql
chmod 3777 "$ROOT/var/run/postgresql"

echo "==> docker import $IMAGE"
tar -C "$ROOT" --numeric-owner -c . | docker import \
  --change 'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV PGDATA=/var/lib/postgresql/data' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'VOLUME /var/lib/postgresql/data' \
  --change 'ENTRYPOINT ["docker-entrypoint.sh"]' \
  --change 'CMD ["postgres"]' \
  --change 'LABEL org.opencontainers.image.title=pglab-sandbox org.opencontainers.image.description="PostgreSQL 15 course sandbox (offline build)"' \
  --change "LABEL pglab.recipe=$RECIPE" \
  - "$IMAGE" >/dev/null
# Engine 20.10 refuses STOPSIGNAL in --change: pglab sets SIGINT per container.
size=$(docker image inspect --format '{{.Size}}' "$IMAGE")
echo "built $IMAGE ($((size / 1024 / 1024)) MiB) in $((SECONDS - started)) s"
