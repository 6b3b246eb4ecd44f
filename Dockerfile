# Multi-stage build of the one `eventdata` binary (API, relay and tools are its subcommands).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
# .cargo/config.toml sets SQLX_OFFLINE: static statements are checked against .sqlx/, no database needed.
COPY .cargo .cargo
COPY .sqlx .sqlx
COPY proto proto
COPY services services
COPY migrations migrations
RUN cargo build --release --locked --bin eventdata

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates postgresql-client \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 eventdata
COPY --from=build /src/target/release/eventdata /usr/local/bin/eventdata
USER eventdata
EXPOSE 50051 8080
ENTRYPOINT ["eventdata"]
CMD ["serve"]
