# keda-queue-scaler container image.
#   docker build -t keda-queue-scaler .
#   docker run --rm -p 6000:6000 -p 9464:9464 keda-queue-scaler
# Runs as a non-root numeric user and needs no writable root filesystem
# (Kubernetes: readOnlyRootFilesystem: true; the chart does so).

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# -- build: a virtual environment with the package and its pinned dependencies --
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# The install is scripts/image-venv (pinned by constraints.txt, with the kubernetes
# extra the chart's kubernetes.enabled needs); make e2e runs serve from the same script.
COPY constraints.txt pyproject.toml README.md scripts/image-venv ./
COPY scaler/ scaler/
RUN sh image-venv /opt/venv python

# -- runtime: the venv on a slim Python, nothing else --------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="keda-queue-scaler" \
      org.opencontainers.image.description="KEDA external scaler for Redis, SQS and RabbitMQ queues" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
# gRPC (KEDA calls it) and Prometheus /metrics
EXPOSE 6000 9464
# grpc.health.v1 through the package's own client: no extra binary in the image.
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
    CMD ["keda-queue-scaler", "probe", "--address", "127.0.0.1:6000"]
ENTRYPOINT ["keda-queue-scaler", "serve"]
