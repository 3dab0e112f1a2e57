"""Fuzz every operation of `/api/swagger.json` with schemathesis: no server errors, answers as documented."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (content_type_conformance, not_a_server_error,
                                 response_schema_conformance, status_code_conformance)

from frontend.core.config import FrontendSettings
from frontend.main import create_app

# The document the server serves (building the app connects to nothing).
schema = schemathesis.openapi.from_dict(create_app(FrontendSettings()).openapi())


@pytest.fixture
def fuzz_upload(bucket_dir):
    """An upload under the name schemathesis tries first, so predict also succeeds sometimes."""
    (bucket_dir / "uploads").mkdir()
    (bucket_dir / "uploads" / "string").write_bytes(b"II*\x00")


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, api, fuzz_upload):
    case.call_and_validate(base_url=api.url, checks=[
        not_a_server_error, status_code_conformance, content_type_conformance,
        response_schema_conformance])


def test_the_fuzzed_document_is_the_served_one(client):
    assert client.get("/api/swagger.json").json() == schema.raw_schema
