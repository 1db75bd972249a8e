# syntax=docker/dockerfile:1
# listend container image. Both stages run scripts from deploy/image/, which CI
# also runs directly (tests/integration/test_deploy.py): the image is built by
# the same recipe the tests exercise. See docs/deploy.md.
#
#   docker build -t listend:0.1.0 .
#   docker run -p 7100:7100 -v "$PWD/keys:/var/lib/listend/trusted:ro" listend:0.1.0
ARG DEBIAN_IMAGE=debian:bookworm-slim

# --- build: -dev packages + compiler, then `listend` staged under /out -------
FROM ${DEBIAN_IMAGE} AS build
WORKDIR /src
# Package list first: this layer is cached until the list changes.
COPY deploy/image/build.sh deploy/image/build-packages.txt deploy/image/
RUN deploy/image/build.sh deps
COPY . .
RUN LD_BUILD_DIR=/tmp/build DESTDIR=/out PREFIX=/usr/local deploy/image/build.sh build

# --- runtime: shared libraries + model only, unprivileged --------------------
FROM ${DEBIAN_IMAGE}
LABEL org.opencontainers.image.title="listend" \
      org.opencontainers.image.description="Self-hosted speech-to-text HTTP server (Smallest Self-Host API)" \
      org.opencontainers.image.licenses="see repository"
COPY deploy/image/runtime-setup.sh deploy/image/runtime-packages.txt /tmp/image/
RUN /tmp/image/runtime-setup.sh && rm -rf /tmp/image
COPY --from=build /out/ /

ENV LISTEND_DATA=/var/lib/listend \
    API_SERVER_PORT=7100
# Numeric, so Kubernetes' runAsNonRoot can verify it (uid made by runtime-setup.sh).
USER 10001:10001
WORKDIR /var/lib/listend
# issuer public keys (issuer.pub, trusted/*.pub), listend.db, jobs.db, webhook.secret, tmp/
VOLUME ["/var/lib/listend"]
EXPOSE 7100
# listend drains on SIGTERM (finishes in-flight requests, up to its drain timeout, 30 s).
STOPSIGNAL SIGTERM
# start-period covers loading one decoder per core (~100 MB of model each).
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["/usr/local/bin/listend-healthcheck"]
ENTRYPOINT ["/usr/local/bin/listend-entrypoint"]
CMD ["serve"]
