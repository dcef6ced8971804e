"""The committed stubs are what tools/genproto.py makes from proto/ today."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).parents[2]


def _genproto():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("genproto", ROOT / "tools" / "genproto.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_stubs_are_fresh(tmp_path: Path) -> None:
    for generated in _genproto().generate(tmp_path):
        committed = ROOT / "scaler" / "proto" / generated.name
        assert committed.read_bytes() == generated.read_bytes(), (
            f"{committed} is stale: run `make proto` and commit the result"
        )


def test_proto_matches_kedas_wire_contract() -> None:
    """Field numbers and types KEDA's client relies on (DESIGN §2)."""
    from google.protobuf.descriptor import FieldDescriptor as F

    from scaler.proto import externalscaler_pb2 as pb

    expected = {
        "ScaledObjectRef": {"name": (1, F.TYPE_STRING), "namespace": (2, F.TYPE_STRING),
                            "scalerMetadata": (3, F.TYPE_MESSAGE)},
        "IsActiveResponse": {"result": (1, F.TYPE_BOOL)},
        "GetMetricSpecResponse": {"metricSpecs": (1, F.TYPE_MESSAGE)},
        "MetricSpec": {"metricName": (1, F.TYPE_STRING), "targetSize": (2, F.TYPE_INT64),
                       "targetSizeFloat": (3, F.TYPE_DOUBLE)},
        "GetMetricsRequest": {"scaledObjectRef": (1, F.TYPE_MESSAGE),
                              "metricName": (2, F.TYPE_STRING)},
        "GetMetricsResponse": {"metricValues": (1, F.TYPE_MESSAGE)},
        "MetricValue": {"metricName": (1, F.TYPE_STRING), "metricValue": (2, F.TYPE_INT64),
                        "metricValueFloat": (3, F.TYPE_DOUBLE)},
    }  # fmt: skip
    assert pb.DESCRIPTOR.package == "externalscaler"
    for message, fields in expected.items():
        desc = pb.DESCRIPTOR.message_types_by_name[message]
        assert {f.name: (f.number, f.type) for f in desc.fields} == fields, message
    service = pb.DESCRIPTOR.services_by_name["ExternalScaler"]
    methods = {m.name: (m.input_type.name, m.output_type.name) for m in service.methods}
    assert methods == {
        "IsActive": ("ScaledObjectRef", "IsActiveResponse"),
        "StreamIsActive": ("ScaledObjectRef", "IsActiveResponse"),
        "GetMetricSpec": ("ScaledObjectRef", "GetMetricSpecResponse"),
        "GetMetrics": ("GetMetricsRequest", "GetMetricsResponse"),
        "StreamMetricSpec": ("ScaledObjectRef", "GetMetricSpecResponse"),
    }
    streaming = {m.name for m in service.methods if m.server_streaming}
    assert streaming == {"StreamIsActive", "StreamMetricSpec"}
