"""Celery's app for the worker Deployment of the ScaledObject tests (docs/kubernetes.md):

    celery -A celery_app worker -Q $CELERY_QUEUE --pool solo

runs ``tasks.record`` for what ``send_task("tasks.record", ...)`` queued.
REDIS_ADDRESS (host:port), REDIS_PASSWORD and CELERY_QUEUE come from the Pod's env."""

from __future__ import annotations

import os
from urllib.parse import quote

from celery import Celery
from tasks import record


def redis_url() -> str:
    password = quote(os.environ.get("REDIS_PASSWORD", ""), safe="")
    auth = f":{password}@" if password else ""
    return f"redis://{auth}{os.environ.get('REDIS_ADDRESS', '127.0.0.1:6379')}/0"


app = Celery("examples", broker=redis_url())
app.conf.task_default_queue = os.environ.get("CELERY_QUEUE", "celery")
app.conf.broker_connection_retry_on_startup = True
app.task(name="tasks.record")(record)
