"""The exception tree survives the trip across a Ray actor boundary."""

from __future__ import annotations

import pickle

import pytest

from transcriptarr.errors import TranscriptarrError, all_error_classes


@pytest.mark.parametrize("cls", all_error_classes(), ids=lambda cls: cls.__name__)
def test_every_error_class_pickles_with_its_fields(
    cls: type[TranscriptarrError],
) -> None:
    error = cls("something went wrong", field="file_path")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is cls
    assert copy.detail == "something went wrong"
    assert copy.field == "file_path"
    assert copy.status_code == error.status_code
    assert copy.to_body() == {"detail": "something went wrong", "field": "file_path"}


def test_tree_covers_the_status_codes_the_api_answers() -> None:
    codes = {cls.status_code for cls in all_error_classes()}
    assert {400, 401, 403, 404, 409, 413, 500, 503} <= codes
