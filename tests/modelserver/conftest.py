"""Model server fixtures, until tests/conftest.py registers tests.fixtures.model_server."""

from tests.fixtures.model_server import model_server, tiny_model_repository  # noqa: F401
