"""`kiosk`: submit images to any kiosk and download the results, or benchmark a kiosk.

    kiosk submit images/ more.tif batch.zip --output results/
    kiosk benchmark cells.tif --jobs 500 --concurrency 50 --report bench.json
    kiosk models
    kiosk ops status | ops logs tf-serving --since 10m | ops acceptance --images 50

The kiosk's URL comes from --url or KIOSK_URL, a token from --token or KIOSK_AUTH_TOKEN.
Exit status: 0 when every job is done, 1 when any failed, 2 when nothing could run.
"""

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

from tqdm import tqdm

from frontend.client.api import KioskClient, KioskError
from frontend.client.report import summarize
from frontend.client.runner import JobOptions, JobRun, Runner, collect_inputs
from frontend.ops.commands import add_commands as add_ops_commands

OK, FAILED, UNUSABLE = 0, 1, 2
MAX_CONNECTIONS = 64  # enough to keep a kiosk busy; thousands of jobs share them


def _model(text: str) -> tuple[str, str | None]:
    name, _, version = text.partition(":")
    if not name or (version and not version.isdigit()):
        raise argparse.ArgumentTypeError("use Name or Name:version, e.g. NuclearSegmentation:1")
    return name, version or None


def _options(args: argparse.Namespace) -> JobOptions:
    name, version = args.model or (None, None)
    return JobOptions(job_type=args.job_type, model_name=name, model_version=version, scale=args.scale,
                      image_mpp=args.image_mpp,
                      poll_seconds=args.poll, expire_seconds=args.expire,
                      preprocess=args.preprocess, postprocess=args.postprocess)


def _progress(total: int, quiet: bool) -> tqdm:
    return tqdm(total=total, unit="job", desc="jobs", file=sys.stderr, disable=True if quiet else None,
                dynamic_ncols=True)


def _counter(progress: tqdm):
    counts = {"done": 0, "failed": 0}

    def finished(run: JobRun) -> None:
        counts["done" if run.succeeded else "failed"] += 1
        progress.set_postfix(counts, refresh=False)
        progress.update()
    return finished


def _found(fields: dict) -> str:
    """' (N nuclei, ~D px across, scale S estimated)' from a finished job's fields, or ''."""
    parts = [f"{fields['nuclei']} nuclei"] if fields.get("nuclei") else []
    if fields.get("estimated_diameter"):
        parts.append(f"~{fields['estimated_diameter']} px across")
    if fields.get("scale_used"):
        parts.append(f"scale {fields['scale_used']} ({fields.get('scale_source') or 'given'})")
    return f" ({', '.join(parts)})" if parts else ""


async def submit(args: argparse.Namespace) -> int:
    """Upload each file, create its job, wait for it and download its result."""
    try:
        sources = collect_inputs(args.paths)
    except FileNotFoundError as missing:
        print(f"kiosk: {missing}", file=sys.stderr)
        return UNUSABLE
    if not sources:
        print("kiosk: no TIFF, PNG, JPEG or ZIP files found", file=sys.stderr)
        return UNUSABLE
    async with KioskClient(args.url, args.token, connections=min(MAX_CONNECTIONS, 2 * args.concurrency)) as client:
        await client.connect()
        progress = _progress(len(sources), args.quiet)
        runner = Runner(client, _options(args), args.concurrency, download_to=args.output,
                        on_finished=_counter(progress))
        runs = await runner.run(sources)
        progress.close()
    for run in runs:
        if run.succeeded:
            print(f"done    {run.source} -> {run.result or run.fields.get('output_url')}{_found(run.fields)}")
        else:
            kept = f" (the others: {run.result})" if run.result else ""
            print(f"FAILED  {run.source}: {run.problem}{kept}")
    failed = sum(not run.succeeded for run in runs)
    print(f"{len(runs)} job(s): {len(runs) - failed} done, {failed} failed")
    return FAILED if failed else OK


async def benchmark(args: argparse.Namespace) -> int:
    """Upload one file once, run it as N jobs, report throughput and latency."""
    if not args.file.is_file():
        print(f"kiosk: no such file: {args.file}", file=sys.stderr)
        return UNUSABLE
    options = _options(args)
    async with KioskClient(args.url, args.token, connections=min(MAX_CONNECTIONS, 2 * args.concurrency)) as client:
        await client.connect()
        uploaded = await client.upload(args.file)
        progress = _progress(args.jobs, args.quiet)
        runner = Runner(client, options, args.concurrency, download_to=args.output,
                        on_finished=_counter(progress))
        started = time.monotonic()
        runs = await runner.run([args.file] * args.jobs, uploaded_name=uploaded)
        elapsed = time.monotonic() - started
        progress.close()
    model = f"{options.model_name or ''}:{options.model_version or ''}"
    report = summarize(runs, elapsed, args.concurrency, model, options.preprocess, options.postprocess)
    path = args.report or Path(f"kiosk-benchmark-{args.jobs}jobs-{time.strftime('%Y%m%dT%H%M%S')}.json")
    path.write_text(json.dumps(report, indent=2))
    latency = report["latency_seconds"]
    print(f"{report['num_jobs']} jobs, concurrency {args.concurrency}: {elapsed:.1f} s, "
          f"{report['images_per_second'] or 0:.2f} images/s, {report['failures']} failed")
    if latency["p50"] is not None:
        print(f"latency p50 {latency['p50']:.2f} s, p95 {latency['p95']:.2f} s, p99 {latency['p99']:.2f} s")
    print(f"per-job timings: {path}")
    return FAILED if report["failures"] else OK


async def models(args: argparse.Namespace) -> int:
    """List the kiosk's models and versions."""
    async with KioskClient(args.url, args.token) as client:
        await client.connect()
        for name, versions in (await client.models()).items():
            print(f"{name}: {', '.join(versions)}")
    return OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiosk", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("KIOSK_URL", "http://127.0.0.1:8080"),
                        help="the kiosk (a scheme is optional; default: $KIOSK_URL or %(default)s)")
    parser.add_argument("--token", default=os.environ.get("KIOSK_AUTH_TOKEN") or None,
                        help="bearer token of a protected kiosk (default: $KIOSK_AUTH_TOKEN)")
    commands = parser.add_subparsers(dest="command", required=True)

    def job_options(command: argparse.ArgumentParser) -> None:
        command.add_argument("--job-type", default="segmentation")
        command.add_argument("--model", type=_model, help="Name or Name:version (default: the kiosk's)")
        command.add_argument("--scale", type=float,
                             help="the images' scale (default: from --image-mpp, else the TIFF's pixel size, "
                                  "else estimated from the nuclei)")
        command.add_argument("--image-mpp", type=float, help="the images' pixel size in µm (sets the scale)")
        command.add_argument("--preprocess", default="", help="pre-processing function name (default: none)")
        command.add_argument("--postprocess", default="", help="post-processing function name (default: none)")
        command.add_argument("--concurrency", type=int, default=8, help="jobs in flight (default 8)")
        command.add_argument("--poll", type=float, default=2.0, help="seconds between status checks")
        command.add_argument("--expire", type=int, default=3600, help="seconds finished jobs are kept")
        command.add_argument("--quiet", action="store_true", help="no progress bar")

    run = commands.add_parser("submit", help="process files, folders or zips and download the results")
    run.add_argument("paths", nargs="+", type=Path)
    run.add_argument("--output", type=Path, default=Path("results"), help="results folder (default ./results)")
    job_options(run)
    run.set_defaults(handler=submit)

    bench = commands.add_parser("benchmark", help="run one file as many jobs and measure the kiosk")
    bench.add_argument("file", type=Path)
    bench.add_argument("--jobs", type=int, default=100, help="how many jobs (default 100)")
    bench.add_argument("--report", type=Path, help="JSON file of per-job timings")
    bench.add_argument("--output", type=Path, help="also download every result here")
    job_options(bench)
    bench.set_defaults(handler=benchmark)

    listing = commands.add_parser("models", help="list the kiosk's models")
    listing.set_defaults(handler=models)
    add_ops_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "concurrency", 1) < 1 or getattr(args, "jobs", 1) < 1:
        print("kiosk: --concurrency and --jobs must be at least 1", file=sys.stderr)
        return UNUSABLE
    try:
        return asyncio.run(args.handler(args))
    except KioskError as error:
        print(f"kiosk: {error}", file=sys.stderr)
        return UNUSABLE
    except KeyboardInterrupt:
        return 130
