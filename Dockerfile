# Build stage: compile the release binary.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
# vendor/: the patched sqlx-core that Cargo.toml's [patch] points at; templates/: compiled in.
COPY vendor ./vendor
COPY src ./src
COPY migrations ./migrations
COPY sample-data ./sample-data
COPY templates ./templates
RUN cargo build --release --locked && strip target/release/kiln

# Runtime stage: the binary, CA certificates and an unprivileged user.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data kiln \
    && mkdir -p /data && chown kiln /data
COPY --from=build /src/target/release/kiln /usr/local/bin/kiln
USER kiln
WORKDIR /data
ENV KILN_BIND=0.0.0.0:8080 \
    KILN_DATABASE_URL=sqlite:///data/kiln.db
EXPOSE 8080
VOLUME ["/data"]
ENTRYPOINT ["kiln"]
CMD ["serve"]
