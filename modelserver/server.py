"""Build and run the gRPC server; stop cleanly on SIGTERM or SIGINT."""

import logging
import signal
import threading
from concurrent import futures
from pathlib import Path

import grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from modelserver.repository import ModelRepository
from modelserver.service import ModelServicer, PredictionServicer

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 512 * 1024 * 1024
SHUTDOWN_GRACE_SECONDS = 5.0


def create_server(repository: ModelRepository, *, host: str, port: int, max_batch_size: int,
                  workers: int) -> tuple[grpc.Server, int]:
    """A gRPC server (not started yet) serving `repository`, and the port it is bound to."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="predict"),
        options=[("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                 ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(repository, max_batch_size), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(repository), server)
    bound_port = server.add_insecure_port(f"{host}:{port}")
    return server, bound_port


def serve(model_repository: Path, *, host: str, port: int, max_batch_size: int, workers: int,
          poll_seconds: float) -> None:
    """Load the repository, serve it until SIGTERM/SIGINT, rescanning every `poll_seconds`."""
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())

    repository = ModelRepository(model_repository)
    repository.scan()
    # Bind only once the models are loaded: until then clients see UNAVAILABLE and retry.
    server, bound_port = create_server(repository, host=host, port=port,
                                       max_batch_size=max_batch_size, workers=workers)
    server.start()
    log.info("serving %d model version(s) from %s on %s:%d (max batch size %d, %d workers)",
             len(repository.all_models()), model_repository, host, bound_port, max_batch_size,
             workers)
    # The main thread polls the repository for new versions until asked to stop.
    while not stopping.wait(poll_seconds if poll_seconds > 0 else None):
        repository.scan()
    log.info("stopping: letting in-flight requests finish for up to %.0f s",
             SHUTDOWN_GRACE_SECONDS)
    server.stop(SHUTDOWN_GRACE_SECONDS).wait()
    log.info("stopped")
