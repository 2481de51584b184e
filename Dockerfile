# The pglab server image for machines with a registry:
#     docker build -t pglab/server:latest .     (or: docker compose build)
# Offline, scripts/build-pglab-image.sh makes the same image with debootstrap.

# The sandbox terminal's browser files (xterm.js), from package-lock.json.
FROM node:20-bookworm-slim AS web
WORKDIR /web
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error \
 && for f in @xterm/xterm/lib/xterm.js @xterm/xterm/css/xterm.css @xterm/addon-fit/lib/addon-fit.js; do \
      install -D -m 0644 "node_modules/$f" "/vendor/$f"; done

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# npm runs in the `web` stage; build.rs need not look for it here.
RUN PGLAB_SKIP_NPM=1 cargo build --release --locked --bin pglab \
 && install -s -m 0755 target/release/pglab /usr/local/bin/pglab

FROM debian:bookworm-slim
# PostgreSQL 15 server binaries so the `local` sandbox backend works inside
# too, psql for operators; no cluster is created (pglab runs initdb itself).
RUN mkdir -p /etc/postgresql-common \
 && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates postgresql-15 postgresql-client-15 \
 && rm -rf /var/lib/apt/lists/* /usr/lib/postgresql/15/lib/llvmjit* /usr/lib/postgresql/15/lib/bitcode \
 && groupadd --system --gid 10001 pglab \
 && useradd --system --uid 10001 --gid pglab --home-dir /var/lib/pglab --create-home \
      --shell /usr/sbin/nologin pglab \
 && install -d -o pglab -g pglab /var/lib/pglab/data
COPY --from=build /usr/local/bin/pglab /usr/local/bin/pglab
COPY static /opt/pglab/static
COPY content /opt/pglab/content
COPY --from=web /vendor /opt/pglab/vendor
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/postgresql/15/bin \
    LANG=C.UTF-8 \
    PGLAB_BIND=0.0.0.0:8080 \
    PGLAB_DATA_DIR=/var/lib/pglab/data \
    PGLAB_CONTENT_DIR=/opt/pglab/content \
    PGLAB_STATIC_DIR=/opt/pglab/static \
    PGLAB_VENDOR_DIR=/opt/pglab/vendor \
    PGLAB_LOG_FORMAT=json
WORKDIR /opt/pglab
USER pglab
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/pglab", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/pglab"]
CMD ["serve"]
