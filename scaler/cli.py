"""``keda-queue-scaler``: serve the scaler, probe its health, print its version."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from scaler import __version__
from scaler import settings as settings_mod

if TYPE_CHECKING:  # the commands import what they use when they run
    from scaler.tools.client import Caller

DESCRIPTION = """\
KEDA external scaler for Redis lists and streams, AWS SQS and RabbitMQ queues.
Point a ScaledJob trigger at it with `type: external`, `scalerAddress: <host>:<port>`
and `scalerType: redis` (or redis-streams, ...) plus the built-in trigger's metadata.
"""


def _serve(args: argparse.Namespace) -> int:
    from scaler.server import serve

    try:
        settings = settings_mod.from_sources(args)
    except ValueError as exc:
        print(f"keda-queue-scaler serve: {exc}", file=sys.stderr)
        return 2
    from scaler import logs

    logs.configure(settings.log_level, settings.log_format)
    from scaler.server import StartupError

    try:
        serve(settings)
    except StartupError as exc:
        print(f"keda-queue-scaler serve: {exc}", file=sys.stderr)
        return 2
    return 0


def _add_client_tls(parser: argparse.ArgumentParser) -> None:
    """TLS options for commands that call a scaler (probe, explain)."""
    parser.add_argument("--tls-ca-file", help="CA (PEM) of the scaler's certificate; turns TLS on")
    parser.add_argument("--tls-cert-file", help="client certificate (PEM) for mTLS")
    parser.add_argument("--tls-key-file", help="client key (PEM) for mTLS")
    parser.add_argument(
        "--tls-server-name", help="name to expect on the scaler's certificate [the host]"
    )


def _probe(args: argparse.Namespace) -> int:
    from scaler.tools.probe import probe

    return probe(
        args.address, service=args.service, timeout=args.timeout, ca=args.tls_ca_file,
        cert=args.tls_cert_file, key=args.tls_key_file, server_name=args.tls_server_name,
    )  # fmt: skip


def _explain(args: argparse.Namespace) -> int:
    from scaler.keda.manifest import ManifestError
    from scaler.tools import explain as ex

    if args.from_cluster or args.watch:
        return _explain_cluster(args)
    if not args.manifest:
        print("keda-queue-scaler explain: give a manifest file or --from-cluster "
              "NAMESPACE/NAME", file=sys.stderr)  # fmt: skip
        return 2
    if args.running < 0 or not 0 <= args.pending <= args.running:
        print("keda-queue-scaler explain: need 0 <= --pending <= --running", file=sys.stderr)
        return 2
    if args.replicas is not None and args.replicas < 0:
        print("keda-queue-scaler explain: --replicas must be 0 or more", file=sys.stderr)
        return 2
    try:
        env = _explain_env(args)
        jobs, scaled = ex.load_manifests(Path(args.manifest), env)
    except ManifestError as exc:
        print(f"keda-queue-scaler explain: {exc}", file=sys.stderr)
        return 2
    unresolved = [*(u for j in jobs for u in j.unresolved),
                  *(u for so, _ in scaled for u in so.unresolved)]  # fmt: skip
    for missing in unresolved:
        print(f"keda-queue-scaler explain: warning: {missing}", file=sys.stderr)

    async def run() -> int:
        from scaler.tools import explain_object as eo
        from scaler.tools.client import dump_json

        caller = _caller(args)
        try:
            results = await ex.explain(
                jobs, running=args.running, pending=args.pending, address=args.address,
                caller=caller,
            )  # fmt: skip
            objects = await eo.explain_objects(
                scaled, replicas=args.replicas, address=args.address, caller=caller
            )
        except ManifestError as exc:
            print(f"keda-queue-scaler explain: {exc}", file=sys.stderr)
            return 2
        finally:
            await caller.close()
        if args.output == "json":
            reports = [*map(ex.job_json, results), *map(eo.to_json, objects)]
            sys.stdout.write(dump_json(reports))
        else:
            parts = []
            if results:
                parts.append(ex.render_text(results, color=ex.wants_color()))
            if objects:
                parts.append(eo.render_text(objects))
            sys.stdout.write("\n".join(parts))
        served = [p for _, polled, _ in [*results, *objects] for p in polled if p.served]
        return 1 if served and all(ex.failed(p) for p in served) else 0

    return asyncio.run(run())


def _explain_env(args: argparse.Namespace) -> dict[str, str]:
    """--address checked; the --env-file values with --env over them."""
    from scaler.tools import explain as ex
    from scaler.tools.client import check_address

    if args.address:
        check_address(args.address)
    env = ex.parse_env(args.env)
    if args.env_file:
        env = {**ex.read_env_file(args.env_file), **env}
    return env


def _caller(args: argparse.Namespace) -> Caller:
    from scaler.tools.client import Caller, channel_options, credentials

    return Caller(
        timeout=args.timeout,
        credentials=credentials(args.tls_ca_file, args.tls_cert_file, args.tls_key_file),
        options=channel_options(args.tls_server_name),
    )


def _explain_cluster(args: argparse.Namespace) -> int:
    """explain --from-cluster [--watch]: the ScaledJob, its env and its Jobs (or the
    ScaledObject, its scale target's env and replicas) from the cluster, then the same
    calls and arithmetic as for a manifest, poll by poll."""
    import datetime

    from scaler.keda.manifest import ManifestError
    from scaler.kube import cluster
    from scaler.tools import explain as ex

    def fail(message: str) -> int:
        print(f"keda-queue-scaler explain: {message}", file=sys.stderr)
        return 2

    if not args.from_cluster:
        return fail("--watch follows a ScaledJob in a cluster: add --from-cluster NAMESPACE/NAME")
    if args.manifest:
        return fail("give a manifest file or --from-cluster, not both")
    if args.running or args.pending or args.replicas is not None:
        return fail("--running, --pending and --replicas are read from the cluster with "
                    "--from-cluster")  # fmt: skip
    try:
        namespace, name = cluster.parse_ref(args.from_cluster)
        env = _explain_env(args)
        api = cluster.api_client(args.kubeconfig, args.context)
    except (cluster.ClusterError, ManifestError) as exc:
        return fail(str(exc))

    async def poll(kind: str, caller: Caller) -> tuple[list[str], str, bool, float]:
        """One look and one report: (warnings, the report, all served failed, interval)."""
        from scaler.tools import explain_object as eo

        if kind == "ScaledObject":
            osnap = await asyncio.to_thread(cluster.snapshot_object, api, namespace, name, env=env)
            scaled = osnap.scaled
            objects = await eo.explain_objects(
                [(scaled, osnap.replicas)], replicas=None, address=args.address, caller=caller
            )
            warnings = [*osnap.warnings, *map(str, scaled.unresolved)]
            report = (eo.render_json(objects, indent=None if args.watch else 2)
                      if args.output == "json" else eo.render_text(objects))  # fmt: skip
            served = [p for _, polled, _ in objects for p in polled if p.served]
            interval = scaled.polling_interval
        else:
            snap = await asyncio.to_thread(cluster.snapshot, api, namespace, name, env=env)
            results = await ex.explain(
                [snap.job], running=snap.running, pending=snap.pending,
                address=args.address, caller=caller,
            )  # fmt: skip
            warnings = [*snap.warnings, *map(str, snap.job.unresolved)]
            report = (ex.render_json(results, indent=None if args.watch else 2)
                      if args.output == "json"
                      else ex.render_text(results, color=ex.wants_color()))  # fmt: skip
            served = [p for _, polled, _ in results for p in polled if p.served]
            interval = snap.job.polling_interval
        return warnings, report, bool(served) and all(ex.failed(p) for p in served), interval

    async def run() -> int:
        caller = _caller(args)
        polls = 0
        warned: set[str] = set()
        try:
            kind = args.kind or await asyncio.to_thread(cluster.kind_of, api, namespace, name)
            while True:
                try:
                    warnings, report, all_failed, interval = await poll(kind, caller)
                except (cluster.ClusterError, ManifestError) as exc:
                    return fail(str(exc))
                for warning in warnings:
                    if warning not in warned:
                        warned.add(warning)
                        print(f"keda-queue-scaler explain: warning: {warning}", file=sys.stderr)
                polls += 1
                now = datetime.datetime.now(datetime.UTC).strftime("%H:%M:%S")
                if args.watch and args.output != "json":
                    sys.stdout.write(f"--- poll {polls} at {now} UTC ---\n")
                sys.stdout.write(report)
                sys.stdout.flush()
                if not args.watch or (args.polls and polls >= args.polls):
                    return 1 if all_failed else 0
                await asyncio.sleep(args.interval or interval)
        except cluster.ClusterError as exc:
            return fail(str(exc))
        finally:
            await caller.close()

    try:
        return asyncio.run(run())
    except KeyboardInterrupt:
        return 130


def _demo_real_keda(args: argparse.Namespace) -> int:
    """Run the checkout's end-to-end fixture (tests/e2e/realdemo.py): it needs the
    repository and Go, which build Kubernetes and KEDA from their modules."""
    import os
    import subprocess

    root = Path(__file__).resolve().parents[1]
    if not (root / "tests" / "e2e" / "realdemo.py").is_file():
        print("keda-queue-scaler demo: --real-keda runs from a source checkout (it builds "
              "Kubernetes and KEDA from their Go modules): clone the repository and run "
              "`make demo-real-keda`", file=sys.stderr)  # fmt: skip
        return 2
    argv = [sys.executable, "-m", "tests.e2e.realdemo", "--items", str(args.items),
            "--work-seconds", str(args.work_seconds), "--timeout", str(args.timeout)]  # fmt: skip
    if args.strategy != "custom":
        argv += ["--strategy", args.strategy]
    env = {**os.environ, "PYTHONPATH": str(root)}
    try:
        return subprocess.run(argv, cwd=root, env=env, check=False).returncode  # noqa: S603 (our own argv)
    except KeyboardInterrupt:
        return 130


def _demo(args: argparse.Namespace) -> int:
    from scaler.tools.demo import options_from_args, run_demo

    if args.real_keda:
        return _demo_real_keda(args)

    if args.items < 1 or args.max_replicas < 1 or args.polling_interval <= 0:
        print("keda-queue-scaler demo: --items, --max-replicas and --polling-interval must "
              "be positive", file=sys.stderr)  # fmt: skip
        return 2
    logging.basicConfig(level="WARNING", format="%(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(run_demo(options_from_args(args)))
    except ValueError as exc:
        print(f"keda-queue-scaler demo: {exc}", file=sys.stderr)
        return 2


def _worker_meta(args: argparse.Namespace) -> dict[str, str]:
    """--meta-file's keys with --meta's over them (MetadataError for a bad one)."""
    from scaler.worker import config

    meta = config.read_meta_file(args.meta_file) if args.meta_file else {}
    meta.update(config.parse_pairs(args.meta))
    return meta


def _work(args: argparse.Namespace) -> int:
    import os

    from scaler.worker import Exit, Options, open_source, work
    from scaler.worker.run import configure_logging

    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    problem = ""
    if not cmd:
        problem = "give the command to run after --, e.g. work --meta ... -- ./process"
    elif args.lease <= 0 or args.grace < 0 or args.wait < 0 or args.timeout <= 0:
        problem = "--lease and --timeout must be greater than 0, --grace and --wait 0 or more"
    elif args.max_attempts < 1 or (args.max_items is not None and args.max_items < 1):
        problem = "--max-attempts and --max-items must be 1 or more"
    if problem:
        print(f"keda-queue-scaler work: {problem}", file=sys.stderr)
        return int(Exit.USAGE)
    configure_logging(args.log_level.upper())
    options = Options(
        cmd=cmd, lease=args.lease, max_attempts=args.max_attempts, grace=args.grace,
        max_items=args.max_items or 1, until_empty=args.until_empty, wait=args.wait,
    )  # fmt: skip

    async def run() -> int:
        source = open_source(_worker_meta(args), environ=os.environ, lease=args.lease,
                             timeout=args.timeout, dead_letter=args.dead_letter)  # fmt: skip
        return int(await work(source, options))

    return _queue_command("work", run())


def _enqueue(args: argparse.Namespace) -> int:
    import os

    from scaler.worker import open_source

    async def run(stream: BinaryIO) -> int:
        source = open_source(_worker_meta(args), environ=os.environ, lease=60.0,
                             timeout=args.timeout)  # fmt: skip
        count = 0
        try:
            items = [stream.read()] if args.whole else (line.rstrip(b"\r\n") for line in stream)
            for payload in items:
                if not payload and not args.whole:
                    continue
                print(await source.put(payload), flush=True)
                count += 1
                if count % 1000 == 0:
                    print(f"keda-queue-scaler enqueue: {count} items", file=sys.stderr)
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()
            await source.aclose()
        print(f"keda-queue-scaler enqueue: {count} item(s) added to {source.where}",
              file=sys.stderr)  # fmt: skip
        return 0

    try:
        stream = sys.stdin.buffer if args.file in ("", "-") else open(args.file, "rb")  # noqa: SIM115
    except OSError as exc:
        print(f"keda-queue-scaler enqueue: {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return _queue_command("enqueue", run(stream))


def _queue_command(name: str, run: Coroutine[None, None, int]) -> int:
    """``work`` or ``enqueue`` run to its exit code: bad metadata is a usage error (2),
    a broker that fails is 69 (EX_UNAVAILABLE), each said in one line."""
    from scaler.errors import MetadataError, ScalerError
    from scaler.worker import Exit

    try:
        return asyncio.run(run)
    except ScalerError as exc:
        print(f"keda-queue-scaler {name}: {exc.message}", file=sys.stderr)
        return int(Exit.USAGE if isinstance(exc, MetadataError) else Exit.BROKER)


def _add_meta(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--meta", action="append", default=[], metavar="KEY=VALUE",
        help="a trigger metadata key, as in the ScaledJob (repeatable); <key>FromEnv names a "
        "variable of this container's environment; keep credentials in those",
    )  # fmt: skip
    parser.add_argument(
        "--meta-file", metavar="PATH",
        help="a YAML map of metadata keys (or a whole trigger); --meta wins",
    )  # fmt: skip
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds each broker call may take [10]")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keda-queue-scaler",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve",
        help="run the gRPC external scaler",
        description="Run the gRPC external scaler. Every flag can also be set with the "
        f"environment variable shown; flags win over {settings_mod.ENV_PREFIX}* variables.",
    )
    settings_mod.add_arguments(serve)
    serve.set_defaults(func=_serve)

    probe = sub.add_parser(
        "probe",
        help="check a running scaler's grpc.health.v1 status (exit 0 when SERVING)",
        description="Call grpc.health.v1 Check, for container health checks: exit 0 when "
        "SERVING, 1 otherwise.",
    )
    probe.add_argument("--address", default="127.0.0.1:6000", help="host:port [127.0.0.1:6000]")
    probe.add_argument("--service", default="", help='service name to check ["" = server]')
    probe.add_argument("--timeout", type=float, default=3.0, help="seconds [3]")
    _add_client_tls(probe)
    probe.set_defaults(func=_probe)

    explain = sub.add_parser(
        "explain",
        help="call the scaler like KEDA for a ScaledJob (or ScaledObject) manifest and show "
        "the Jobs (or replicas) it would create",
        description="Read a ScaledJob manifest, call its external scaler(s) as KEDA v2.21 "
        "does (GetMetricSpec, then GetMetrics and IsActive for every spec, one retry after "
        "a failure) and print the metrics, targets, activity and the Jobs KEDA creates this "
        "poll with KEDA's own arithmetic, for the manifest's strategy and the others. "
        "For a ScaledObject (with its Deployment in the same file, or --replicas): KEDA's "
        "activation, the HPA's next sync and the count it settles at, and what the "
        "cooldown will do. "
        "Built-in triggers (type: redis, ...) are shown as evaluated by KEDA itself. "
        "...FromEnv keys are resolved from the Job container's env; values from Secrets or "
        "ConfigMaps come from --env or --env-file (a warning names each one missing). "
        "Exit 0 with a report, 1 when every served trigger failed, 2 for a bad manifest "
        "or arguments.",
    )
    explain.add_argument(
        "manifest",
        nargs="?",
        help="YAML file with ScaledJobs and/or ScaledObjects (or --from-cluster, ScaledJobs)",
    )
    explain.add_argument(
        "--from-cluster", metavar="NAMESPACE/NAME",
        help="read the ScaledJob, its Job template's Secrets and ConfigMaps and its Jobs "
        "from the cluster (kubeconfig as kubectl finds it; your own permissions), and count "
        "running and pending Jobs as KEDA does; or the ScaledObject, its Deployment's or "
        "StatefulSet's env and replicas",
    )  # fmt: skip
    explain.add_argument(
        "--kind", choices=("ScaledJob", "ScaledObject"),
        help="with --from-cluster: which one NAME is [a ScaledJob if there is one, else a "
        "ScaledObject]",
    )  # fmt: skip
    explain.add_argument("--kubeconfig", help="kubeconfig file [KUBECONFIG, ~/.kube/config]")
    explain.add_argument("--context", help="kubeconfig context [the current one]")
    explain.add_argument(
        "--watch", action="store_true",
        help="with --from-cluster: repeat every pollingInterval, one report per poll "
        "(JSON: one line per poll); Ctrl-C stops",
    )  # fmt: skip
    explain.add_argument(
        "--polls", type=int, default=0, help="with --watch: stop after this many polls [0: never]"
    )
    explain.add_argument(
        "--interval", type=float, default=0.0,
        help="with --watch: seconds between polls [the ScaledJob's pollingInterval]",
    )  # fmt: skip
    explain.add_argument("--running", type=int, default=0, help="unfinished Jobs now [0]")
    explain.add_argument("--pending", type=int, default=0, help="of those, not yet running [0]")
    explain.add_argument(
        "--replicas", type=int, default=None,
        help="a ScaledObject's scale target's replicas now [its spec.replicas in the file]",
    )  # fmt: skip
    explain.add_argument(
        "--address", help="call this host:port (no scheme) instead of each trigger's scalerAddress"
    )
    explain.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE",
        help="a container env value for ...FromEnv keys (repeatable; visible in ps: "
        "prefer --env-file for secrets)",
    )  # fmt: skip
    explain.add_argument(
        "--env-file", metavar="FILE",
        help="NAME=VALUE lines for ...FromEnv keys ('-' reads stdin); --env wins",
    )  # fmt: skip
    explain.add_argument("--output", choices=("text", "json"), default="text", help="[text]")
    explain.add_argument("--timeout", type=float, default=10.0, help="seconds per call [10]")
    _add_client_tls(explain)
    explain.set_defaults(func=_explain)

    demo = sub.add_parser(
        "demo",
        help="see it work: local Redis, the scaler and a KEDA loop turning a burst into Jobs",
        description="Start a local redis-server (or the in-memory queue when none is "
        "installed), the scaler, and a model of KEDA's ScaledJob loop; push a burst of work "
        "and run each Job KEDA would create as a local worker process that takes one item. "
        "Shows every poll until the queue is drained. Ctrl-C stops everything it started.",
    )
    demo.add_argument("--items", type=int, default=20, help="work items to push [20]")
    demo.add_argument(
        "--polling-interval", type=float, default=1.0, help="seconds between KEDA polls [1]"
    )
    demo.add_argument("--max-replicas", type=int, default=5, help="maxReplicaCount [5]")
    demo.add_argument(
        "--strategy", default="accurate", choices=("default", "custom", "accurate", "eager"),
        help="scalingStrategy [accurate: a worker pops its item, so the list excludes "
        "items in progress]",
    )  # fmt: skip
    demo.add_argument("--work-seconds", type=float, default=2.0, help="work per item [2]")
    demo.add_argument(
        "--inflow", type=float, default=0.0, metavar="PER_SECOND",
        help="items arrive steadily at this rate instead of all at once [0: a burst]; with "
        "--strategy default the queue settles higher than with accurate, because default "
        "subtracts running Jobs whose items already left the list",
    )  # fmt: skip
    demo.add_argument(
        "--simulate", action="store_true",
        help="a simulated clock: the real scaler and KEDA's arithmetic, Jobs modelled (each "
        "takes its item --start-delay seconds after it is created), so the same options give "
        "the same numbers on any machine, at once",
    )  # fmt: skip
    demo.add_argument(
        "--start-delay", type=float, default=1.0, metavar="SECONDS",
        help="with --simulate: seconds from a Job's creation to its Pod taking an item [1]",
    )  # fmt: skip
    demo.add_argument(
        "--backend", choices=("auto", "redis", "memory"), default="auto",
        help="queue backend [auto: redis when redis-server is installed]",
    )  # fmt: skip
    demo.add_argument(
        "--queue-format", default="list", choices=("list", "celery", "rq", "arq", "dramatiq",
                                                   "huey", "bullmq", "sidekiq"),
        help="list [default], or a task framework: its own library enqueues the items and "
        "each Job runs its own worker in burst mode (rq, arq, bullmq; the others have no "
        "mode that ends a Job); make demo-framework F=rq",
    )  # fmt: skip
    demo.add_argument(
        "--framework-python", default="", metavar="PYTHON",
        help="a Python with RQ or arq installed [this one]",
    )  # fmt: skip
    demo.add_argument(
        "--node-modules", default="", metavar="DIR",
        help="where Node finds bullmq [NODE_PATH]",
    )  # fmt: skip
    demo.add_argument(
        "--worker", choices=("pop", "work"), default="pop",
        help="how each Job takes its item from the Redis list: pop [a toy LPOP], or work: "
        "keda-queue-scaler work (claim under a lease, run a command, acknowledge; "
        "docs/worker.md)",
    )  # fmt: skip
    demo.add_argument("--plain", action="store_true", help="one line per poll, no redraw")
    demo.add_argument(
        "--real-keda", action="store_true",
        help="use the real KEDA operator on a local Kubernetes API server instead of the "
        "model (a source checkout with Go: builds them once; make demo-real-keda)",
    )  # fmt: skip
    demo.add_argument("--timeout", type=float, default=300.0, help="give up after [300] s")
    demo.set_defaults(func=_demo)

    work = sub.add_parser(
        "work",
        usage="%(prog)s [--meta KEY=VALUE]... [--meta-file PATH] [--lease SECONDS] "
        "[--max-attempts N] [--grace SECONDS] [--until-empty | --max-items N] -- CMD ARGS...",
        help="a Job's command: claim an item, run CMD on it, acknowledge it (docs/worker.md)",
        description="Claim one item from the queue the trigger metadata names, run CMD with "
        "the item on stdin and in $KQS_ITEM_FILE ($KQS_ITEM_ID, $KQS_ATTEMPT, "
        "$KQS_MAX_ATTEMPTS, $KQS_ENQUEUED_AT beside it), keep the claim alive while CMD runs, "
        "and acknowledge the item when CMD exits 0. A failed item is retried up to "
        "--max-attempts, then dead-lettered. SIGTERM is passed to CMD; after --grace the item "
        "is released at once. Exit codes: 0 done, 2 usage, 3 queue empty, 4 dead-lettered, "
        "5 failed (back on the queue), 69 broker unavailable, 143 terminated.",
    )
    _add_meta(work)
    work.add_argument("--lease", type=float, default=300.0,
                      help="seconds a claim lasts without a heartbeat; renewed every third "
                      "[300]")  # fmt: skip
    work.add_argument("--max-attempts", type=int, default=3,
                      help="claims of one item before it is dead-lettered [3]")  # fmt: skip
    work.add_argument("--grace", type=float, default=25.0,
                      help="seconds CMD has after SIGTERM (keep under the Pod's "
                      "terminationGracePeriodSeconds) [25]")  # fmt: skip
    many = work.add_mutually_exclusive_group()
    many.add_argument("--until-empty", action="store_true",
                      help="work items until the queue is empty")  # fmt: skip
    many.add_argument("--max-items", type=int, default=None, metavar="N",
                      help="work up to N items [1]")  # fmt: skip
    work.add_argument("--wait", type=float, default=10.0,
                      help="seconds the first claim waits for an item [10]")  # fmt: skip
    work.add_argument("--dead-letter", default="", metavar="NAME",
                      help="where failed items go: a Redis list or stream [<name>:dead], an SQS "
                      "queue name or URL [the redrive policy's], a RabbitMQ exchange [the "
                      "queue's dead-letter exchange, by reject]")  # fmt: skip
    work.add_argument("--log-level", default="info", choices=("debug", "info", "warning"),
                      help="[info]")  # fmt: skip
    work.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD ARGS...: the item's command")
    work.set_defaults(func=_work)

    enqueue = sub.add_parser(
        "enqueue",
        help="add items to a queue with an id and their enqueue time, for `work`",
        description="Add each line of FILE (or stdin) as one item to the queue the trigger "
        "metadata names, with an id and its enqueue time (which `work` and the age measure "
        "read); print each item's id. `work` hands CMD the payload only.",
    )
    _add_meta(enqueue)
    enqueue.add_argument("file", nargs="?", default="-", metavar="FILE|-", help="[-: stdin]")
    enqueue.add_argument("--whole", action="store_true",
                         help="the whole input is one item (not one per line)")  # fmt: skip
    enqueue.set_defaults(func=_enqueue)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(args.func(args))
