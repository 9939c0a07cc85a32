"""Jobs through real Ray actors, real media and the bundled ``base`` model.

Two one-thread CPU workers (the whole two-CPU test cluster) serve every test
of the module; each test copies its fixtures into the pool's media folder,
submits jobs to the board and reads the subtitle files the workers write.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.integration.conftest import (
    PoolRig,
    PoolRigFactory,
    spoken_text,
    srt_text,
    word_error_rate,
)
from transcriptarr.models import JobStatus

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rig(pool_rigs: PoolRigFactory) -> AsyncIterator[PoolRig]:
    async with pool_rigs(cpu_workers=2) as pool_rig:
        yield pool_rig


async def test_english_speech_becomes_an_english_srt_matching_the_script(
    rig: PoolRig,
) -> None:
    media = rig.copy("english.mkv")
    job = await rig.wait(await rig.submit(media, target_lang="eng"))

    output = rig.media_dir / "english.en.srt"
    assert job.status is JobStatus.COMPLETED, job.error
    assert job.output_path == str(output)
    assert word_error_rate(spoken_text("english.mkv"), srt_text(output)) < 0.15
    assert job.source_lang == "eng"
    assert job.segments_count is not None
    assert job.segments_count > 0
    assert job.worker_id in {"worker-cpu-0", "worker-cpu-1"}
    assert (job.model_used, job.device_used, job.vram_used_mb) == ("base", "cpu", None)
    assert job.processing_time_seconds is not None
    assert job.processing_time_seconds > 0


async def test_spanish_speech_without_a_source_language_is_detected_and_recorded(
    rig: PoolRig,
) -> None:
    media = rig.copy("spanish.mkv")
    job = await rig.wait(await rig.submit(media, target_lang="spa"))

    output = rig.media_dir / "spanish.es.srt"
    assert job.status is JobStatus.COMPLETED, job.error
    assert job.source_lang == "spa"
    assert job.output_path == str(output)
    assert word_error_rate(spoken_text("spanish.mkv"), srt_text(output)) < 0.25


async def test_spanish_audio_with_an_english_target_gives_english(
    rig: PoolRig,
) -> None:
    media = rig.copy("spanish.mkv", "spanish_to_english.mkv")
    job = await rig.wait(await rig.submit(media, target_lang="eng"))

    assert job.status is JobStatus.COMPLETED, job.error
    words = set(srt_text(rig.media_dir / "spanish_to_english.en.srt").split())
    assert job.source_lang == "spa"
    assert {"the", "children", "park", "fish", "train"} <= words
    assert not {"ciudad", "niños", "parque", "tren"} & words


async def test_dual_track_file_with_source_spanish_transcribes_the_spanish_track(
    rig: PoolRig,
) -> None:
    media = rig.copy("dual_eng_spa.mkv")
    job = await rig.wait(await rig.submit(media, source_lang="spa", target_lang="spa"))

    assert job.status is JobStatus.COMPLETED, job.error
    text = srt_text(rig.media_dir / "dual_eng_spa.es.srt")
    assert word_error_rate(spoken_text("dual_eng_spa.mkv", track=1), text) < 0.25
    assert not {"weather", "brother", "garden"} & set(text.split())


async def test_silence_completes_with_no_segments_no_file_and_says_so(
    rig: PoolRig,
) -> None:
    media = rig.copy("silence.mkv")
    job = await rig.wait(await rig.submit(media))

    assert job.status is JobStatus.COMPLETED
    assert job.segments_count == 0
    assert job.output_path is None
    assert job.error == "No speech found in the audio; no subtitle file was written"
    assert not list(rig.media_dir.glob("silence*.srt"))


@pytest.mark.parametrize(
    ("fixture", "reason"),
    [
        ("truncated.mkv", "is truncated or still being written"),
        ("empty.mkv", "the file is empty (0 bytes)"),
        ("not_media.mkv", "not a readable media file"),
        ("no_audio.mkv", "the file has no audio track"),
    ],
)
async def test_a_bad_file_fails_clearly_while_a_good_one_completes(
    rig: PoolRig, fixture: str, reason: str
) -> None:
    bad = await rig.submit(rig.copy(fixture))
    good = await rig.submit(rig.copy("english.mkv", f"good_{fixture}"))

    failed = await rig.wait(bad)
    completed = await rig.wait(good)

    assert failed.status is JobStatus.FAILED
    assert failed.error is not None
    assert failed.error.startswith(str(rig.media_dir / fixture))
    assert reason in failed.error
    assert failed.retry_count == 0
    assert completed.status is JobStatus.COMPLETED, completed.error
