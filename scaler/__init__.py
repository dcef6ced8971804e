"""keda-queue-scaler: a KEDA external scaler for Redis, SQS and RabbitMQ queues."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("keda-queue-scaler")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
