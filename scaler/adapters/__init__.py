"""Broker adapters. Each module owns its metadata classes and one Adapter.

Adapters import only ``scaler.errors``, ``scaler.metadata`` and
``scaler.adapters.base``: never the gRPC or server layer.
"""
