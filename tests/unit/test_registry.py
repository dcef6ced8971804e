"""Adding a broker is a folder and a row: a toy broker from the test folder alone
(tests/toybroker/) is registered in the table a server is given, and served."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from scaler.registry import KINDS, Broker, Kind
from tests import toybroker
from tests.conftest import ServerFactory, metrics_request, ref
from tests.toybroker.metadata import LinesMetadata

TOY = {**KINDS, "lines": Kind(LinesMetadata, Broker("lines", toybroker.open_adapter))}


async def test_a_broker_from_the_test_folder_is_served(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    queue = tmp_path / "queue.txt"
    queue.write_text("".join(f"item {i}\n" for i in range(7)))
    expected = len(queue.read_text().splitlines())  # the file's own count, not ours
    metadata = {"scalerType": "lines", "path": str(queue), "lineCount": "2"}
    async with start_server(kinds=TOY) as s:
        spec = await s.stub.GetMetricSpec(ref(metadata))
        value = await s.stub.GetMetrics(metrics_request(metadata))
        active = await s.stub.IsActive(ref(metadata))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await s.stub.GetMetrics(metrics_request({**metadata, "path": str(tmp_path / "no")}))
        assert "lines" in s.server.triggers.scaler_types
    assert (
        spec.metricSpecs[0].metricName == f"lines-{str(queue).replace('/', '-').replace('.', '-')}"
    )
    assert spec.metricSpecs[0].targetSizeFloat == 2
    assert value.metricValues[0].metricValueFloat == expected
    assert active.result is True
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_without_its_row_the_toy_scaler_type_is_refused(start_server: ServerFactory) -> None:
    async with start_server() as s:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await s.stub.GetMetrics(metrics_request({"scalerType": "lines", "path": "/x"}))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert '"lines" is not supported' in (err.value.details() or "")
