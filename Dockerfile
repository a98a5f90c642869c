# Multi-stage build: compile the release binary, then a slim runtime image.
# libsqlite3, libpq and OpenSSL are compiled from the crates (bundled/vendored),
# so the builder needs only Rust, a C compiler, make and perl.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin signet

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/signet --create-home signet
COPY --from=build /src/target/release/signet /usr/local/bin/signet
COPY config/ /etc/signet/
WORKDIR /var/lib/signet
USER signet
ENV SIGNET__SERVER__BIND=0.0.0.0:8080 \
    SIGNET__DATABASE__URL=sqlite:///var/lib/signet/data/signet.db \
    RUST_LOG=info
VOLUME ["/var/lib/signet/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/signet"]
CMD ["serve"]
