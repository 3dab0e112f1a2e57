"""Model server fixtures, until tests/conftest.py registers tests.fixtures.model_server."""

from tests.fixtures.model_server import (model_server, nuclear_model_server,  # noqa: F401
                                         tiny_model_repository)
