#!/usr/bin/env bash
# Builds the pglab server image `pglab/server:latest` without any registry:
#   1. `cargo build --release --locked` on this host (Debian 12, same glibc as
#      the image);
#   2. a minimal Debian bookworm rootfs made once with debootstrap from this
#      machine's apt mirror, with ca-certificates, PostgreSQL 15 (server
#      binaries, so the `local` sandbox backend works inside too, and psql) and
#      a non-root `pglab` user; cached under $PGLAB_BUILD_CACHE;
#   3. the binary (templates are compiled in), static/ and content/ laid over
#      it and imported with `docker import --change ...`.
# Idempotent: does nothing when the image exists and was made from the same
# binary, static/, content/ and this script; --force rebuilds the image,
# --force-rootfs also remakes the cached rootfs.
# Needs root (debootstrap, chroot) and a Docker engine.
# Usage: scripts/build-pglab-image.sh [--force] [--force-rootfs] [--tag NAME:TAG]
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=pglab/server:latest
FORCE=0
FORCE_ROOTFS=0
while [ $# -gt 0 ]; do
  case "$1" in
    --force) FORCE=1 ;;
    --force-rootfs) FORCE=1; FORCE_ROOTFS=1 ;;
    --tag) IMAGE="$2"; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "build-pglab-image: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

# The uid/gid of the `pglab` user in the image; a bind-mounted data dir must be
# writable by it (docker-compose.yml's `pglab-init` service sees to that).
PGLAB_UID=10001
CACHE="${PGLAB_BUILD_CACHE:-/var/cache/pglab/image-build}"
ROOTFS="$CACHE/server-rootfs-bookworm"
SUITE=bookworm

say() { printf '==> %s\n' "$*"; }
die() { printf 'build-pglab-image: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (debootstrap and chroot need it)"
command -v docker >/dev/null || die "docker is not installed"
docker info >/dev/null 2>&1 || die "no Docker engine answers (start dockerd)"

# The apt mirror this machine uses (deb822 .sources or one-line .list files),
# so the build works where only the local mirror is reachable.
apt_mirror() {
  local uri
  uri=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
          | awk '{print $2}' | grep -v -- '-security' | grep -m1 'debian' || true)
  if [ -z "$uri" ]; then
    uri=$(grep -hsE '^deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
            | grep -v -- '-security' | awk '{for (i=2;i<=NF;i++) if ($i ~ /^https?:/) {print $i; exit}}' \
            | grep -m1 'debian' || true)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

# 1. The base rootfs, made once (it does not depend on the binary).
if [ "$FORCE_ROOTFS" = 1 ] || [ ! -f "$ROOTFS/.pglab-rootfs-complete" ]; then
  command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap)"
  MIRROR=$(apt_mirror)
  say "debootstrap --variant=minbase $SUITE from $MIRROR (once; cached in $ROOTFS)"
  rm -rf "$ROOTFS"
  mkdir -p "$CACHE"
  debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/debootstrap.log" >&2; die "debootstrap failed (log: $CACHE/debootstrap.log)"; }
  # No service may start inside the chroot, and no cluster is made: pglab's
  # local backend runs initdb itself.
  printf '#!/bin/sh\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"
  chmod +x "$ROOTFS/usr/sbin/policy-rc.d"
  mkdir -p "$ROOTFS/etc/postgresql-common"
  echo 'create_main_cluster = false' >"$ROOTFS/etc/postgresql-common/createcluster.conf"
  # Keep the image small: no documentation, manuals or translations.
  cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/01-pglab-nodoc" <<'CFG'
path-exclude /usr/share/doc/*
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
CFG
  say "installing ca-certificates and PostgreSQL 15 in the rootfs"
  chroot "$ROOTFS" /usr/bin/env DEBIAN_FRONTEND=noninteractive sh -euc '
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends ca-certificates postgresql-15 postgresql-client-15 >/dev/null
    apt-get clean
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log
    # JIT is off without these: about 100 MB of LLVM nobody in a course needs.
    rm -rf /usr/lib/postgresql/15/lib/llvmjit* /usr/lib/postgresql/15/lib/bitcode
    rm -f /usr/lib/x86_64-linux-gnu/libLLVM-*.so* /usr/lib/aarch64-linux-gnu/libLLVM-*.so*
    # (PostgreSQL man pages are alternatives links: removed only after install.)
    rm -rf /usr/share/doc/* /usr/share/man/* /usr/share/locale/* /usr/share/postgresql/15/man
  ' || die "installing packages in the rootfs failed"
  chroot "$ROOTFS" groupadd --system --gid "$PGLAB_UID" pglab
  chroot "$ROOTFS" useradd --system --uid "$PGLAB_UID" --gid pglab \
    --home-dir /var/lib/pglab --create-home --shell /usr/sbin/nologin pglab
  mkdir -p "$ROOTFS/var/lib/pglab/data"
  chroot "$ROOTFS" chown -R pglab:pglab /var/lib/pglab
  rm -f "$ROOTFS/usr/sbin/policy-rc.d"
  touch "$ROOTFS/.pglab-rootfs-complete"
else
  say "base rootfs cached in $ROOTFS (--force-rootfs remakes it)"
fi

# 2. The binary.
say "cargo build --release --locked"
cargo build --release --locked --bin pglab
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET_DIR/release/pglab"
[ -x "$BIN" ] || die "no binary at $BIN"

# The sandbox terminal's browser files (xterm.js), installed by npm from
# package-lock.json; only the files the server serves go into the image.
VENDOR_FILES="@xterm/xterm/lib/xterm.js @xterm/xterm/css/xterm.css @xterm/addon-fit/lib/addon-fit.js"
for f in $VENDOR_FILES; do
  if [ ! -f "node_modules/$f" ]; then
    command -v npm >/dev/null || die "node_modules/$f is missing and npm is not installed (apt-get install npm)"
    say "npm ci (front-end packages for the terminal)"
    npm ci --no-audit --no-fund --loglevel=error || die "npm ci failed"
    break
  fi
done

# What the image is made of; an image carrying the same digest is up to date.
DIGEST=$( { sha256sum "$BIN" "$0" package-lock.json; find static content -type f -print0 | sort -z | xargs -0 sha256sum; } \
          | sha256sum | cut -c1-32)
if [ "$FORCE" = 0 ] && [ "$(docker image inspect -f '{{index .Config.Labels "org.pglab.build"}}' "$IMAGE" 2>/dev/null || true)" = "$DIGEST" ]; then
  say "$IMAGE is up to date (build $DIGEST); --force rebuilds"
  exit 0
fi

# 3. The application laid over the base, imported as one layer.
OVERLAY=$(mktemp -d)
trap 'rm -rf "$OVERLAY"' EXIT
mkdir -p "$OVERLAY/usr/local/bin" "$OVERLAY/opt/pglab"
# Stripped: line tables are for local debugging, not worth ~40 MB here.
install -s -m 0755 "$BIN" "$OVERLAY/usr/local/bin/pglab"
cp -r static "$OVERLAY/opt/pglab/static"
cp -r content "$OVERLAY/opt/pglab/content"
for f in $VENDOR_FILES; do
  install -D -m 0644 "node_modules/$f" "$OVERLAY/opt/pglab/vendor/$f"
done

say "docker import $IMAGE"
# One tar stream of both trees; the overlay lists only its own paths, since
# `docker import` refuses duplicate entries (./, ./usr, ...).
tar --numeric-owner --exclude=./.pglab-rootfs-complete -c -C "$ROOTFS" . \
    -C "$OVERLAY" ./usr/local/bin/pglab ./opt/pglab \
  | docker import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/postgresql/15/bin' \
      --change 'ENV LANG=C.UTF-8' \
      --change 'ENV PGLAB_BIND=0.0.0.0:8080' \
      --change 'ENV PGLAB_DATA_DIR=/var/lib/pglab/data' \
      --change 'ENV PGLAB_CONTENT_DIR=/opt/pglab/content' \
      --change 'ENV PGLAB_STATIC_DIR=/opt/pglab/static' \
      --change 'ENV PGLAB_VENDOR_DIR=/opt/pglab/vendor' \
      --change 'ENV PGLAB_LOG_FORMAT=json' \
      --change 'EXPOSE 8080' \
      --change 'WORKDIR /opt/pglab' \
      --change 'USER pglab' \
      --change 'HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["/usr/local/bin/pglab", "healthcheck"]' \
      --change "LABEL org.pglab.build=$DIGEST" \
      --change 'ENTRYPOINT ["/usr/local/bin/pglab"]' \
      --change 'CMD ["serve"]' \
      - "$IMAGE" >/dev/null
say "built $IMAGE (build $DIGEST, $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%d MB", $1/1000000}'))"
