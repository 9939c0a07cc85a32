"""The Setup Wizard API over HTTP, every actor in-process.

The settings service, job board, worker pool and scanner are the real classes.
Only what Ray would provide is stood in for: the pool launches in-process fake
workers (``FakeLauncher``, in place of WorkerActor processes) and the scanner
runs on a hand-moved clock with a table-driven language detector.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.scanner_library import media
from tests.unit.test_worker_pool import NO_GPU, FakeLauncher
from transcriptarr.actors import pool as pool_module
from transcriptarr.actors.pool import WorkerPool
from transcriptarr.actors.proxy import ActorProxy
from transcriptarr.actors.queue import JobBoard
from transcriptarr.actors.scanner import ScannerService
from transcriptarr.actors.settings import SettingsService
from transcriptarr.actors.worker_types import WorkerState, WorkerStatus, WorkerType
from transcriptarr.http.app import create_app
from transcriptarr.http.context import Services
from transcriptarr.http.security import RedactingAccessLogger
from transcriptarr.setup_wizard import bazarr_info, reachable_host, worker_change

Client = TestClient[web.Request, web.Application]

START = "2025-01-12T10:00:00"
WIZARD_KEYS = (
    "library_paths",
    "operation_mode",
    "scanner_enabled",
    "scanner_interval_minutes",
    "worker_cpu_count",
    "worker_gpu_count",
    "setup_completed",
    "api_key",
    "bazarr_enabled",
)


@pytest.fixture
def launcher() -> FakeLauncher:
    return FakeLauncher(NO_GPU)


@pytest.fixture
async def pool(
    board: JobBoard,
    settings_service: SettingsService,
    launcher: FakeLauncher,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[WorkerPool]:
    """The pool as the server starts it: the default settings' one CPU worker."""
    monkeypatch.setattr(pool_module, "RESOURCE_SETTLE_S", 0.0)
    worker_pool = WorkerPool(board, settings_service, tmp_path, launcher=launcher)
    await worker_pool.start()
    yield worker_pool
    await worker_pool.close()


def make_services(
    board: JobBoard,
    settings_service: SettingsService,
    *,
    pool: WorkerPool | None = None,
    scanner: ScannerService | None = None,
    host: str = "0.0.0.0",
) -> Services:
    return Services(
        queue=ActorProxy(board),
        settings=ActorProxy(settings_service),
        pool=None if pool is None else ActorProxy(pool),
        scanner=None if scanner is None else ActorProxy(scanner),
        host=host,
        port=8000,
    )


async def start_client(services: Services) -> Client:
    server = TestServer(create_app(services))
    # The access log the server runs with, so log assertions hold.
    await server.start_server(access_log_class=RedactingAccessLogger)
    client: Client = TestClient(server)
    await client.start_server()
    return client


@pytest.fixture
async def client(
    board: JobBoard,
    settings_service: SettingsService,
    pool: WorkerPool,
    scanner: ScannerService,
) -> AsyncIterator[Client]:
    services = make_services(board, settings_service, pool=pool, scanner=scanner)
    test_client = await start_client(services)
    yield test_client
    await test_client.close()


@pytest.fixture
def library(tmp_path: Path) -> Path:
    folder = tmp_path / "library"
    folder.mkdir()
    return folder


def standalone_body(library: Path, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "library_paths": [str(library)],
        "scan_rules": [
            {
                "name": "Japanese to Spanish",
                "audio_language_is": "ja",
                "missing_external_subtitle_lang": "es",
                "target_language": "spa",
                "action_type": "transcribe",
            }
        ],
        "worker_config": {"count": 1, "type": "cpu"},
        "scanner_config": {"interval_minutes": 360},
    }
    body.update(overrides)
    return body


async def ok(response: Any, status: int = 200) -> Any:
    assert response.status == status, await response.text()
    return await response.json()


async def wizard_settings(settings_service: SettingsService) -> dict[str, str]:
    stored = {s.key: s.value for s in await settings_service.list()}
    return {key: stored[key] for key in WIZARD_KEYS}


# Status


async def test_a_fresh_server_reports_its_first_run(client: Client) -> None:
    status = await ok(await client.get("/api/setup/status"))
    assert status == {"is_first_run": True, "setup_completed": False}


async def test_configured_library_paths_mean_it_is_not_a_first_run(
    client: Client, settings_service: SettingsService, library: Path
) -> None:
    await settings_service.update("library_paths", str(library))
    status = await ok(await client.get("/api/setup/status"))
    assert status == {"is_first_run": False, "setup_completed": False}


async def test_an_existing_scan_rule_means_it_is_not_a_first_run(
    client: Client,
) -> None:
    rule = {"name": "Any", "action": {"target_language": "eng"}}
    await ok(await client.post("/api/scan-rules", json=rule), 201)
    status = await ok(await client.get("/api/setup/status"))
    assert status == {"is_first_run": False, "setup_completed": False}


async def test_status_answers_without_a_scanner(
    board: JobBoard, settings_service: SettingsService
) -> None:
    client = await start_client(make_services(board, settings_service))
    try:
        status = await ok(await client.get("/api/setup/status"))
    finally:
        await client.close()
    assert status == {"is_first_run": True, "setup_completed": False}


# Standalone


async def test_standalone_saves_everything_and_answers_the_spec_body(
    client: Client, settings_service: SettingsService, library: Path
) -> None:
    body = standalone_body(library, scanner_config={"interval_minutes": 90})
    result = await ok(await client.post("/api/setup/standalone", json=body))

    assert result == {
        "success": True,
        "message": "Standalone mode configured successfully",
        "bazarr_info": None,
    }
    assert await wizard_settings(settings_service) == {
        "library_paths": str(library),
        "operation_mode": "standalone",
        "scanner_enabled": "true",
        "scanner_interval_minutes": "90",
        "worker_cpu_count": "1",
        "worker_gpu_count": "0",
        "setup_completed": "true",
        "api_key": "",
        "bazarr_enabled": "false",
    }
    status = await ok(await client.get("/api/setup/status"))
    assert status == {"is_first_run": False, "setup_completed": True}


async def test_standalone_stores_rules_with_normalised_languages(
    client: Client, library: Path
) -> None:
    await ok(await client.post("/api/setup/standalone", json=standalone_body(library)))
    rules = await ok(await client.get("/api/scan-rules"))
    assert [(r["name"], r["conditions"], r["action"]) for r in rules] == [
        (
            "Japanese to Spanish",
            {
                "audio_language_is": "jpn",
                "audio_language_not": None,
                "audio_track_count_min": None,
                "has_embedded_subtitle_lang": None,
                "missing_embedded_subtitle_lang": None,
                "missing_external_subtitle_lang": "spa",
                "file_extension": None,
            },
            {
                "action_type": "transcribe",
                "target_language": "spa",
                "quality_preset": "fast",
                "job_priority": 0,
            },
        )
    ]


async def test_standalone_starts_the_scheduler_on_the_interval_at_once(
    client: Client, library: Path
) -> None:
    body = standalone_body(library, scanner_config={"interval_minutes": 90})
    await ok(await client.post("/api/setup/standalone", json=body))
    status = await ok(await client.get("/api/scanner/status"))
    assert status["scheduler_enabled"] is True
    assert status["scheduler_running"] is True
    assert status["next_scan_time"] == "2025-01-12T11:30:00"


async def test_standalone_interval_replaces_a_configured_cron_expression(
    client: Client, settings_service: SettingsService, library: Path
) -> None:
    await settings_service.update("scanner_cron_expression", "0 2 * * *")
    await ok(await client.post("/api/setup/standalone", json=standalone_body(library)))
    status = await ok(await client.get("/api/scanner/status"))
    assert status["next_scan_time"] == "2025-01-12T16:00:00"
    assert (await settings_service.get("scanner_cron_expression")).value == ""


async def test_standalone_adds_workers_up_to_the_count_without_a_restart(
    client: Client, library: Path
) -> None:
    body = standalone_body(library, worker_config={"count": 2, "type": "CPU"})
    await ok(await client.post("/api/setup/standalone", json=body))
    stats = await ok(await client.get("/api/workers/stats"))
    assert (stats["total_workers"], stats["cpu_workers"]) == (2, 2)
    assert stats["idle_workers"] == 2
    assert stats["is_running"] is True


async def test_standalone_with_zero_workers_stops_the_running_ones(
    client: Client, launcher: FakeLauncher, library: Path
) -> None:
    body = standalone_body(library, worker_config={"count": 0, "type": "cpu"})
    await ok(await client.post("/api/setup/standalone", json=body))
    stats = await ok(await client.get("/api/workers/stats"))
    assert stats["total_workers"] == 0
    assert launcher.killed == ["worker-cpu-0"]


async def test_standalone_without_worker_config_applies_the_current_counts(
    client: Client, settings_service: SettingsService, library: Path
) -> None:
    await settings_service.update("worker_cpu_count", "2")
    body = standalone_body(library)
    del body["worker_config"], body["scanner_config"]
    await ok(await client.post("/api/setup/standalone", json=body))
    stats = await ok(await client.get("/api/workers/stats"))
    assert stats["cpu_workers"] == 2
    status = await ok(await client.get("/api/scanner/status"))
    assert status["next_scan_time"] == "2025-01-12T16:00:00"


async def test_running_standalone_again_updates_the_rule_of_the_same_name(
    client: Client, library: Path
) -> None:
    await ok(await client.post("/api/setup/standalone", json=standalone_body(library)))
    changed = {
        "name": "japanese to spanish",
        "missing_embedded_subtitle_lang": "es",
        "target_language": "es",
        "action_type": "translate",
        "quality_preset": "best",
    }
    body = standalone_body(library, scan_rules=[changed])
    await ok(await client.post("/api/setup/standalone", json=body))

    rules = await ok(await client.get("/api/scan-rules"))
    assert len(rules) == 1
    stats = await ok(await client.get("/api/workers/stats"))
    assert stats["total_workers"] == 1
    assert rules[0]["name"] == "japanese to spanish"
    assert rules[0]["conditions"]["audio_language_is"] is None
    assert rules[0]["conditions"]["missing_external_subtitle_lang"] is None
    assert rules[0]["conditions"]["missing_embedded_subtitle_lang"] == "spa"
    assert rules[0]["action"]["action_type"] == "translate"
    assert rules[0]["action"]["quality_preset"] == "best"


async def test_standalone_resolves_and_deduplicates_library_paths(
    client: Client, settings_service: SettingsService, library: Path
) -> None:
    (library / "anime").mkdir()
    link = library.parent / "anime-link"
    link.symlink_to(library / "anime")
    paths = [str(library / "anime" / ".." / "anime"), str(link), str(library)]
    body = standalone_body(library, library_paths=paths)
    await ok(await client.post("/api/setup/standalone", json=body))
    stored = (await settings_service.get("library_paths")).value
    assert stored == f"{library / 'anime'},{library}"


async def test_a_scan_after_standalone_creates_the_job(
    client: Client, library: Path
) -> None:
    movie = media(library / "movie.mkv", "jpn")
    await ok(await client.post("/api/setup/standalone", json=standalone_body(library)))
    result = await ok(await client.post("/api/scanner/scan"))
    assert result["jobs_created"] == 1
    page = await ok(await client.get("/api/jobs"))
    assert [(j["file_path"], j["target_lang"]) for j in page["jobs"]] == [
        (str(movie), "spa")
    ]


# Standalone refused: 400 naming the field, nothing applied


def _missing(library: Path) -> dict[str, Any]:
    paths = [str(library), str(library / "nowhere")]
    return standalone_body(library, library_paths=paths)


def _file(library: Path) -> dict[str, Any]:
    (library / "movie.mkv").write_bytes(b"")
    return standalone_body(library, library_paths=[str(library / "movie.mkv")])


def _comma(library: Path) -> dict[str, Any]:
    (library / "a,b").mkdir()
    return standalone_body(library, library_paths=[str(library / "a,b")])


def _trailing_space(library: Path) -> dict[str, Any]:
    (library / "x ").mkdir()
    return standalone_body(library, library_paths=[str(library / "x ")])


def _rule(library: Path, **fields: Any) -> dict[str, Any]:
    rule = standalone_body(library)["scan_rules"][0] | fields
    return standalone_body(library, scan_rules=[rule])


def _twice(library: Path) -> dict[str, Any]:
    rule = standalone_body(library)["scan_rules"][0]
    return standalone_body(
        library, scan_rules=[rule, rule | {"name": "JAPANESE TO SPANISH"}]
    )


def _no_target(library: Path) -> dict[str, Any]:
    body = standalone_body(library)
    del body["scan_rules"][0]["target_language"]
    return body


REFUSALS: list[tuple[str, Any, str, str]] = [
    (
        "missing folder",
        _missing,
        "library_paths.1",
        "library_paths.1: path not found: {library}/nowhere",
    ),
    (
        "a file, not a folder",
        _file,
        "library_paths.0",
        "library_paths.0: path is not a directory: {library}/movie.mkv",
    ),
    (
        "relative path",
        lambda lib: standalone_body(lib, library_paths=["media/anime"]),
        "library_paths.0",
        "library_paths.0: 'media/anime' is not an absolute path",
    ),
    (
        "empty path",
        lambda lib: standalone_body(lib, library_paths=[" "]),
        "library_paths.0",
        "library_paths.0: ' ' is not a usable path",
    ),
    (
        "NUL byte",
        lambda lib: standalone_body(lib, library_paths=[f"{lib}\x00x"]),
        "library_paths.0",
        "library_paths.0: '{library}\\x00x' is not a usable path",
    ),
    (
        "comma in a folder name",
        _comma,
        "library_paths.0",
        "library_paths.0: '{library}/a,b' holds a comma or ends in a space, which "
        "the library_paths setting cannot keep; rename the folder or link to it",
    ),
    (
        "folder name ending in a space",
        _trailing_space,
        "library_paths.0",
        "library_paths.0: '{library}/x ' holds a comma or ends in a space, which "
        "the library_paths setting cannot keep; rename the folder or link to it",
    ),
    (
        "no library paths",
        lambda lib: standalone_body(lib, library_paths=[]),
        "library_paths",
        "library_paths: List should have at least 1 item after validation, not 0",
    ),
    (
        "unknown audio language",
        lambda lib: _rule(lib, audio_language_is="klingonese"),
        "scan_rules.0.audio_language_is",
        "scan_rules.0.audio_language_is: unknown language code 'klingonese'",
    ),
    (
        "unknown target language",
        lambda lib: _rule(lib, target_language="xx"),
        "scan_rules.0.target_language",
        "scan_rules.0.target_language: unknown language code 'xx'",
    ),
    (
        "bad file extension",
        lambda lib: _rule(lib, file_extension=".mk v"),
        "scan_rules.0.file_extension",
        "scan_rules.0.file_extension: '.mk v' is not a file extension",
    ),
    (
        "bad action type",
        lambda lib: _rule(lib, action_type="dub"),
        "scan_rules.0.action_type",
        "scan_rules.0.action_type: Input should be 'transcribe' or 'translate'",
    ),
    (
        "bad quality preset",
        lambda lib: _rule(lib, quality_preset="ultra"),
        "scan_rules.0.quality_preset",
        "scan_rules.0.quality_preset: Input should be 'fast', 'balanced' or 'best'",
    ),
    (
        "rule without a target language",
        _no_target,
        "scan_rules.0.target_language",
        "scan_rules.0.target_language: Field required",
    ),
    (
        "rule without a name",
        lambda lib: _rule(lib, name=""),
        "scan_rules.0.name",
        "scan_rules.0.name: String should have at least 1 character",
    ),
    (
        "unknown rule field",
        lambda lib: _rule(lib, audio_language="jpn"),
        "scan_rules.0.audio_language",
        "scan_rules.0.audio_language: Extra inputs are not permitted",
    ),
    (
        "one rule name twice",
        _twice,
        "scan_rules.1.name",
        "scan_rules.1.name: the rule name 'JAPANESE TO SPANISH' is given twice",
    ),
    (
        "worker type",
        lambda lib: standalone_body(lib, worker_config={"count": 1, "type": "tpu"}),
        "worker_config.type",
        "worker_config.type: Input should be 'cpu' or 'gpu'",
    ),
    (
        "negative worker count",
        lambda lib: standalone_body(lib, worker_config={"count": -1, "type": "cpu"}),
        "worker_config.count",
        "worker_config.count: Input should be greater than or equal to 0",
    ),
    (
        "zero interval",
        lambda lib: standalone_body(lib, scanner_config={"interval_minutes": 0}),
        "scanner_config.interval_minutes",
        "scanner_config.interval_minutes: Input should be greater than or equal to 1",
    ),
    (
        "unknown top-level field",
        lambda lib: standalone_body(lib, watcher_config={}),
        "watcher_config",
        "watcher_config: Extra inputs are not permitted",
    ),
]


@pytest.mark.parametrize(
    ("make_body", "field", "detail"),
    [case[1:] for case in REFUSALS],
    ids=[case[0] for case in REFUSALS],
)
async def test_a_bad_standalone_value_is_a_400_naming_it_and_applies_nothing(
    client: Client,
    settings_service: SettingsService,
    launcher: FakeLauncher,
    library: Path,
    make_body: Any,
    field: str,
    detail: str,
) -> None:
    before = await wizard_settings(settings_service)
    response = await client.post("/api/setup/standalone", json=make_body(library))

    assert response.status == 400, await response.text()
    assert await response.json() == {
        "detail": detail.format(library=library),
        "field": field,
    }
    assert await wizard_settings(settings_service) == before
    assert await ok(await client.get("/api/scan-rules")) == []
    assert [w.spec.worker_id for w in launcher.launched] == ["worker-cpu-0"]
    status = await ok(await client.get("/api/scanner/status"))
    assert status["scheduler_running"] is False


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b"", "A JSON request body is required"),
        (b"{not json", "Body is not valid JSON: "),
        (b"[]", "body: Input should be a valid dictionary or instance of "),
    ],
    ids=["no body", "not JSON", "not an object"],
)
async def test_a_missing_or_malformed_standalone_body_is_a_400(
    client: Client, settings_service: SettingsService, raw: bytes, detail: str
) -> None:
    before = await wizard_settings(settings_service)
    headers = {"Content-Type": "application/json"}
    response = await client.post("/api/setup/standalone", data=raw, headers=headers)
    assert response.status == 400
    assert (await response.json())["detail"].startswith(detail)
    assert await wizard_settings(settings_service) == before


async def test_gpu_workers_ray_cannot_place_are_a_400_that_saves_nothing(
    client: Client, settings_service: SettingsService, library: Path
) -> None:
    before = await wizard_settings(settings_service)
    body = standalone_body(library, worker_config={"count": 1, "type": "gpu"})
    response = await client.post("/api/setup/standalone", json=body)

    assert response.status == 400
    assert (await response.json())["detail"].startswith(
        "Cannot add a GPU worker: Ray sees no GPU in the cluster"
    )
    assert await wizard_settings(settings_service) == before
    assert await ok(await client.get("/api/scan-rules")) == []
    stats = await ok(await client.get("/api/workers/stats"))
    assert (stats["cpu_workers"], stats["gpu_workers"]) == (1, 0)


@pytest.mark.parametrize("missing", ["pool", "scanner"])
async def test_standalone_without_the_pool_or_scanner_actor_is_a_503(
    board: JobBoard,
    settings_service: SettingsService,
    pool: WorkerPool,
    scanner: ScannerService,
    library: Path,
    missing: str,
) -> None:
    services = make_services(
        board,
        settings_service,
        pool=None if missing == "pool" else pool,
        scanner=None if missing == "scanner" else scanner,
    )
    client = await start_client(services)
    before = await wizard_settings(settings_service)
    try:
        body = standalone_body(library)
        response = await client.post("/api/setup/standalone", json=body)
        found = await response.json()
    finally:
        await client.close()
    what = "worker pool" if missing == "pool" else "scanner"
    assert response.status == 503
    assert found == {
        "detail": f"The {what} is not running, so standalone mode cannot be "
        "applied; start the server with it and run the wizard again"
    }
    assert await wizard_settings(settings_service) == before


# Bazarr slave mode


async def test_bazarr_slave_returns_a_provider_url_carrying_a_new_key(
    client: Client, settings_service: SettingsService
) -> None:
    result = await ok(await client.post("/api/setup/bazarr-slave"))
    info = result["bazarr_info"]
    key = info["api_key"]

    assert result["success"] is True
    assert result["message"] == "Bazarr slave mode configured successfully"
    assert len(key) >= 43
    host = client.server.host
    assert info == {
        "mode": "bazarr_slave",
        "host": host,
        "port": 8000,
        "api_key": key,
        "provider_url": f"http://{host}:8000/bazarr/{key}",
    }
    stored = await wizard_settings(settings_service)
    assert stored["api_key"] == key
    assert stored["operation_mode"] == "bazarr_slave"
    assert stored["bazarr_enabled"] == "true"
    assert stored["setup_completed"] == "true"


async def test_bazarr_slave_keeps_the_listening_host_when_it_is_not_a_wildcard(
    board: JobBoard, settings_service: SettingsService
) -> None:
    services = make_services(board, settings_service, host="192.168.1.20")
    client = await start_client(services)
    try:
        result = await ok(await client.post("/api/setup/bazarr-slave"))
    finally:
        await client.close()
    key = result["bazarr_info"]["api_key"]
    assert result["bazarr_info"]["host"] == "192.168.1.20"
    assert result["bazarr_info"]["provider_url"] == (
        f"http://192.168.1.20:8000/bazarr/{key}"
    )


async def test_bazarr_slave_takes_the_host_the_client_used_on_a_wildcard(
    client: Client,
) -> None:
    headers = {"Host": "media-box.lan:8000"}
    result = await ok(await client.post("/api/setup/bazarr-slave", headers=headers))
    info = result["bazarr_info"]
    assert info["host"] == "media-box.lan"
    assert info["provider_url"] == f"http://media-box.lan:8000/bazarr/{info['api_key']}"


async def test_after_bazarr_slave_calls_need_the_new_key(client: Client) -> None:
    result = await ok(await client.post("/api/setup/bazarr-slave"))
    key = result["bazarr_info"]["api_key"]

    refused = await client.get("/api/setup/status")
    assert refused.status == 401
    wrong = await client.get("/api/setup/status", headers={"X-Api-Key": "nope"})
    assert wrong.status == 401
    with_header = await client.get("/api/setup/status", headers={"X-Api-Key": key})
    assert await ok(with_header) == {"is_first_run": False, "setup_completed": True}
    with_query = await client.get("/api/workers/stats", params={"apikey": key})
    assert (await ok(with_query))["cpu_workers"] == 1


async def test_bazarr_slave_again_needs_the_key_and_replaces_it(
    client: Client,
) -> None:
    first = (await ok(await client.post("/api/setup/bazarr-slave")))["bazarr_info"]
    refused = await client.post("/api/setup/bazarr-slave")
    assert refused.status == 401
    headers = {"X-Api-Key": first["api_key"]}
    second = await ok(await client.post("/api/setup/bazarr-slave", headers=headers))
    new_key = second["bazarr_info"]["api_key"]
    assert new_key != first["api_key"]
    old = await client.get("/api/setup/status", headers=headers)
    assert old.status == 401
    new = await client.get("/api/setup/status", headers={"X-Api-Key": new_key})
    assert new.status == 200


async def test_the_generated_key_appears_in_no_log_line(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # As logs.configure() keeps it: aiosqlite logs SQL parameters at DEBUG.
    caplog.set_level(logging.INFO, logger="aiosqlite")
    result = await ok(await client.post("/api/setup/bazarr-slave"))
    key = result["bazarr_info"]["api_key"]
    await client.get("/api/setup/status", params={"apikey": key})
    await client.get(f"/bazarr/{key}/status")
    await client.get("/api/setup/status", headers={"X-Api-Key": "wrong"})
    assert "setup wizard: Bazarr slave mode configured with a new API key" in (
        caplog.messages
    )
    assert all(key not in record.getMessage() for record in caplog.records)


# Skip


async def test_skip_marks_setup_completed(
    client: Client, settings_service: SettingsService
) -> None:
    result = await ok(await client.post("/api/setup/skip"))
    assert result == {"message": "Setup wizard skipped"}
    assert (await settings_service.get("setup_completed")).value == "true"
    status = await ok(await client.get("/api/setup/status"))
    assert status == {"is_first_run": False, "setup_completed": True}


# Pure parts


def _status(worker_id: str, kind: WorkerType, state: WorkerState) -> WorkerStatus:
    return WorkerStatus(
        worker_id=worker_id,
        worker_type=kind,
        device_id=None if kind is WorkerType.CPU else 0,
        status=state,
        current_job_id=None,
        jobs_completed=0,
        jobs_failed=0,
        uptime_seconds=1.0,
        current_job_progress=None,
        current_job_eta=None,
    )


def test_surplus_workers_leave_broken_first_and_busy_last() -> None:
    workers = [
        _status("worker-cpu-0", WorkerType.CPU, WorkerState.BUSY),
        _status("worker-cpu-1", WorkerType.CPU, WorkerState.IDLE),
        _status("worker-cpu-2", WorkerType.CPU, WorkerState.ERROR),
        _status("worker-gpu-0", WorkerType.GPU, WorkerState.IDLE),
    ]
    change = worker_change(workers, cpu_target=1, gpu_target=3)
    assert change.remove == ("worker-cpu-2", "worker-cpu-1")
    assert (change.add_cpu, change.add_gpu) == (0, 2)


def test_every_worker_state_has_a_place_in_the_leaving_order() -> None:
    workers = [
        _status(f"worker-cpu-{i}", WorkerType.CPU, state)
        for i, state in enumerate(WorkerState)
    ]
    busy = next(w.worker_id for w in workers if w.status is WorkerState.BUSY)
    change = worker_change(workers, cpu_target=0, gpu_target=0)
    assert sorted(change.remove) == sorted(w.worker_id for w in workers)
    assert change.remove[-1] == busy


def test_wildcard_listening_hosts_give_way_to_the_request_host() -> None:
    for wildcard in ("0.0.0.0", "::", ""):
        assert reachable_host(wildcard, "nas.local") == "nas.local"
    assert reachable_host("0.0.0.0", None) == "127.0.0.1"
    assert reachable_host("10.0.0.2", "nas.local") == "10.0.0.2"


def test_an_ipv6_provider_url_brackets_the_host() -> None:
    info = bazarr_info("::1", 9000, "k3y")
    assert info.provider_url == "http://[::1]:9000/bazarr/k3y"
    assert info.host == "::1"
