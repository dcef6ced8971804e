"""The commands around the scaler: ``explain`` (how many Jobs KEDA would create,
and why), ``demo`` (the whole pipeline on this machine) and ``probe`` (gRPC
health), over one shared gRPC client (:mod:`scaler.tools.client`)."""
