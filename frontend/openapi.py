"""The OpenAPI document as this API answers: invalid input is a 400 `{"message"}`, not a 422."""

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from frontend.schemas import Message

_ERROR = {"description": "Invalid request",
          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Message"}}}}


def contract_openapi(app: FastAPI) -> dict:
    """Build (once) the document served at `/api/swagger.json`."""
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version, summary=app.summary,
                               description=app.description, routes=app.routes)
        for path in document["paths"].values():
            for operation in path.values():
                responses = operation["responses"]
                if responses.pop("422", None) is not None:
                    responses.setdefault("400", _ERROR)
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        schemas.setdefault("Message", Message.model_json_schema())
        app.openapi_schema = document
    return app.openapi_schema
