"""Command line: ``transcriptarr server ...`` (also ``python -m transcriptarr``)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from transcriptarr import __version__
from transcriptarr.config import DATA_DIR_ENV, ServerConfig, default_data_dir

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="transcriptarr",
        description="Subtitles for your media library, written by Whisper.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)
    server = commands.add_parser("server", help="run the service")
    server.add_argument("--host", default="127.0.0.1")
    server.add_argument("--port", type=int, default=8000)
    server.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"database and models (default: ${DATA_DIR_ENV} or a per-user folder)",
    )
    server.add_argument(
        "--ray-address",
        default=None,
        help="join this Ray cluster instead of a local one",
    )
    server.add_argument(
        "--workers", type=int, default=1, help="front-end processes on the same port"
    )
    server.add_argument(
        "--reload", action="store_true", help="restart the front end on source changes"
    )
    server.add_argument(
        "--log-level", default="INFO", type=str.upper, choices=LOG_LEVELS
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command == "server":
        if args.workers < 1:
            raise SystemExit("--workers must be 1 or more")
        if not args.ray_address:
            # Read by Ray at import: a local head then advertises and binds
            # loopback only, so none of its ports face the network.
            os.environ.setdefault(LOCAL_ONLY_ENV, "0")
        from transcriptarr import server

        server.main(
            ServerConfig(
                host=args.host,
                port=args.port,
                data_dir=args.data_dir or default_data_dir(),
                ray_address=args.ray_address,
                workers=args.workers,
                reload=args.reload,
                log_level=args.log_level,
            )
        )
