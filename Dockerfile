# corral image: build the release preset on Debian 12, run it on a slim Debian 12 as a non-root
# user. The config is read from /etc/corral/corral.yaml: mount your own there (the image carries
# config/corral.yaml, whose addresses are loopback-only, as a placeholder).
#
#   docker build --build-arg VERSION=0.1.0 -t corral:0.1.0 .
#   docker run --rm -v "$PWD/my-corral.yaml:/etc/corral/corral.yaml:ro" -p 6380:6380 corral:0.1.0
# Policy files: mount them too (e.g. -v "$PWD/policies:/etc/corral/policies:ro") and name them
# in the config (policy_files: [/etc/corral/policies]); corral reloads them when they change.
#
# Size: README "Container image" has the estimate and how it was computed.
# tests/integration/test_deploy_files.py checks this file's properties (no Docker runs in CI).

FROM debian:bookworm AS build
WORKDIR /src
# The same package list as the quick start (scripts/deps.sh build), installed in its own layer.
# The build stage is not shipped, but its layers are cached: clean them the same way.
COPY scripts/deps.sh scripts/deps.sh
RUN bash scripts/deps.sh build \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*
COPY . .
# The same commands as scripts/run.sh.
RUN cmake --preset release \
 && cmake --build --preset release \
 && strip build/release/cmd/corral/corral

FROM debian:bookworm-slim AS runtime
# OCI labels. VERSION follows project(corral VERSION ...) in CMakeLists.txt. The repository has
# neither a LICENSE file nor a public address yet: LICENSES defaults to SPDX's "NOASSERTION" and
# SOURCE to empty; set both with --build-arg when publishing.
ARG VERSION=0.1.0
ARG SOURCE=""
ARG LICENSES=NOASSERTION
LABEL org.opencontainers.image.title="corral" \
      org.opencontainers.image.description="Redis sidecar proxy: key naming and TTL policies, rate limits, single-flight fills" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="${LICENSES}" \
      org.opencontainers.image.version="${VERSION}"
# Runtime libraries only: libevent, spdlog (with fmt), yaml-cpp, OpenSSL, hiredis (corral doctor);
# CA certificates for verifying managed Redis services with the system store. The apt lists and
# the package cache are removed in the same RUN, so no layer keeps them.
# The user and group corral get the same fixed id, 10001, so that Kubernetes' runAsNonRoot,
# runAsUser/runAsGroup and volume permissions can name them by number.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libevent-core-2.1-7 libevent-extra-2.1-7 \
      libevent-pthreads-2.1-7 libevent-openssl-2.1-7 libspdlog1.10 libfmt9 libyaml-cpp0.7 libssl3 \
      libhiredis0.14 ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* \
 && groupadd --system --gid 10001 corral \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin corral
COPY --from=build /src/build/release/cmd/corral/corral /usr/local/bin/corral
COPY config/corral.yaml /etc/corral/corral.yaml
USER 10001:10001
# 6380: RESP clients; 9121: admin (/metrics, /health, /ready, /policies).
EXPOSE 6380 9121
# No curl in the image: corral asks its own admin endpoint (exit 0 when /health answers 200).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD corral health --config /etc/corral/corral.yaml
CMD ["corral", "--config", "/etc/corral/corral.yaml"]
