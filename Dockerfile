# PicoShare in Rust: a small image that runs the server as a non-root user with
# its database on the /data volume.
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

# ---- run ------------------------------------------------------------------
FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --user-group --home-dir /data \
        --shell /usr/sbin/nologin picoshare \
    && mkdir -p /data \
    && chown picoshare:picoshare /data \
    && chmod 0700 /data
COPY --from=build /usr/local/bin/picoshare /usr/local/bin/picoshare
USER picoshare:picoshare
WORKDIR /data
VOLUME /data
ENV PORT=4001
EXPOSE 4001
# The slim image has no curl; bash's /dev/tcp asks /healthz for its status line.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${PORT:-4001} && printf 'GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
# SIGTERM lets requests in flight finish (PS_SHUTDOWN_GRACE, 30 s by default):
# give `docker stop` a longer timeout than that (docker stop -t 40).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/picoshare"]
CMD ["-db", "/data/store.db"]
