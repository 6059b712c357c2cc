# health-bridge container image, built from the repository root:
#
#   docker build -t health-bridge:0.1.0 .
#
# The build stage is the Debian 12 machine the project's scripts expect: it
# installs the toolchain with scripts/bootstrap and configures CMake as
# scripts/test does, without tests and benchmarks. The runtime stage holds
# the binary and the Debian packages of the shared libraries it links,
# nothing else. tests/integration/deploy/container_image_test.cc checks both
# (against the scripts, and against ldd of a locally built binary), since no
# Docker engine runs in CI.

FROM debian:bookworm AS build
WORKDIR /src
# The package list alone first, so a source change reuses this layer.
COPY scripts/bootstrap scripts/bootstrap
RUN scripts/bootstrap
# .git comes along on purpose: CMake stamps `git rev-parse` into --version.
COPY . .
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DHB_BUILD_TESTS=OFF -DHB_BUILD_BENCHMARKS=OFF \
 && cmake --build build

FROM debian:bookworm-slim
# libstdc++6 brings libgcc-s1 and libc6; the other libraries' own
# dependencies (lz4, zstd, sasl2, nghttp2, ...) come with them.
# ca-certificates: the trust store for https Consul, webhooks and Kafka TLS.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates \
      libcrypt1 \
      libcurl4 \
      libfmt9 \
      libprometheus-cpp-core1.0 \
      librdkafka1 \
      libsimdjson14 \
      libspdlog1.10 \
      libssl3 \
      libstdc++6 \
      libyaml-cpp0.7 \
 && rm -rf /var/lib/apt/lists/*
# A fixed numeric uid, so Kubernetes' runAsNonRoot can verify it without
# reading /etc/passwd; the name only makes `ps` and logs readable.
RUN groupadd --system --gid 65532 health-bridge \
 && useradd --system --uid 65532 --gid 65532 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin health-bridge \
 && install -d -o 65532 -g 65532 -m 0750 /var/lib/health-bridge
COPY --from=build /src/build/bridge/app/health-bridge /usr/local/bin/health-bridge
# Runs as is against the local Consul agent (CONSUL_HTTP_ADDR overrides the
# address) and logs every event; mount a config over it for anything else.
COPY config/examples/minimal.yaml /etc/health-bridge/config.yaml
USER 65532:65532
# server.listen: /metrics, /healthz, /readyz, / (and /v1/instances when enabled)
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/health-bridge"]
CMD ["--config", "/etc/health-bridge/config.yaml"]
