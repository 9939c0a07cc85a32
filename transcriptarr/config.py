"""Where the service keeps its data, and the server's start-up options."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DATA_DIR_ENV = "TRANSCRIPTARR_DATA_DIR"


def default_data_dir() -> Path:
    """The per-user data directory (XDG on Linux)."""
    from_env = os.environ.get(DATA_DIR_ENV)
    if from_env:
        return Path(from_env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "transcriptarr"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Options of ``transcriptarr server``."""

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("data")
    ray_address: str | None = None
    workers: int = 1
    reload: bool = False
    log_level: str = "INFO"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "transcriptarr.db"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"
