"""`python -m frontend`: serve the API and portal with uvicorn, using the `KIOSK_*` settings."""

import logging
import sys

import uvicorn
from pydantic import ValidationError

from frontend.core.config import get_settings
from frontend.core.logging import configure_logging
from frontend.main import create_app


def main() -> None:
    try:
        settings = get_settings()
    except ValidationError as invalid:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}"
                             for e in invalid.errors())
        sys.exit(f"frontend: invalid KIOSK_* settings: {problems}")
    configure_logging(settings.log_level)
    app = create_app(settings)
    # Connections past `max_connections` get 503; an idle kept-alive one closes after
    # `keep_alive_seconds`. Headers' read time is not bounded here: the proxy in front bounds it.
    config = uvicorn.Config(app, host=settings.host, port=settings.port, access_log=False,
                            log_config=None, proxy_headers=True, timeout_graceful_shutdown=10,
                            limit_concurrency=settings.max_connections,
                            timeout_keep_alive=settings.keep_alive_seconds)
    server = uvicorn.Server(config)
    logging.getLogger("frontend").info("portal at %s (API at %s/api)", settings.public_url,
                                       settings.public_url, extra={"url": settings.public_url})
    print(f"Kiosk portal: {settings.public_url}", flush=True)
    server.run()


if __name__ == "__main__":
    main()
