"""The OpenAPI 3.1 document and the local documentation pages.

The document is built from the same ``Operation`` declarations (and pydantic
models) the handlers run with. Swagger UI and ReDoc are served from files on
disk, so the pages work on a home server with no internet.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

from transcriptarr import __version__
from transcriptarr.http.api import OPERATIONS_KEY, Operation, json_response
from transcriptarr.models import ErrorBody

_PATH_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")
_REF_TEMPLATE = "#/components/schemas/{model}"

DOCS_STATIC_PREFIX = "/docs/static"


def build_document(operations: list[Operation]) -> dict[str, Any]:
    """The OpenAPI document of ``operations``."""
    models = _models_of(operations)
    _, schema = models_json_schema(
        [(model, "validation") for model in models], ref_template=_REF_TEMPLATE
    )
    components = dict(schema.get("$defs", {}))
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        path = _PATH_PARAM.sub(r"{\1}", op.path)
        paths.setdefault(path, {})[op.method.lower()] = _operation(op, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Transcriptarr API",
            "version": __version__,
            "description": "Subtitles for a media library, written by Whisper.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
                "ApiKeyQuery": {"type": "apiKey", "in": "query", "name": "apikey"},
            },
        },
        "security": [{"ApiKeyHeader": []}, {"ApiKeyQuery": []}, {}],
    }


def _models_of(operations: list[Operation]) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = [ErrorBody]
    for op in operations:
        for model in (op.body, _model_inside(op.response)):
            if model is not None and model not in found:
                found.append(model)
    return found


def _model_inside(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        inner = _model_inside(arg)
        if inner is not None:
            return inner
    return None


def _schema_of(annotation: Any, components: dict[str, Any]) -> dict[str, Any]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {"$ref": _REF_TEMPLATE.format(model=annotation.__name__)}
    schema = TypeAdapter(annotation).json_schema(ref_template=_REF_TEMPLATE)
    components.update(schema.pop("$defs", {}))
    return schema


def _operation(op: Operation, components: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "tags": [op.tag],
        "summary": op.summary,
        "operationId": _operation_id(op),
        "parameters": _parameters(op, components),
        "responses": _responses(op, components),
    }
    if op.body is not None:
        spec["requestBody"] = {
            "required": not op.body_optional,
            "content": {
                "application/json": {"schema": _schema_of(op.body, components)}
            },
        }
    if op.public:
        spec["security"] = [{}]
    return spec


def _operation_id(op: Operation) -> str:
    """Unique across groups: the route module's name, then the handler's."""
    group = op.handler.__module__.rsplit(".", 1)[-1]
    return f"{group}_{op.handler.__name__}"


def _parameters(op: Operation, components: dict[str, Any]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    for where, model in (("path", op.path_model), ("query", op.query)):
        if model is None:
            continue
        schema = model.model_json_schema(ref_template=_REF_TEMPLATE)
        components.update(schema.pop("$defs", {}))
        required = set(schema.get("required", ()))
        for name, prop in schema.get("properties", {}).items():
            params.append(
                {
                    "name": name,
                    "in": where,
                    "required": where == "path" or name in required,
                    "schema": prop,
                    "description": prop.get("description", ""),
                }
            )
    return params


def _responses(op: Operation, components: dict[str, Any]) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "Success"}
    if op.response is not None:
        ok["content"] = {
            "application/json": {"schema": _schema_of(op.response, components)}
        }
    responses: dict[str, Any] = {str(op.status): ok}
    error_ref = {"$ref": _REF_TEMPLATE.format(model="ErrorBody")}
    errors = {400: "Invalid input", **op.errors}
    for code, text in sorted(errors.items()):
        responses[str(code)] = {
            "description": text,
            "content": {"application/json": {"schema": error_ref}},
        }
    return responses


def _assets_dir() -> Path:
    spec = importlib.util.find_spec("drf_spectacular_sidecar")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("drf-spectacular-sidecar is not installed")
    root = Path(next(iter(spec.submodule_search_locations)))
    return root / "static" / "drf_spectacular_sidecar"


_SWAGGER_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Transcriptarr API - Swagger UI</title>
<link rel="stylesheet" href="{static}/swagger-ui-dist/swagger-ui.css">
</head><body><div id="swagger-ui"></div>
<script src="{static}/swagger-ui-dist/swagger-ui-bundle.js"></script>
<script src="{static}/swagger-ui-dist/swagger-ui-standalone-preset.js"></script>
<script>
window.ui = SwaggerUIBundle({{url: "/openapi.json", dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: "StandaloneLayout"}});
</script></body></html>
"""

_REDOC_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Transcriptarr API - ReDoc</title></head>
<body><redoc spec-url="/openapi.json"></redoc>
<script src="{static}/redoc/bundles/redoc.standalone.js"></script>
</body></html>
"""


async def _openapi_json(request: web.Request) -> web.StreamResponse:
    cache = request.app[_DOC_CACHE_KEY]
    if not cache:
        cache.update(build_document(request.app[OPERATIONS_KEY]))
    return json_response(cache)


async def _swagger(request: web.Request) -> web.StreamResponse:
    html = _SWAGGER_PAGE.format(static=DOCS_STATIC_PREFIX)
    return web.Response(text=html, content_type="text/html")


async def _redoc(request: web.Request) -> web.StreamResponse:
    html = _REDOC_PAGE.format(static=DOCS_STATIC_PREFIX)
    return web.Response(text=html, content_type="text/html")


_DOC_CACHE_KEY: web.AppKey[dict[str, Any]] = web.AppKey("openapi_doc", dict)


def install(app: web.Application) -> None:
    """Add ``/openapi.json``, ``/docs``, ``/redoc`` and their assets."""
    app[_DOC_CACHE_KEY] = {}
    app.router.add_get("/openapi.json", _openapi_json)
    app.router.add_get("/docs", _swagger)
    app.router.add_get("/redoc", _redoc)
    app.router.add_static(DOCS_STATIC_PREFIX, _assets_dir(), follow_symlinks=False)
