"""Library scan throughput: in-process probing against ffprobe, and rescans.

Generates a library of tiny Matroska files (one second of AAC tagged with a
language, two frames of 16x16 video, some with an external subtitle file),
laid out as shows of 20 episodes. Then, in one run:

1. a first scan of ``--files`` files by the scanner (walk, PyAV probe on the
   probe threads, rules, index write, job submission), as files per second;
2. an ``ffprobe`` subprocess per file on ``--ffprobe-files`` of the same
   files (one at a time, as the tools users run today do it, and as many in
   parallel as the scanner has probe threads), as files per second;
3. the library grown to ``--rescan-files`` files and scanned once, then the
   median time of ``--repeats`` rescans of the unchanged library.

Prints a table. ffprobe comes with FFmpeg (``apt-get install -y ffmpeg``);
without it the baseline rows are skipped with a message.

    .venv/bin/python benchmarks/scan.py [--files 2000] [--rescan-files 10000]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder comes first on sys.path, and its queue.py
# would shadow the standard library's queue module (which Ray and
# concurrent.futures import).
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.remove(sys.path[0])

import argparse
import asyncio
import logging
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import av
import numpy as np

from transcriptarr.actors.queue import JobBoard
from transcriptarr.actors.scanner import ScannerService
from transcriptarr.actors.settings import SettingsService

SAMPLE_RATE_HZ = 16000
EPISODES_PER_SHOW = 20
SUBTITLE_EVERY = 10
LANGUAGES = ("jpn", "eng", "spa", "deu")
RULE = {
    "name": "Japanese without English",
    "conditions": {
        "audio_language_is": "jpn",
        "missing_external_subtitle_lang": "eng",
    },
    "action": {"action_type": "translate", "target_language": "eng"},
}


def write_template(path: Path, language: str) -> None:
    """One tiny MKV: 1 s of AAC tagged ``language`` and two video frames."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=2)
        video.width = video.height = 16
        video.pix_fmt = "yuv420p"
        audio = container.add_stream("aac", rate=SAMPLE_RATE_HZ)
        audio.layout = "mono"
        audio.metadata["language"] = language
        container.start_encoding()
        black = np.zeros((16, 16, 3), dtype=np.uint8)
        for index in range(2):
            frame = av.VideoFrame.from_ndarray(black, format="rgb24")
            frame = frame.reformat(format="yuv420p")
            frame.pts = index
            frame.time_base = Fraction(1, 2)
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        silence = np.zeros((1, 1024), dtype=np.int16)
        for start in range(0, SAMPLE_RATE_HZ, 1024):
            chunk = av.AudioFrame.from_ndarray(silence, format="s16", layout="mono")
            chunk.sample_rate = SAMPLE_RATE_HZ
            chunk.pts = start
            for packet in audio.encode(chunk):
                container.mux(packet)
        for packet in audio.encode(None):
            container.mux(packet)


def grow_library(root: Path, templates: list[Path], first: int, count: int) -> None:
    """Add files ``first`` .. ``first + count - 1`` to the library."""
    for number in range(first, first + count):
        show = root / f"Show {number // EPISODES_PER_SHOW:04d}"
        show.mkdir(parents=True, exist_ok=True)
        episode = show / f"Show S01E{number % EPISODES_PER_SHOW + 1:02d}.mkv"
        shutil.copyfile(templates[number % len(templates)], episode)
        if number % SUBTITLE_EVERY == 0:
            episode.with_suffix(".en.srt").write_text(
                "1\n00:00:00,000 --> 00:00:01,000\nHi\n"
            )


def library_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.mkv"))


def ffprobe(path: Path) -> None:
    subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_streams",
            "-show_format",
            str(path),
        ],
        check=True,
        capture_output=True,
    )


def ffprobe_rate(files: list[Path], workers: int) -> float:
    started_s = time.perf_counter()
    if workers == 1:
        for path in files:
            ffprobe(path)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(ffprobe, files))
    return len(files) / (time.perf_counter() - started_s)


async def timed_scan(
    scanner: ScannerService, root: Path
) -> tuple[float, dict[str, int]]:
    started_s = time.perf_counter()
    result = await scanner.scan([str(root)])
    return time.perf_counter() - started_s, result


async def run(args: argparse.Namespace, work: Path) -> None:
    root = work / "library"
    templates = []
    for language in LANGUAGES:
        template = work / f"template-{language}.mkv"
        write_template(template, language)
        templates.append(template)
    grow_library(root, templates, 0, args.files)
    files = library_files(root)
    size_bytes = templates[0].stat().st_size

    db_path = work / "transcriptarr.db"
    board = JobBoard(db_path)
    settings = SettingsService(db_path)
    await board.start()
    await settings.start()
    scanner = ScannerService(
        db_path, queue=board, settings=settings, probe_threads=args.threads
    )
    await scanner.start()
    await scanner.create_rule(RULE)
    threads = args.threads or min(4, os.cpu_count() or 1)

    rows: list[tuple[str, str, str, str]] = []
    print(
        f"library: {len(files)} files of {size_bytes} bytes in "
        f"{len(files) // EPISODES_PER_SHOW} folders; {threads} probe threads; "
        f"{os.cpu_count()} CPUs",
        flush=True,
    )
    elapsed_s, result = await timed_scan(scanner, root)
    scanner_rate = result["scanned_files"] / elapsed_s
    rows.append(
        (
            "scanner: first scan (walk, PyAV probe, rules, index, jobs)",
            str(result["scanned_files"]),
            f"{elapsed_s:.2f}",
            f"{scanner_rate:.0f}",
        )
    )
    print(f"  first scan done: {result}", flush=True)

    ratio = None
    if shutil.which("ffprobe") is None:
        print("ffprobe not found: skipping the baseline (apt-get install -y ffmpeg)")
    else:
        sample = files[: args.ffprobe_files]
        sequential = ffprobe_rate(sample, 1)
        rows.append(
            (
                "ffprobe subprocess per file, one at a time",
                str(len(sample)),
                f"{len(sample) / sequential:.2f}",
                f"{sequential:.1f}",
            )
        )
        parallel = ffprobe_rate(sample, threads)
        rows.append(
            (
                f"ffprobe subprocess per file, {threads} in parallel",
                str(len(sample)),
                f"{len(sample) / parallel:.2f}",
                f"{parallel:.1f}",
            )
        )
        ratio = (scanner_rate / sequential, scanner_rate / parallel)

    grow_library(root, templates, args.files, max(args.rescan_files - args.files, 0))
    elapsed_s, result = await timed_scan(scanner, root)
    rows.append(
        (
            "scanner: scan of the grown library (new files probed)",
            str(result["scanned_files"]),
            f"{elapsed_s:.2f}",
            f"{result['scanned_files'] / elapsed_s:.0f}",
        )
    )
    rescans_s = []
    for _ in range(args.repeats):
        elapsed_s, result = await timed_scan(scanner, root)
        assert result["jobs_created"] == 0, result
        rescans_s.append(elapsed_s)
    rescan_s = statistics.median(rescans_s)
    rows.append(
        (
            f"scanner: rescan of the unchanged library (median of {args.repeats})",
            str(result["scanned_files"]),
            f"{rescan_s:.2f}",
            f"{result['scanned_files'] / rescan_s:.0f}",
        )
    )

    await scanner.close()
    await settings.close()
    await board.close()

    print()
    header = ("measurement", "files", "seconds", "files/s")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print(" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))
    print()
    if ratio is not None:
        print(
            f"probing speed-up over ffprobe: {ratio[0]:.0f}x one at a time, "
            f"{ratio[1]:.0f}x against {threads} in parallel (goal: >= 20x)"
        )
    print(
        f"rescan of {result['scanned_files']} unchanged files: {rescan_s:.2f} s "
        "(goal: < 2 s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--rescan-files", type=int, default=10000)
    parser.add_argument(
        "--ffprobe-files",
        type=int,
        default=500,
        help="how many of the files the ffprobe baseline probes (a rate needs no more)",
    )
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None, help="work here, keep it")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        asyncio.run(run(args, args.keep))
        return
    with tempfile.TemporaryDirectory(prefix="transcriptarr-scan-") as work:
        asyncio.run(run(args, Path(work)))


if __name__ == "__main__":
    sys.exit(main())
