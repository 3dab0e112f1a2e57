"""API load benchmark: job submissions/s and latency from concurrent clients on loopback.

Starts a real redis-server and one `python -m frontend` process (uvicorn, default
settings: JSON access logs, metrics, validation of the upload and the model), then
keeps `--concurrency` keep-alive connections busy with `POST /api/predict` from
`--clients` load processes, and reports throughput and latency percentiles. The
same is measured for the status polls and field reads that benchmark clients make.
Goal: ≥ 1,000 submissions/s per API process with p99 < 100 ms.

For scale, `--floor` also measures the floor of the stack: a bare FastAPI route on the
same uvicorn that parses the same body and makes the same Redis call (no checks,
no middleware, no logs), so the figures show what the kiosk's own work costs.

Run: `python -m benchmarks.api_load [--requests 20000] [--concurrency 32] [--clients 1] [--floor]`.
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import redis

from consumers.jobs import JobRequest, new_job_key
from local_kiosk.readiness import free_port, wait_until
from tests.fixtures.servers import RedisServer  # the same real-server harness as the tests

PROJECT_ROOT = Path(__file__).parents[1]


def request_bytes(method: str, path: str, body: dict) -> bytes:
    payload = json.dumps(body).encode()
    head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n")
    return head.encode() + payload


async def _connection(port: int, requests: list[bytes], latencies: list[float], errors: list[int]) -> None:
    """One keep-alive HTTP/1.1 connection sending its requests one after another."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for request in requests:
        started = time.perf_counter()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - started)
        if not head.startswith(b"HTTP/1.1 200"):
            errors.append(int(head[9:12]))
    writer.close()


def _client(args: tuple[int, list[bytes], int]) -> tuple[list[float], list[int], float, float]:
    """A load process: `connections` connections share `requests`; returns latencies, errors,
    elapsed seconds and the CPU seconds the load process itself used (it shares the cores)."""
    port, requests, connections = args
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    latencies: list[float] = []
    errors: list[int] = []

    async def run() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(_connection(port, requests[i::connections], latencies, errors)
                               for i in range(connections)))
        return time.perf_counter() - started

    cpu = time.process_time()
    elapsed = asyncio.run(run())
    return latencies, errors, elapsed, time.process_time() - cpu


def load(port: int, requests: list[bytes], concurrency: int, clients: int) -> dict:
    """Send `requests` over `concurrency` connections spread across `clients` processes."""
    per_client = [requests[i::clients] for i in range(clients)]
    connections = [concurrency // clients + (i < concurrency % clients) for i in range(clients)]
    started = time.perf_counter()
    with multiprocessing.Pool(clients) as pool:
        results = pool.map(_client, [(port, part, n) for part, n in zip(per_client, connections)])
    elapsed = time.perf_counter() - started
    latencies = sorted(lat for result in results for lat in result[0])
    errors = [code for result in results for code in result[1]]
    rank = lambda share: latencies[min(len(latencies) - 1, int(share * len(latencies)))] * 1000
    return {"requests": len(latencies), "errors": len(errors), "per_second": len(latencies) / elapsed,
            "p50_ms": rank(0.50), "p95_ms": rank(0.95), "p99_ms": rank(0.99), "max_ms": latencies[-1] * 1000,
            "mean_ms": statistics.fmean(latencies) * 1000,
            "client_cpu_ms": sum(result[3] for result in results) * 1000 / max(1, len(latencies))}


def floor_app():
    """The stack's floor: FastAPI parses a predict body and queues a job with one Redis call."""
    import redis.asyncio as aredis
    from fastapi import FastAPI
    from pydantic import BaseModel

    from frontend.services.redis_async import AsyncJobQueue

    class Body(BaseModel):
        jobType: str
        imageName: str

    app = FastAPI()
    queue = AsyncJobQueue(aredis.Redis.from_url(os.environ["KIOSK_REDIS_URL"], decode_responses=True),
                          "segmentation")

    @app.post("/api/predict")
    async def predict(body: Body) -> dict:
        key = new_job_key(body.jobType)
        request = JobRequest(job_type=body.jobType, input_file_name=f"uploads/{body.imageName}",
                             original_name=body.imageName, model_name="NuclearSegmentation")
        await queue.submit(key, {**request.to_fields(), "status": "new"})
        return {"hash": key}

    return app


def measure_floor(redis_url: str, predict: bytes, args: argparse.Namespace) -> tuple[dict, float]:
    """Submissions/s and CPU per submission of `floor_app` under the same load."""
    port = free_port()
    floor = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "benchmarks.api_load:floor_app",
                              "--port", str(port), "--no-access-log", "--log-level", "warning"],
                             cwd=PROJECT_ROOT, env={**os.environ, "KIOSK_REDIS_URL": redis_url})
    try:
        wait_until(lambda: _answers(port), 30, "the floor app")
        load(port, [predict] * args.warmup, args.concurrency, args.clients)
        before = cpu_seconds(floor.pid)
        figures = load(port, [predict] * args.requests, args.concurrency, args.clients)
        return figures, (cpu_seconds(floor.pid) - before) * 1000 / args.requests
    finally:
        floor.terminate()
        floor.wait(30)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000, help="submissions measured")
    parser.add_argument("--warmup", type=int, default=2_000, help="submissions before measuring")
    parser.add_argument("--concurrency", type=int, default=32, help="open connections")
    parser.add_argument("--clients", type=int, default=1, help="load-generating processes")
    parser.add_argument("--floor", action="store_true", help="also measure a bare FastAPI route")
    args = parser.parse_args()

    server = RedisServer()
    home = Path(tempfile.mkdtemp(prefix="kiosk-api-load-"))
    bucket = home / "bucket"
    (bucket / "models" / "NuclearSegmentation" / "1").mkdir(parents=True)
    (bucket / "models" / "NuclearSegmentation" / "1" / "saved_model.pb").write_bytes(b"x")
    (bucket / "uploads").mkdir()
    (bucket / "uploads" / "bench.tif").write_bytes(b"II*\x00" + bytes(1024))
    port = free_port()
    log = (home / "api.log").open("wb")
    api = subprocess.Popen([sys.executable, "-m", "frontend"], cwd=PROJECT_ROOT, stdout=log, stderr=log,
                           env={**os.environ, "KIOSK_REDIS_URL": server.url, "KIOSK_STORAGE_URL": str(bucket),
                                "KIOSK_PORT": str(port)})
    try:
        wait_until(lambda: _healthy(port), 30, "python -m frontend")
        predict = request_bytes("POST", "/api/predict", {"jobType": "segmentation", "imageName": "bench.tif"})
        load(port, [predict] * args.warmup, args.concurrency, args.clients)
        cpu_before = cpu_seconds(api.pid)
        submissions = load(port, [predict] * args.requests, args.concurrency, args.clients)
        api_cpu_ms = (cpu_seconds(api.pid) - cpu_before) * 1000 / args.requests
        jobs = redis.Redis.from_url(server.url).xlen("queue:segmentation")
        key = httpx.post(f"http://127.0.0.1:{port}/api/predict",
                         json={"jobType": "segmentation", "imageName": "bench.tif"}).json()["hash"]
        polls = load(port, [request_bytes("POST", "/api/status", {"hash": key})] * args.requests,
                     args.concurrency, args.clients)
        reads = load(port, [request_bytes("POST", "/api/redis", {"hash": key, "key": "output_url"})]
                     * args.requests, args.concurrency, args.clients)
        api.terminate()
        floor = measure_floor(server.url, predict, args) if args.floor else None
    finally:
        api.terminate()
        api.wait(30)
        log.close()
        server.stop()

    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; one API process; "
          f"{args.concurrency} connections from {args.clients} client process(es)")
    for name, figures in (("POST /api/predict", submissions), ("POST /api/status", polls),
                          ("POST /api/redis", reads)):
        print(f"{name:18} {figures['per_second']:7.0f} req/s  p50 {figures['p50_ms']:6.1f} ms  "
              f"p95 {figures['p95_ms']:6.1f} ms  p99 {figures['p99_ms']:6.1f} ms  "
              f"max {figures['max_ms']:6.1f} ms  errors {figures['errors']}")
    print(f"API CPU per submission: {api_cpu_ms:.2f} ms; load generator CPU per request: "
          f"{submissions['client_cpu_ms']:.2f} ms; jobs queued: {jobs} (expected {args.warmup + args.requests})")
    if floor is not None:
        figures, floor_cpu_ms = floor
        print(f"floor (bare FastAPI route, same Redis call): {figures['per_second']:.0f} req/s, "
              f"p99 {figures['p99_ms']:.1f} ms, {floor_cpu_ms:.2f} ms CPU per submission")


def _answers(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
    except httpx.TransportError:
        return False
    return True


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/api/health-check", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


if __name__ == "__main__":
    main()
