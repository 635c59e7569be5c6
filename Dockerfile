# syntax=docker/dockerfile:1
# sluice container image: `docker build -t sluice .` then
#   docker run --rm sluice copy --source URL --target URL --jobs 4
# docker-compose.yml uses this file for the one-command demo (docs/docker.md).

# ---- build stage ------------------------------------------------------------------------
FROM rust:1-bookworm AS builder
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends pkg-config libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /build

# Dependency-caching layer: build every dependency against dummy targets, so editing the
# sources does not rebuild the crates.io dependencies. Every target declared in Cargo.toml
# (lib, bin, bench, integration test) needs a file for the manifest to load.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches tests/integration \
 && echo 'fn main() {}' > src/main.rs \
 && : > src/lib.rs \
 && echo 'fn main() {}' > benches/codec.rs \
 && : > tests/integration/main.rs \
 && cargo build --release --locked \
 && rm -rf src benches tests \
    target/release/sluice target/release/deps/sluice-* target/release/deps/libsluice-* \
    target/release/.fingerprint/sluice-*

# The real sources. COPY keeps the context's modification times, which can be older than the
# dummy build above, so touch the crate roots to make sure cargo rebuilds sluice itself.
COPY src ./src
COPY benches ./benches
COPY tests ./tests
COPY configs ./configs
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked \
 && install -m 0755 target/release/sluice /usr/local/bin/sluice \
 && /usr/local/bin/sluice --version

# ---- runtime stage ----------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates libssl3 postgresql-client \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 sluice \
 && useradd --system --uid 10001 --gid sluice --home-dir /home/sluice --create-home \
      --shell /usr/sbin/nologin sluice
COPY --from=builder /usr/local/bin/sluice /usr/local/bin/sluice
USER sluice
WORKDIR /home/sluice
ENTRYPOINT ["sluice"]
CMD ["--help"]
