"""The setup wizard's logic: what a first run configures, and applying it live.

``standalone`` is checked whole before anything changes (folders, rules,
worker and scanner figures), then applied in an order that keeps a refusal
harmless: workers are added first, because only the pool can tell whether Ray
can place them, and a refused start leaves nothing saved. Then the rules and
settings are saved, surplus workers leave, the scheduler starts, and
``setup_completed`` is written last, so it is only true once all of it ran.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from transcriptarr.actors.proxy import ActorProxy
from transcriptarr.actors.worker_types import WorkerState, WorkerStatus, WorkerType
from transcriptarr.catalog import DEFAULTS_BY_KEY
from transcriptarr.errors import InvalidInput, NotFound
from transcriptarr.library import resolve_request_path
from transcriptarr.models import QualityPreset, TaskKind
from transcriptarr.rules import (
    RuleConditions,
    RuleName,
    ScanRule,
    ScanRuleCreate,
    ScanRuleUpdate,
)
from transcriptarr.scheduling import MAX_INTERVAL_MINUTES

logger = logging.getLogger(__name__)

STANDALONE = "standalone"
BAZARR_SLAVE = "bazarr_slave"
MAX_WORKERS = 64
MAX_LIBRARY_PATHS = 100
MAX_WIZARD_RULES = 100
REMOVE_TIMEOUT_S = 30.0
API_KEY_BYTES = 32
# Hosts a server listens on that no client can connect to.
_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "*"})  # noqa: S104

_CONDITION_FIELDS = frozenset(RuleConditions.model_fields)
_ACTION_FIELDS = frozenset({"action_type", "target_language", "quality_preset"})


# Request and response bodies


class _Body(BaseModel):
    # Paths are taken as given: a folder name may end in a space.
    model_config = ConfigDict(extra="forbid")


class WizardScanRule(_Body):
    """One rule of the wizard, flat: its conditions and action side by side."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: RuleName
    audio_language_is: str | None = None
    audio_language_not: str | None = None
    audio_track_count_min: int | None = None
    has_embedded_subtitle_lang: str | None = None
    missing_embedded_subtitle_lang: str | None = None
    missing_external_subtitle_lang: str | None = None
    file_extension: str | None = None
    target_language: str
    action_type: TaskKind = TaskKind.TRANSCRIBE
    quality_preset: QualityPreset = QualityPreset.FAST

    def as_create(self) -> ScanRuleCreate:
        """The rule in the Scan Rules API's shape, languages normalised.

        Raises:
            ValidationError: A condition or the action is not valid.
        """
        return ScanRuleCreate.model_validate(
            {
                "name": self.name,
                "conditions": self.model_dump(include=set(_CONDITION_FIELDS)),
                "action": self.model_dump(include=set(_ACTION_FIELDS)),
            }
        )


class WorkerConfig(_Body):
    count: int = Field(ge=0, le=MAX_WORKERS, description="Workers to run")
    type: WorkerType = Field(description="cpu or gpu")

    @field_validator("type", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


class ScannerConfig(_Body):
    interval_minutes: int = Field(
        ge=1,
        le=int(MAX_INTERVAL_MINUTES),
        description="Minutes between scheduled scans",
    )


class StandaloneSetup(_Body):
    """Body of ``POST /api/setup/standalone``.

    ``worker_config`` and ``scanner_config`` may be left out: the current
    worker counts and scan interval are then kept, and applied.
    """

    library_paths: list[str] = Field(min_length=1, max_length=MAX_LIBRARY_PATHS)
    scan_rules: list[WizardScanRule] = Field(
        default_factory=list, max_length=MAX_WIZARD_RULES
    )
    worker_config: WorkerConfig | None = None
    scanner_config: ScannerConfig | None = None


class SetupStatus(BaseModel):
    is_first_run: bool
    setup_completed: bool


class BazarrInfo(BaseModel):
    mode: str
    host: str
    port: int
    api_key: str
    provider_url: str


class SetupResult(BaseModel):
    success: bool
    message: str
    bazarr_info: BazarrInfo | None = None


# Checking a standalone setup


@dataclass(frozen=True, slots=True)
class StandalonePlan:
    """A standalone setup, checked: everything it writes and starts."""

    library_paths: tuple[str, ...]
    rules: tuple[ScanRuleCreate, ...]
    settings: dict[str, str]
    worker_config: WorkerConfig | None


def plan_standalone(body: StandaloneSetup) -> StandalonePlan:
    """Check ``body`` whole; reads the file system, so run it off the loop.

    Raises:
        InvalidInput: A library path or a rule is not usable; the error names
            the field (``library_paths.1``, ``scan_rules.0.target_language``).
    """
    checked = [_library_folder(raw, i) for i, raw in enumerate(body.library_paths)]
    folders = tuple(dict.fromkeys(checked))
    rules = _rules(body.scan_rules)
    settings = {
        "library_paths": ",".join(folders),
        "operation_mode": STANDALONE,
        "scanner_enabled": "true",
    }
    if body.worker_config is not None:
        cpu, gpu = _worker_targets(body.worker_config)
        settings["worker_cpu_count"] = str(cpu)
        settings["worker_gpu_count"] = str(gpu)
    if body.scanner_config is not None:
        settings["scanner_interval_minutes"] = str(body.scanner_config.interval_minutes)
        # The wizard asks for an interval; a cron expression left from before
        # would silently take its place.
        settings["scanner_cron_expression"] = ""
    return StandalonePlan(folders, rules, settings, body.worker_config)


def _library_folder(raw: str, index: int) -> str:
    field = f"library_paths.{index}"
    path = resolve_request_path(raw, field=field)
    try:
        exists, is_dir = path.exists(), path.is_dir()
    except OSError as exc:
        raise InvalidInput(f"{field}: cannot read {raw!r}", field=field) from exc
    if not exists:
        raise InvalidInput(f"{field}: path not found: {raw}", field=field)
    if not is_dir:
        raise InvalidInput(f"{field}: path is not a directory: {raw}", field=field)
    if not os.access(path, os.R_OK | os.X_OK):
        raise InvalidInput(f"{field}: directory is not readable: {raw}", field=field)
    text = str(path)
    # The library_paths setting is a comma-separated list of stripped items.
    if "," in text or text != text.strip():
        raise InvalidInput(
            f"{field}: {raw!r} holds a comma or ends in a space, which the "
            "library_paths setting cannot keep; rename the folder or link to it",
            field=field,
        )
    return text


def _rules(rules: Sequence[WizardScanRule]) -> tuple[ScanRuleCreate, ...]:
    checked: list[ScanRuleCreate] = []
    names: set[str] = set()
    for index, rule in enumerate(rules):
        where = f"scan_rules.{index}"
        try:
            create = rule.as_create()
        except ValidationError as exc:
            raise _rule_error(exc, where) from exc
        if create.name.casefold() in names:
            raise InvalidInput(
                f"{where}.name: the rule name {create.name!r} is given twice",
                field=f"{where}.name",
            )
        names.add(create.name.casefold())
        checked.append(create)
    return tuple(checked)


def _rule_error(exc: ValidationError, where: str) -> InvalidInput:
    """The first error, named by the wizard's flat field."""
    first = exc.errors()[0]
    name = str(first["loc"][-1]) if first["loc"] else "name"
    message = first["msg"]
    context = first.get("ctx")
    if isinstance(context, dict) and "error" in context:
        message = str(context["error"])
    return InvalidInput(f"{where}.{name}: {message}", field=f"{where}.{name}")


def _worker_targets(config: WorkerConfig) -> tuple[int, int]:
    """(CPU, GPU) workers: the wizard's type gets the count, the other none."""
    if config.type is WorkerType.GPU:
        return 0, config.count
    return config.count, 0


# Applying it


@dataclass(frozen=True, slots=True)
class WorkerChange:
    """What brings the pool to its target counts."""

    add_cpu: int
    add_gpu: int
    remove: tuple[str, ...]


# Which workers leave first when there are too many: those already going or
# broken, then the idle, and busy ones last.
_LEAVING_ORDER = {
    WorkerState.STOPPING: 0,
    WorkerState.STOPPED: 0,
    WorkerState.ERROR: 0,
    WorkerState.STARTING: 1,
    WorkerState.IDLE: 1,
    WorkerState.BUSY: 2,
}


def worker_change(
    workers: Sequence[WorkerStatus], cpu_target: int, gpu_target: int
) -> WorkerChange:
    """Workers to add and remove so the pool runs the target counts."""
    add: dict[WorkerType, int] = {}
    remove: list[str] = []
    targets = {WorkerType.CPU: cpu_target, WorkerType.GPU: gpu_target}
    for kind, target in targets.items():
        running = [w for w in workers if w.worker_type is kind]
        add[kind] = max(target - len(running), 0)
        surplus = len(running) - target
        if surplus > 0:
            leaving = sorted(running, key=lambda w: _LEAVING_ORDER.get(w.status, 1))
            remove += [w.worker_id for w in leaving[:surplus]]
    return WorkerChange(add[WorkerType.CPU], add[WorkerType.GPU], tuple(remove))


async def apply_standalone(
    plan: StandalonePlan,
    *,
    settings: ActorProxy,
    pool: ActorProxy,
    scanner: ActorProxy,
) -> None:
    """Save ``plan`` and bring the workers and the scheduler in line with it.

    Raises:
        InvalidInput: Ray cannot place the workers asked for (nothing saved).
        Unavailable: A worker did not start (nothing saved).
    """
    values = await settings.values()
    cpu_target, gpu_target = (
        _worker_targets(plan.worker_config)
        if plan.worker_config is not None
        else (int(values["worker_cpu_count"]), int(values["worker_gpu_count"]))
    )
    change = worker_change(await pool.list_workers(), cpu_target, gpu_target)
    if change.add_cpu or change.add_gpu:
        await pool.start_pool(change.add_cpu, change.add_gpu)

    await _save_rules(scanner, plan.rules)
    await settings.bulk_update(plan.settings)
    await _remove_workers(pool, change.remove)
    await scanner.start_scheduler({"enabled": True})
    await settings.update("setup_completed", "true")
    logger.info(
        "setup wizard: standalone mode configured (%d library paths, %d rules, "
        "%d CPU and %d GPU workers)",
        len(plan.library_paths),
        len(plan.rules),
        cpu_target,
        gpu_target,
    )


async def _save_rules(scanner: ActorProxy, rules: Sequence[ScanRuleCreate]) -> None:
    """Create each rule, or update the rule of that name (ignoring case), so
    running the wizard again changes rules instead of failing on them."""
    if not rules:
        return
    existing: list[ScanRule] = await scanner.list_rules()
    by_name = {rule.name.casefold(): rule.id for rule in existing}
    for rule in rules:
        rule_id = by_name.get(rule.name.casefold())
        if rule_id is None:
            await scanner.create_rule(rule)
        else:
            await scanner.update_rule(rule_id, _replacement(rule))


def _replacement(rule: ScanRuleCreate) -> ScanRuleUpdate:
    """An update that sets every condition (clearing those not given), the
    wizard's action fields and ``enabled``; priorities are kept."""
    return ScanRuleUpdate.model_validate(
        {
            "name": rule.name,
            "enabled": True,
            "conditions": rule.conditions.model_dump(),
            "action": rule.action.model_dump(include=set(_ACTION_FIELDS)),
        }
    )


async def _remove_workers(pool: ActorProxy, worker_ids: Sequence[str]) -> None:
    """Stop surplus workers together, each given time to finish its job."""
    await asyncio.gather(*(_remove_worker(pool, w) for w in worker_ids))


async def _remove_worker(pool: ActorProxy, worker_id: str) -> None:
    try:
        await pool.remove_worker(worker_id, REMOVE_TIMEOUT_S)
    except NotFound:
        logger.info("worker %s had already left the pool", worker_id)


# Bazarr slave mode, skipping, and the first-run question


async def configure_bazarr_slave(settings: ActorProxy) -> str:
    """Generate an API key and switch to Bazarr slave mode; returns the key."""
    api_key = secrets.token_urlsafe(API_KEY_BYTES)
    await settings.bulk_update(
        {
            "api_key": api_key,
            "operation_mode": BAZARR_SLAVE,
            "bazarr_enabled": "true",
            "setup_completed": "true",
        }
    )
    logger.info("setup wizard: Bazarr slave mode configured with a new API key")
    return api_key


def bazarr_info(host: str, port: int, api_key: str) -> BazarrInfo:
    """What Bazarr needs; the key travels in the provider URL's path."""
    shown = f"[{host}]" if ":" in host else host
    return BazarrInfo(
        mode=BAZARR_SLAVE,
        host=host,
        port=port,
        api_key=api_key,
        provider_url=f"http://{shown}:{port}/bazarr/{api_key}",
    )


def reachable_host(listen_host: str, request_host: str | None) -> str:
    """The host a client can reach: the listening one, unless it is a
    wildcard (``0.0.0.0``), then the one the client used."""
    if listen_host.strip() not in _WILDCARD_HOSTS:
        return listen_host
    return request_host or "127.0.0.1"


async def skip_setup(settings: ActorProxy) -> None:
    await settings.update("setup_completed", "true")
    logger.info("setup wizard skipped")


async def setup_status(settings: ActorProxy, scanner: ActorProxy | None) -> SetupStatus:
    """First run: setup not completed and nothing the wizard sets configured."""
    values = await settings.values()
    completed = bool(values.get("setup_completed"))
    default_mode = DEFAULTS_BY_KEY["operation_mode"].value
    configured = (
        bool(values.get("library_paths"))
        or bool(values.get("api_key"))
        or bool(values.get("bazarr_enabled"))
        or values.get("operation_mode") != default_mode
    )
    if not completed and not configured and scanner is not None:
        configured = bool(await scanner.list_rules())
    return SetupStatus(
        is_first_run=not completed and not configured, setup_completed=completed
    )
