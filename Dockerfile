# corral image: build the release preset on Debian 12, run it on a slim Debian 12 as a non-root
# user. The config is read from /etc/corral/corral.yaml: mount your own there (the image carries
# config/corral.yaml, whose addresses are loopback-only, as a placeholder).
#
#   docker build -t corral .
#   docker run --rm -v "$PWD/my-corral.yaml:/etc/corral/corral.yaml:ro" -p 6380:6380 corral
# Policy files: mount them too (e.g. -v "$PWD/policies:/etc/corral/policies:ro") and name them
# in the config (policy_files: [/etc/corral/policies]); corral reloads them when they change.

FROM debian:bookworm AS build
WORKDIR /src
# The same package list as the quick start (scripts/deps.sh build), installed in its own layer.
COPY scripts/deps.sh scripts/deps.sh
RUN bash scripts/deps.sh build && rm -rf /var/lib/apt/lists/*
COPY . .
# The same commands as scripts/run.sh.
RUN cmake --preset release \
 && cmake --build --preset release \
 && strip build/release/cmd/corral/corral

FROM debian:bookworm-slim AS runtime
# Runtime libraries only: libevent, spdlog (with fmt), yaml-cpp, OpenSSL, hiredis (corral
# doctor); CA certificates for verifying managed Redis services with the system store.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libevent-2.1-7 libevent-core-2.1-7 libevent-extra-2.1-7 \
      libevent-pthreads-2.1-7 libevent-openssl-2.1-7 libspdlog1.10 libfmt9 libyaml-cpp0.7 libssl3 libhiredis0.14 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin corral
COPY --from=build /src/build/release/cmd/corral/corral /usr/local/bin/corral
COPY config/corral.yaml /etc/corral/corral.yaml
# The user corral, by number so that Kubernetes' runAsNonRoot can check it.
USER 10001:10001
# 6380: RESP clients; 9121: admin (/metrics, /health, /ready).
EXPOSE 6380 9121
CMD ["corral", "--config", "/etc/corral/corral.yaml"]
