# syntax=docker/dockerfile:1
# howdah container image: `docker build -t howdah .` then
#   docker run --rm howdah copy --source URL --target URL --jobs 4
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
    target/release/howdah target/release/deps/howdah-* target/release/deps/libhowdah-* \
    target/release/.fingerprint/howdah-*

# The real sources. COPY keeps the context's modification times, which can be older than the
# dummy build above, so touch the crate roots to make sure cargo rebuilds howdah itself.
COPY src ./src
COPY benches ./benches
COPY tests ./tests
COPY configs ./configs
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked \
 && install -m 0755 target/release/howdah /usr/local/bin/howdah \
 && /usr/local/bin/howdah --version

# ---- runtime stage ----------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates libssl3 postgresql-client \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 howdah \
 && useradd --system --uid 10001 --gid howdah --home-dir /home/howdah --create-home \
      --shell /usr/sbin/nologin howdah
COPY --from=builder /usr/local/bin/howdah /usr/local/bin/howdah
USER howdah
WORKDIR /home/howdah
ENTRYPOINT ["howdah"]
CMD ["--help"]
