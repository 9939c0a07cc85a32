"""Path resolution, confinement to the allowed roots, and directory listings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from transcriptarr import paths
from transcriptarr.errors import Forbidden, InvalidInput, NotFound
from transcriptarr.paths import (
    MAX_PATH_CHARS,
    OUTSIDE_ROOTS_DETAIL,
    AllowedRoots,
    browse,
    common_paths,
    resolve_confined,
)


@pytest.fixture
def media(tmp_path: Path) -> Path:
    """A root with two shows, a hidden folder, a file and an escaping symlink."""
    root = tmp_path / "media"
    for name in ("anime", "Movies", "tv", ".cache"):
        (root / name).mkdir(parents=True)
    (root / "notes.txt").write_text("not a directory")
    (tmp_path / "media-evil").mkdir()
    (tmp_path / "secret").mkdir()
    (root / "escape").symlink_to(tmp_path / "secret")
    (root / "shortcut").symlink_to(root / "tv")
    return root


@pytest.fixture
def roots(media: Path) -> AllowedRoots:
    return AllowedRoots.from_setting([str(media)])


def refused(raw_path: str, roots: AllowedRoots) -> str:
    with pytest.raises(Forbidden) as caught:
        resolve_confined(raw_path, roots)
    return caught.value.detail


def test_a_root_itself_is_inside_the_roots(media: Path, roots: AllowedRoots) -> None:
    assert resolve_confined(str(media), roots) == media


def test_dot_dot_that_stays_inside_a_root_is_resolved(
    media: Path, roots: AllowedRoots
) -> None:
    assert resolve_confined(f"{media}/tv/../anime", roots) == media / "anime"


def test_every_kind_of_escape_is_refused_with_the_same_text(
    media: Path, roots: AllowedRoots, tmp_path: Path
) -> None:
    escapes = [
        f"{media}/../secret",
        f"{media}/../../../../etc",
        "/etc",
        str(tmp_path / "media-evil"),
        f"{media}/escape",
        f"{media}/escape/deeper/missing",
        f"{media}/tv\x00/../../secret",
        "/" + "a" * MAX_PATH_CHARS,
        "media/tv",
        "../secret",
        "",
    ]

    details = {refused(raw, roots) for raw in escapes}

    assert details == {OUTSIDE_ROOTS_DETAIL}


def test_a_missing_path_outside_the_roots_is_refused_not_reported_missing(
    roots: AllowedRoots,
) -> None:
    assert refused("/no/such/place", roots) == OUTSIDE_ROOTS_DETAIL


def test_a_path_of_exactly_the_length_limit_is_judged_by_where_it_is(
    media: Path, roots: AllowedRoots
) -> None:
    padding = "x" * (MAX_PATH_CHARS - len(str(media)) - 1)
    raw = f"{media}/{padding}"

    assert len(raw) == MAX_PATH_CHARS
    assert resolve_confined(raw, roots) == media / padding


def test_no_roots_means_every_path_is_refused() -> None:
    assert refused("/", AllowedRoots.from_setting([])) == OUTSIDE_ROOTS_DETAIL


def test_relative_roots_in_the_setting_are_ignored(media: Path) -> None:
    roots = AllowedRoots.from_setting(["media", str(media), "", str(media)])

    assert roots.roots == (media,)


def test_a_root_given_through_a_symlink_allows_the_real_directory(
    media: Path, tmp_path: Path
) -> None:
    (tmp_path / "library").symlink_to(media)
    roots = AllowedRoots.from_setting([str(tmp_path / "library")])

    assert resolve_confined(str(tmp_path / "library" / "tv"), roots) == media / "tv"


def test_browsing_lists_visible_directories_sorted_without_case(
    media: Path, roots: AllowedRoots
) -> None:
    listing = browse(str(media), roots)

    assert [item.name for item in listing.items] == [
        "anime",
        "Movies",
        "shortcut",
        "tv",
    ]
    assert listing.items[0].model_dump() == {
        "name": "anime",
        "path": str(media / "anime"),
        "is_directory": True,
        "is_readable": True,
    }


def test_browsing_a_root_shows_no_parent(media: Path, roots: AllowedRoots) -> None:
    listing = browse(str(media), roots)

    assert (listing.current_path, listing.parent_path) == (str(media), None)


def test_browsing_below_a_root_shows_the_parent(
    media: Path, roots: AllowedRoots
) -> None:
    listing = browse(f"{media}/tv/", roots)

    assert (listing.current_path, listing.parent_path) == (
        str(media / "tv"),
        str(media),
    )


def test_browsing_the_filesystem_root_shows_no_parent() -> None:
    listing = browse("/", AllowedRoots.from_setting(["/"]))

    assert listing.parent_path is None
    assert all(not item.name.startswith(".") for item in listing.items)


def test_a_symlink_inside_a_root_to_inside_it_is_listed_and_browsable(
    media: Path, roots: AllowedRoots
) -> None:
    listing = browse(f"{media}/shortcut", roots)

    assert listing.current_path == str(media / "tv")


def test_browsing_a_missing_directory_is_not_found(
    media: Path, roots: AllowedRoots
) -> None:
    with pytest.raises(NotFound, match="Path does not exist"):
        browse(f"{media}/nothing-here", roots)


def test_browsing_a_file_is_refused_as_not_a_directory(
    media: Path, roots: AllowedRoots
) -> None:
    with pytest.raises(InvalidInput, match="Path is not a directory"):
        browse(f"{media}/notes.txt", roots)


def test_browsing_below_a_file_is_not_found(media: Path, roots: AllowedRoots) -> None:
    with pytest.raises(NotFound):
        browse(f"{media}/notes.txt/inner", roots)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every directory")
def test_browsing_an_unreadable_directory_is_permission_denied(
    media: Path, roots: AllowedRoots
) -> None:
    (media / "tv").chmod(0)
    try:
        with pytest.raises(Forbidden, match=r"^Permission denied$"):
            browse(f"{media}/tv", roots)
    finally:
        (media / "tv").chmod(0o755)


def test_an_unreadable_directory_is_permission_denied_even_for_root(
    media: Path, roots: AllowedRoots, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The test may run as root, who reads everything: the refusal is simulated.
    locked = media / "tv"
    real_access = os.access

    def access(path: object, mode: int) -> bool:
        return Path(str(path)) != locked and real_access(str(path), mode)

    monkeypatch.setattr(os, "access", access)

    assert browse(str(media), roots).items[-1].is_readable is False
    with pytest.raises(Forbidden, match=r"^Permission denied$"):
        browse(str(locked), roots)


def test_a_directory_that_refuses_listing_is_permission_denied(
    media: Path, roots: AllowedRoots, monkeypatch: pytest.MonkeyPatch
) -> None:
    def scandir(path: object) -> object:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(os, "scandir", scandir)

    with pytest.raises(Forbidden, match=r"^Permission denied$"):
        browse(str(media), roots)


def test_common_paths_are_the_existing_roots(media: Path, tmp_path: Path) -> None:
    roots = AllowedRoots.from_setting([str(media), str(tmp_path / "gone")])

    assert [item.model_dump() for item in common_paths(roots)] == [
        {
            "name": str(media),
            "path": str(media),
            "is_directory": True,
            "is_readable": True,
        }
    ]


def test_common_paths_add_media_folders_only_when_inside_the_roots(
    media: Path,
) -> None:
    everything = common_paths(AllowedRoots.from_setting(["/"]))
    only_media = common_paths(AllowedRoots.from_setting([str(media)]))

    present = [d for d in paths.WELL_KNOWN_MEDIA_DIRS if os.path.isdir(d)]
    assert [item.path for item in everything] == [
        "/",
        *dict.fromkeys(os.path.realpath(d) for d in present),
    ]
    assert [item.path for item in only_media] == [str(media)]
