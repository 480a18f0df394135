# anteroom container image: a static-ish release binary on a slim Debian base.
#   docker build -t anteroom .
#   docker run -p 8080:8080 -p 9090:9090 -e ANTEROOM_ORIGIN__URL=http://shop:80 anteroom
# The image's config (config/container.toml) has no rooms: mount your own at
# /etc/anteroom/anteroom.toml, or override keys with ANTEROOM_SECTION__KEY variables
# (config/anteroom.toml documents them all). The sample room is never baked in.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so that code changes do not rebuild them. The benches are copied
# as they are: the manifest names them, and they change rarely.
COPY Cargo.toml Cargo.lock ./
COPY benches benches
RUN mkdir -p src \
 && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
 && cargo build --release --locked --bin anteroom \
 && rm -rf src
COPY src src
COPY config config
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin anteroom

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin anteroom
COPY --from=build /src/target/release/anteroom /usr/local/bin/anteroom
COPY config/container.toml /etc/anteroom/anteroom.toml
COPY config/anteroom.toml /usr/share/doc/anteroom/anteroom.example.toml
ENV ANTEROOM_CONFIG=/etc/anteroom/anteroom.toml
USER anteroom
# 8080: public HTTP, 8443: public HTTPS (when configured), 9090: admin (health, metrics).
EXPOSE 8080 8443 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["anteroom", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["anteroom"]
CMD ["run"]
