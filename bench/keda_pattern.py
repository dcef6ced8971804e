"""KEDA's call pattern at scale: N ScaledJobs over Q Redis lists.

    python bench/keda_pattern.py [--jobs 1000,10000] [--queues 10] [--interval 30]
                                 [--windows 2] [--ttl 1,30] [--client go|python]
                                 [--event-loop uvloop|asyncio] [--max-metric-series N]
                                 [--noop] [--noop-variant LABEL=FLAGS ...]

Every simulated ScaledJob polls like KEDA — GetMetricSpec, GetMetrics, IsActive, on
one shared gRPC connection — every --interval seconds from a random phase, for
--windows poll windows. The callers are KEDA's own generated Go client
(tests/keda/cmd/kedaload, built by scripts/keda-tools; ``--client go``, the
default), or this Python process (``--client python``), which on a small machine
competes with the scaler for CPU. The scaler runs as its own process (`keda-queue-scaler
serve`) against a real redis-server started here. Printed per run:

- broker reads per poll window, counted by Redis itself (INFO commandstats LLEN):
  KEDA's built-in redis trigger makes one read per ScaledJob per poll (N per
  window); ours makes at most one per queue per cache TTL;
- RPC latency p50/p99 seen by the callers;
- the scaler's CPU seconds (utime+stime from /proc), all threads ("cores") and its
  main thread alone ("loop": the event loop, where the handlers run; the rest is
  grpc's completion-queue and I/O threads), and peak RSS (VmHWM).

``--noop`` adds a row per job count for bench/noop_server.py (a grpc.aio
ExternalScaler that returns constants, on the same event loop): what the same calls
cost grpc.aio alone, the floor under ours. ``--noop-variant LABEL=FLAGS`` adds a
no-op row started with bench/noop_server.py's FLAGS (``--grpc-option``,
``--gc-threshold``, ``--sync-threads``), to look for a lower floor; ``--ttl ''``
leaves our server out. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shlex
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    NOOP_READY,
    READY,
    noop_command,
    redis_server,
    serve_command,
)
from bench.rpc_throughput import process_pid  # noqa: E402
from scaler.proto import externalscaler_pb2 as pb  # noqa: E402
from scaler.proto import externalscaler_pb2_grpc as pb_grpc  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """A process's CPU seconds, all threads; or one thread's (``thread``, its tid)."""
    stat = Path(f"/proc/{pid}/task/{thread}/stat" if thread else f"/proc/{pid}/stat")
    fields = stat.read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def scaled_job(stub: pb_grpc.ExternalScalerStub, ref: pb.ScaledObjectRef, interval: float,
                     start: float, windows: int, latencies: list[float],
                     codes: Counter[str]) -> int:  # fmt: skip
    loop = asyncio.get_running_loop()
    phase = random.uniform(0, interval)
    errors = 0
    for k in range(windows):
        await asyncio.sleep(max(0.0, start + phase + k * interval - loop.time()))
        try:
            t = time.perf_counter()
            spec = await stub.GetMetricSpec(ref)
            latencies.append(time.perf_counter() - t)
            name = spec.metricSpecs[0].metricName
            t = time.perf_counter()
            await stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref, metricName=name))
            latencies.append(time.perf_counter() - t)
            t = time.perf_counter()
            await stub.IsActive(ref)
            latencies.append(time.perf_counter() - t)
        except grpc.aio.AioRpcError as exc:
            errors += 1
            codes[exc.code().name] += 1
    return errors


async def drive(port: int, redis_address: str, jobs: int, queues: int, interval: float,
                windows: int, codes: Counter[str]) -> tuple[list[float], int, float]:  # fmt: skip
    latencies: list[float] = []
    options = [("grpc.max_concurrent_streams", 1 << 20)]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
        stub = pb_grpc.ExternalScalerStub(channel)
        refs = [
            pb.ScaledObjectRef(
                name=f"job-{i}", namespace="bench",
                scalerMetadata={"scalerType": "redis", "address": redis_address,
                                "listName": f"queue-{i % queues}", "listLength": "5"},
            )
            for i in range(jobs)
        ]  # fmt: skip
        await stub.GetMetricSpec(refs[0])  # connect
        start = asyncio.get_running_loop().time() + 0.5
        t0 = time.perf_counter()
        errors = await asyncio.gather(
            *(scaled_job(stub, ref, interval, start, windows, latencies, codes) for ref in refs)
        )
        elapsed = time.perf_counter() - t0
    return latencies, sum(errors), elapsed


def drive_go(port: int, redis_address: str, jobs: int, queues: int, interval: float,
             windows: int, codes: Counter[str]) -> tuple[float, float, int, float]:  # fmt: skip
    """(p50 ms, p99 ms, calls, seconds) from KEDA's Go client."""
    tools = subprocess.run(
        ["bash", str(ROOT / "scripts" / "keda-tools")], capture_output=True, text=True, check=True
    ).stdout.strip()
    done = subprocess.run(
        [f"{tools}/kedaload", "-address", f"127.0.0.1:{port}", "-redis", redis_address,
         "-jobs", str(jobs), "-queues", str(queues), "-interval", f"{interval:g}s",
         "-windows", str(windows)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    out = json.loads(done.stdout)
    codes.update(out["errors"] or {})
    return out["p50Ms"], out["p99Ms"], out["calls"], out["seconds"]


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000 if len(values) > 1 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", default="1000,10000", help="ScaledJob counts [1000,10000]")
    parser.add_argument("--queues", type=int, default=10, help="distinct lists [10]")
    parser.add_argument("--interval", type=float, default=30.0, help="pollingInterval s [30]")
    parser.add_argument("--windows", type=int, default=2, help="poll windows per run [2]")
    parser.add_argument("--ttl", default="1,30",
                        help="our --cache-ttl values to try; '' for none [1,30]")  # fmt: skip
    parser.add_argument("--client", choices=("go", "python"), default="go",
                        help="the callers: KEDA's Go client, or this process [go]")  # fmt: skip
    parser.add_argument("--event-loop", choices=("uvloop", "asyncio"), default="uvloop",
                        help="the servers' event loop (serve's --event-loop) [uvloop]")  # fmt: skip
    parser.add_argument("--max-metric-series", type=int, default=500,
                        help="serve's --max-metric-series: give at least --jobs to keep a "
                             "series per ScaledJob [500, serve's default]")  # fmt: skip
    parser.add_argument("--noop", action="store_true",
                        help="also run each job count against the no-op server")  # fmt: skip
    parser.add_argument("--noop-variant", action="append", default=[], metavar="LABEL=FLAGS",
                        help="also a no-op server started with FLAGS, in a row named "
                             "LABEL (repeatable), e.g. "
                             "'bdp0=--grpc-option grpc.http2.bdp_probe=0'")  # fmt: skip
    args = parser.parse_args()
    with redis_server() as client:
        port = client.connection_pool.connection_kwargs["port"]
        for q in range(args.queues):
            client.rpush(f"queue-{q}", *range(q + 1))
        print(f"# {os.cpu_count()} CPUs; {args.queues} lists; pollingInterval {args.interval:g}s; "
              f"{args.windows} windows per run; {args.client} callers and the scaler on one "
              f"machine; {args.event_loop}; --max-metric-series "
              f"{args.max_metric_series}")  # fmt: skip
        row = "{:>7} {:>8} {:>14} {:>12} {:>9} {:>9} {:>8} {:>8} {:>7} {:>7} {:>9} {:>7}"
        print(row.format("jobs", "ttl s", "built-in/win", "ours/win", "p50 ms", "p99 ms",
                         "RPC/s", "needed", "cores", "loop", "RSS MiB", "errors"))  # fmt: skip
        loop = ["--event-loop", args.event_loop]
        for jobs in (int(j) for j in args.jobs.split(",")):
            runs: list[tuple[str, list[str], re.Pattern[str], bool]] = [
                (f"{float(t):g}",
                 serve_command("--cache-ttl", t, "--max-metric-series",
                               str(args.max_metric_series), *loop),
                 READY, True)
                for t in args.ttl.split(",") if t
            ]  # fmt: skip
            if args.noop:
                runs.append(("no-op", noop_command(*loop), NOOP_READY, False))
            for variant in args.noop_variant:
                label, _, flags = variant.partition("=")
                runs.append((label, noop_command(*loop, *shlex.split(flags)), NOOP_READY, False))
            for ttl, cmd, ready, from_stderr in runs:
                with process_pid(cmd, ready, from_stderr) as (pid, grpc_port):
                    client.config_resetstat()
                    cpu0, loop0 = cpu_seconds(pid), cpu_seconds(pid, pid)
                    codes: Counter[str] = Counter()
                    if args.client == "go":
                        p50, p99, calls, elapsed = drive_go(
                            grpc_port, f"127.0.0.1:{port}", jobs, args.queues, args.interval,
                            args.windows, codes,
                        )  # fmt: skip
                        errors = sum(codes.values())
                    else:
                        latencies, errors, elapsed = asyncio.run(
                            drive(grpc_port, f"127.0.0.1:{port}", jobs, args.queues,
                                  args.interval, args.windows, codes)
                        )  # fmt: skip
                        p50, p99, calls = pct(latencies, 50), pct(latencies, 99), len(latencies)
                    cpu = cpu_seconds(pid) - cpu0
                    loop_cpu = cpu_seconds(pid, pid) - loop0
                    rss = peak_rss_mib(pid)
                stats = client.info("commandstats").get("cmdstat_llen", {"calls": 0})
                reads = int(stats["calls"]) / args.windows
                cells = (
                    jobs, ttl, jobs, f"{reads:.0f}", f"{p50:.2f}",
                    f"{p99:.2f}", f"{calls / elapsed:.0f}",
                    f"{3 * jobs / args.interval:.0f}", f"{cpu / elapsed:.2f}",
                    f"{loop_cpu / elapsed:.2f}", f"{rss:.0f}",
                    errors,
                )  # fmt: skip
                print(row.format(*cells), flush=True)
                if codes:
                    print(f"#   errors by code: {dict(codes.most_common())}")
        print(
            "# built-in/win: KEDA's own trigger reads once per ScaledJob per poll; ours/win: "
            "LLEN calls Redis counted; needed: KEDA's 3 calls per ScaledJob per interval; "
            "cores: the scaler process's CPU seconds per second (/proc); loop: its main "
            "thread's (the event loop)"
        )


if __name__ == "__main__":
    main()
