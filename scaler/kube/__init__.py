"""Kubernetes API access for ``serve --kubernetes`` (and ``explain --from-cluster``).

- :mod:`scaler.kube.auth`: what KEDA v2.21.0 does with a trigger's
  ``authenticationRef``, as pure functions over objects already read;
- :mod:`scaler.kube.cache`: watches that keep those objects (and the ScaledJobs'
  Jobs and Pods) in memory, so no RPC waits on the API server;
- :mod:`scaler.kube.jobs`: Job outcomes per ScaledJob, as Prometheus metrics;
- :mod:`scaler.kube.cluster`: one look at a ScaledJob with the user's own
  permissions, for ``explain --from-cluster``.

Only this package imports the ``kubernetes`` package (the ``kubernetes`` extra), and
only inside functions, so the rest of the scaler runs without it.
"""
