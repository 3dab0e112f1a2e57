"""The `kiosk ops` subcommands: argument parsing, reports and exit statuses.

The `kubernetes` client takes a second to import, so the other `kiosk` commands do without it:
each handler imports what it runs."""

import argparse
import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

OK, FAILED, UNUSABLE = 0, 1, 2


def _cluster(args: argparse.Namespace):
    from frontend.ops.cluster import connect

    return connect(args.kubeconfig, args.context, args.namespace)


def _write(report: dict, path: Path) -> None:
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"report: {path}")


def _fail(message: str) -> int:
    print(f"kiosk ops: {message}", file=sys.stderr)
    return UNUSABLE


async def show_status(args: argparse.Namespace) -> int:
    """Print the kiosk's status; non-zero when something is unhealthy."""
    from frontend.ops import logs, status
    from frontend.ops.cluster import API_ERRORS, ClusterError, describe

    try:
        report = status.collect(_cluster(args), timedelta(seconds=logs.parse_since(args.events_since)))
    except (ClusterError, ValueError) as error:
        return _fail(str(error))
    except API_ERRORS as error:
        return _fail(f"the cluster's API answered {describe(error)}")
    print(status.summary(report))
    if args.report:
        _write(report, args.report)
    return OK if report["healthy"] else FAILED


async def show_logs(args: argparse.Namespace) -> int:
    """Print a component's logs, all its pods interleaved by time."""
    from frontend.ops import logs
    from frontend.ops.cluster import API_ERRORS, ClusterError, describe

    try:
        lines = logs.interleaved(_cluster(args), args.component, logs.parse_since(args.since))
    except (ClusterError, ValueError, LookupError) as error:
        return _fail(str(error).strip("'\""))
    except API_ERRORS as error:
        return _fail(f"the cluster's API answered {describe(error)}")
    width = max((len(line.pod) for line in lines), default=0)
    for line in lines:
        print(logs.render(line, width))
    return OK


async def run_acceptance(args: argparse.Namespace) -> int:
    """Accept a deployed kiosk; non-zero when it misbehaves."""
    from frontend.ops import acceptance
    from frontend.ops.cluster import API_ERRORS, ClusterError, describe
    from frontend.ops.pricing import Prices

    if args.images < 1 or args.concurrency < 1:
        return _fail("--images and --concurrency must be at least 1")
    try:
        prices = Prices.load(args.prices)
        samples = acceptance.load_samples(args.samples) if args.samples else acceptance.load_samples()
        report = await acceptance.run(_cluster(args), args.url, args.token, images=args.images,
                                      concurrency=args.concurrency, prices=prices, samples=samples,
                                      rollout_timeout=args.rollout_timeout)
    except (ClusterError, ValueError, OSError, KeyError) as error:
        return _fail(str(error))
    except API_ERRORS as error:
        return _fail(f"the cluster's API answered {describe(error)}")
    print(acceptance.summary(report))
    _write(report, args.report or Path(f"kiosk-acceptance-{time.strftime('%Y%m%dT%H%M%S')}.json"))
    return OK if report["passed"] else FAILED


def add_commands(commands: argparse._SubParsersAction) -> None:
    """`kiosk ops status|logs|acceptance`, each with the cluster options."""
    ops = commands.add_parser("ops", help="operate a deployed kiosk through its cluster's API")
    actions = ops.add_subparsers(dest="action", required=True)

    def cluster_options(command: argparse.ArgumentParser) -> None:
        command.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
        command.add_argument("--context", help="kubeconfig context (default: its current one)")
        command.add_argument("--namespace", default=os.environ.get("KIOSK_NAMESPACE", "kiosk"),
                             help="the kiosk's namespace (default: $KIOSK_NAMESPACE or %(default)s)")

    show = actions.add_parser("status", help="nodes, pods, autoscaling, queues, warnings; exit 1 when unhealthy")
    show.add_argument("--events-since", default="1h", help="age of the Warning events shown (default 1h)")
    show.add_argument("--report", type=Path, help="also write the status as JSON here")
    cluster_options(show)
    show.set_defaults(handler=show_status)

    read = actions.add_parser("logs", help="a component's logs (all its pods, interleaved by time)")
    read.add_argument("component", help="frontend, redis, tf-serving, consumers or consumers-<jobType>")
    read.add_argument("--since", default="10m", help="how far back (90s, 10m, 2h; default 10m)")
    cluster_options(read)
    read.set_defaults(handler=show_logs)

    accept = actions.add_parser("acceptance", help="after a deploy: rollouts, first result, throughput, "
                                "correctness and cost; exit 1 when the kiosk misbehaves")
    accept.add_argument("--images", type=int, default=20, help="images of the throughput run (default 20)")
    accept.add_argument("--concurrency", type=int, default=4, help="jobs in flight (default 4)")
    accept.add_argument("--samples", type=Path, help="folder with samples.json (default: the shipped samples)")
    accept.add_argument("--prices", type=Path, help="price file (default: $KIOSK_PRICES or the shipped prices.json)")
    accept.add_argument("--rollout-timeout", type=float, default=600, help="seconds to wait for rollouts (600)")
    accept.add_argument("--report", type=Path, help="JSON report (default kiosk-acceptance-<time>.json)")
    cluster_options(accept)
    accept.set_defaults(handler=run_acceptance)
