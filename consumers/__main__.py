"""`python -m consumers`: one consumer process serving one job type's queue."""

import logging
import os
import socket

from consumers.metrics import serve_metrics
from consumers.services import Services
from consumers.settings import get_consumer_settings
from consumers.worker import Worker


def main() -> None:
    logging.basicConfig(level=os.environ.get("KIOSK_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s")
    settings = get_consumer_settings()
    services = Services.from_settings(settings)
    worker = Worker(services, settings.consumer_id or f"{socket.gethostname()}-{os.getpid()}")
    worker.install_signal_handlers()
    serve_metrics(settings.metrics_port, services.queue)
    try:
        worker.run()
    finally:
        services.close()


if __name__ == "__main__":
    main()
