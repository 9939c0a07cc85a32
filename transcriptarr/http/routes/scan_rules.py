"""Scan Rules API: ``/api/scan-rules``."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from transcriptarr.actors.proxy import ActorProxy
from transcriptarr.errors import Unavailable
from transcriptarr.http.api import ApiRoutes
from transcriptarr.http.context import services
from transcriptarr.models import Message
from transcriptarr.rules import ScanRule, ScanRuleCreate, ScanRuleUpdate

routes = ApiRoutes(tag="Scan Rules")


class RuleListQuery(BaseModel):
    enabled_only: bool = Field(default=False, description="Only enabled rules")


class RulePath(BaseModel):
    rule_id: int = Field(ge=1, le=2**62, description="Rule ID")


def scanner(request: web.Request) -> ActorProxy:
    """The scanner actor, which owns the rules; 503 while it is not running."""
    proxy = services(request).scanner
    if proxy is None:
        raise Unavailable("The scanner is not running")
    return proxy


_NOT_FOUND = {404: "Rule not found"}


@routes.get(
    "/api/scan-rules",
    summary="List scan rules (highest priority first)",
    query=RuleListQuery,
    response=list[ScanRule],
)
async def list_rules(request: web.Request, *, query: RuleListQuery) -> list[ScanRule]:
    rules: list[ScanRule] = await scanner(request).list_rules(query.enabled_only)
    return rules


@routes.get(
    "/api/scan-rules/{rule_id}",
    summary="Get a scan rule",
    path_model=RulePath,
    response=ScanRule,
    errors=_NOT_FOUND,
)
async def get_rule(request: web.Request, *, path: RulePath) -> ScanRule:
    rule: ScanRule = await scanner(request).get_rule(path.rule_id)
    return rule


@routes.post(
    "/api/scan-rules",
    summary="Create a scan rule",
    body=ScanRuleCreate,
    response=ScanRule,
    status=201,
    errors={
        400: "Invalid language, preset or action type",
        409: "Rule with same name exists",
    },
)
async def create_rule(request: web.Request, *, body: ScanRuleCreate) -> ScanRule:
    rule: ScanRule = await scanner(request).create_rule(body)
    return rule


@routes.put(
    "/api/scan-rules/{rule_id}",
    summary="Update a scan rule (any subset of the fields)",
    path_model=RulePath,
    body=ScanRuleUpdate,
    response=ScanRule,
    errors={
        400: "Invalid language, preset or action type",
        404: "Rule not found",
        409: "Name already exists",
    },
)
async def update_rule(
    request: web.Request, *, path: RulePath, body: ScanRuleUpdate
) -> ScanRule:
    rule: ScanRule = await scanner(request).update_rule(path.rule_id, body)
    return rule


@routes.delete(
    "/api/scan-rules/{rule_id}",
    summary="Delete a scan rule",
    path_model=RulePath,
    response=Message,
    errors=_NOT_FOUND,
)
async def delete_rule(request: web.Request, *, path: RulePath) -> Message:
    await scanner(request).delete_rule(path.rule_id)
    return Message(message=f"Scan rule {path.rule_id} deleted successfully")


@routes.post(
    "/api/scan-rules/{rule_id}/toggle",
    summary="Enable a disabled rule, or disable an enabled one",
    path_model=RulePath,
    response=ScanRule,
    errors=_NOT_FOUND,
)
async def toggle_rule(request: web.Request, *, path: RulePath) -> ScanRule:
    rule: ScanRule = await scanner(request).toggle_rule(path.rule_id)
    return rule
