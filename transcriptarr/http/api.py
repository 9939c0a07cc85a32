"""Typed routes: one declaration feeds the router, validation and OpenAPI.

A handler is declared with the pydantic models of its path, query, body and
response. The wrapper parses and validates each part (a bad value is a 400 that
names the field), calls the handler with the parsed models, and serialises what
it returns. ``openapi.py`` reads the same declarations to build the document, so
the documentation cannot drift from what the handlers accept.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel, TypeAdapter, ValidationError

from transcriptarr.errors import InvalidInput

Handler = Callable[..., Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Operation:
    """One documented route."""

    method: str
    path: str
    handler: Handler
    tag: str
    summary: str
    status: int
    response: Any
    path_model: type[BaseModel] | None
    query: type[BaseModel] | None
    body: type[BaseModel] | None
    body_optional: bool
    errors: Mapping[int, str]
    public: bool
    raw_response: bool


@dataclass
class ApiRoutes:
    """A group of typed routes (one per API module), like aiohttp's table."""

    tag: str
    operations: list[Operation] = field(default_factory=list)

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        response: Any = None,
        status: int = 200,
        path_model: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        body: type[BaseModel] | None = None,
        body_optional: bool = False,
        errors: Mapping[int, str] | None = None,
        public: bool = False,
        raw_response: bool = False,
    ) -> Callable[[Handler], Handler]:
        """Declare a handler; see the module docstring."""

        def decorate(handler: Handler) -> Handler:
            self.operations.append(
                Operation(
                    method=method,
                    path=path,
                    handler=handler,
                    tag=self.tag,
                    summary=summary,
                    status=status,
                    response=response,
                    path_model=path_model,
                    query=query,
                    body=body,
                    body_optional=body_optional,
                    errors=dict(errors or {}),
                    public=public,
                    raw_response=raw_response,
                )
            )
            return handler

        return decorate

    def get(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **kwargs)

    def install(self, app: web.Application) -> None:
        """Add every route of the group to ``app``'s router."""
        registry: list[Operation] = app[OPERATIONS_KEY]
        for op in self.operations:
            app.router.add_route(op.method, op.path, _wrap(op))
            registry.append(op)


OPERATIONS_KEY: web.AppKey[list[Operation]] = web.AppKey("operations", list)


def json_response(data: Any, *, status: int = 200) -> web.Response:
    """A JSON response serialised with orjson."""
    return web.Response(
        body=orjson.dumps(data),
        status=status,
        content_type="application/json",
    )


def _validation_error(exc: ValidationError, where: str) -> InvalidInput:
    first = exc.errors()[0]
    location = ".".join(str(part) for part in first["loc"]) or where
    message = first["msg"]
    if isinstance(first.get("ctx"), dict) and "error" in first["ctx"]:
        message = str(first["ctx"]["error"])
    return InvalidInput(f"{location}: {message}", field=location)


def parse_model(model: type[BaseModel], data: Any, where: str) -> BaseModel:
    """Validate ``data`` into ``model``; errors become a 400 naming the field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(exc, where) from exc


async def _read_json(request: web.Request, optional: bool) -> Any:
    raw = await request.read()
    if not raw.strip():
        if optional:
            return None
        raise InvalidInput("A JSON request body is required", field="body")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"Body is not valid JSON: {exc}", field="body") from exc


def _query_data(request: web.Request) -> dict[str, str]:
    return {key: request.query.getone(key) for key in request.query}


class JsonBytes(bytes):
    """A body already serialised to JSON (by an actor), sent as it is."""


def _serialise(op: Operation, result: Any) -> web.StreamResponse:
    if isinstance(result, web.StreamResponse):
        return result
    if isinstance(result, JsonBytes):
        return web.Response(
            body=bytes(result), status=op.status, content_type="application/json"
        )
    if op.raw_response:
        return json_response(result, status=op.status)
    if isinstance(result, BaseModel):
        return json_response(result.model_dump(mode="json"), status=op.status)
    if op.response is not None:
        data = TypeAdapter(op.response).dump_python(result, mode="json")
        return json_response(data, status=op.status)
    return json_response(result, status=op.status)


def _wrap(op: Operation) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    @functools.wraps(op.handler)
    async def handler(request: web.Request) -> web.StreamResponse:
        kwargs: dict[str, Any] = {}
        if op.path_model is not None:
            kwargs["path"] = parse_model(op.path_model, request.match_info, "path")
        if op.query is not None:
            kwargs["query"] = parse_model(op.query, _query_data(request), "query")
        if op.body is not None:
            data = await _read_json(request, op.body_optional)
            kwargs["body"] = (
                None if data is None else parse_model(op.body, data, "body")
            )
        result = await op.handler(request, **kwargs)
        return _serialise(op, result)

    return handler
