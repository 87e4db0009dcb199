# syntax=docker/dockerfile:1
# The container image of appproxy_exporter: the release workflow builds and pushes it for
# linux/amd64 and linux/arm64 (.github/workflows/release.yml); deploy/kubernetes/ runs it.
#
#   docker build --build-arg REVISION=$(git rev-parse --short=12 HEAD) -t appproxy_exporter .
#   docker run --rm --read-only -p 9869:9869 appproxy_exporter --config.file=/etc/appproxy_exporter/appproxy_exporter.yml
#
# The build stage runs on the builder's own platform and cross-compiles for the target one
# with scripts/build-linux-binary, the script scripts/package runs; the image itself is
# distroless: glibc, CA certificates (the endpoint probes verify chains against them), no
# shell, running as the unprivileged user nonroot (65532), with nothing to write.

ARG RUST_VERSION=1.95

FROM --platform=$BUILDPLATFORM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
ARG TARGETARCH
ARG REVISION=unknown
ENV APPPROXY_REVISION=${REVISION}
WORKDIR /src
COPY . .
RUN scripts/build-linux-binary "${TARGETARCH}" /out/appproxy_exporter

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/appproxy_exporter /usr/local/bin/appproxy_exporter
USER nonroot:nonroot
EXPOSE 9869
ENTRYPOINT ["/usr/local/bin/appproxy_exporter"]
