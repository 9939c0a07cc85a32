"""The settings catalog: every default fits its type; bad values are 400s."""

from __future__ import annotations

import pytest

from transcriptarr.catalog import DEFAULTS, SettingDefault, normalise_value, parse_value
from transcriptarr.errors import InvalidInput
from transcriptarr.models import SettingValueType as T


@pytest.mark.parametrize("entry", DEFAULTS, ids=lambda entry: entry.key)
def test_every_default_parses_as_its_own_type(entry: SettingDefault) -> None:
    parse_value(entry.value, entry.value_type, key=entry.key)


def test_catalog_covers_every_part_the_issue_names() -> None:
    categories = {entry.category for entry in DEFAULTS}
    assert categories >= {
        "general",
        "workers",
        "transcription",
        "scanner",
        "queue",
        "output",
        "bazarr",
    }
    assert len({entry.key for entry in DEFAULTS}) == len(DEFAULTS)


@pytest.mark.parametrize(
    ("raw", "kind", "expected"),
    [
        ("42", T.INTEGER, 42),
        (" 2.5 ", T.FLOAT, 2.5),
        ("Yes", T.BOOLEAN, True),
        ("off", T.BOOLEAN, False),
        ("/a, /b,,", T.LIST, ["/a", "/b"]),
        ('{"a": 1}', T.JSON, {"a": 1}),
    ],
)
def test_values_parse_to_python(raw: str, kind: T, expected: object) -> None:
    assert parse_value(raw, kind) == expected


@pytest.mark.parametrize(
    ("raw", "kind"),
    [("many", T.INTEGER), ("1.x", T.FLOAT), ("maybe", T.BOOLEAN), ("{", T.JSON)],
)
def test_values_that_do_not_fit_are_refused_naming_the_key(raw: str, kind: T) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_value(raw, kind, key="worker_cpu_count")
    assert caught.value.field == "worker_cpu_count"
    assert "worker_cpu_count" in caught.value.detail


def test_booleans_are_stored_in_one_spelling() -> None:
    assert normalise_value("YES", T.BOOLEAN) == "true"
    assert normalise_value("0", T.BOOLEAN) == "false"
