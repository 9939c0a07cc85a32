"""The Filesystem API over HTTP, on the real app with in-process actors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from yarl import URL

from transcriptarr import paths
from transcriptarr.paths import MAX_PATH_CHARS, OUTSIDE_ROOTS_DETAIL

Client = TestClient[Any, Any]
MEDIA_DIRS_RESOLVED = {os.path.realpath(d) for d in paths.WELL_KNOWN_MEDIA_DIRS}


@pytest.fixture
def media(tmp_path: Path) -> Path:
    root = tmp_path / "media"
    for name in ("movies", "Anime", ".hidden", "%2e%2e"):
        (root / name).mkdir(parents=True)
    (root / "episode.mkv").write_bytes(b"\x1a\x45\xdf\xa3")
    (tmp_path / "media-evil" / "loot").mkdir(parents=True)
    (tmp_path / "secret" / "loot").mkdir(parents=True)
    (root / "escape").symlink_to(tmp_path / "secret")
    return root


async def set_roots(api: Client, *roots: Path | str) -> None:
    value = ",".join(str(root) for root in roots)
    response = await api.put("/api/settings/filesystem_roots", json={"value": value})
    assert response.status == 200


async def browse_raw(api: Client, raw_query_value: str) -> tuple[int, str]:
    """GET browse with the query value sent byte for byte as given."""
    base = str(api.make_url("/api/filesystem/browse"))
    url = URL(f"{base}?path={raw_query_value}", encoded=True)
    async with api.session.get(url) as response:
        return response.status, await response.text()


async def test_browsing_a_root_lists_its_directories_as_the_spec_shapes_them(
    api: Client, media: Path
) -> None:
    await set_roots(api, media)

    response = await api.get("/api/filesystem/browse", params={"path": str(media)})

    assert response.status == 200
    assert await response.json() == {
        "current_path": str(media),
        "parent_path": None,
        "items": [
            {
                "name": "%2e%2e",
                "path": str(media / "%2e%2e"),
                "is_directory": True,
                "is_readable": True,
            },
            {
                "name": "Anime",
                "path": str(media / "Anime"),
                "is_directory": True,
                "is_readable": True,
            },
            {
                "name": "movies",
                "path": str(media / "movies"),
                "is_directory": True,
                "is_readable": True,
            },
        ],
    }


async def test_browsing_a_subdirectory_links_back_to_its_parent(
    api: Client, media: Path
) -> None:
    await set_roots(api, media)

    response = await api.get(
        "/api/filesystem/browse", params={"path": f"{media}/movies"}
    )

    body = await response.json()
    assert (body["current_path"], body["parent_path"]) == (
        str(media / "movies"),
        str(media),
    )


async def test_browsing_without_a_path_starts_at_the_filesystem_root(
    api: Client,
) -> None:
    response = await api.get("/api/filesystem/browse")

    body = await response.json()
    assert response.status == 200
    assert (body["current_path"], body["parent_path"]) == ("/", None)


async def test_browsing_without_a_path_starts_at_the_first_root_if_slash_is_off_limits(
    api: Client, media: Path
) -> None:
    await set_roots(api, media)

    response = await api.get("/api/filesystem/browse")

    assert (await response.json())["current_path"] == str(media)


async def test_browsing_a_missing_directory_is_404(api: Client, media: Path) -> None:
    await set_roots(api, media)

    response = await api.get(
        "/api/filesystem/browse", params={"path": f"{media}/series"}
    )

    assert response.status == 404
    assert await response.json() == {"detail": "Path does not exist"}


async def test_browsing_a_file_is_400(api: Client, media: Path) -> None:
    await set_roots(api, media)

    response = await api.get(
        "/api/filesystem/browse", params={"path": f"{media}/episode.mkv"}
    )

    assert response.status == 400
    assert (await response.json())["detail"] == "Path is not a directory"


async def test_browsing_an_unreadable_directory_is_403_permission_denied(
    api: Client, media: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The suite may run as root, who reads everything: the refusal is simulated.
    locked = str(media / "movies")
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode: str(p) != locked and real_access(p, mode)
    )
    await set_roots(api, media)

    response = await api.get("/api/filesystem/browse", params={"path": locked})

    assert response.status == 403
    assert await response.json() == {"detail": "Permission denied"}


TRAVERSALS = [
    pytest.param("{media}/../secret", id="dot-dot"),
    pytest.param("{media}/%2e%2e/secret", id="encoded-dots"),
    pytest.param("{media}/..%2fsecret", id="encoded-slash"),
    pytest.param("{media}%2f..%2f..%2f..%2fetc", id="all-encoded"),
    pytest.param("{media}/%2E%2E%2Fsecret%2Floot", id="upper-case-encoding"),
    pytest.param("/etc", id="absolute-outside"),
    pytest.param("{tmp}/secret/loot", id="absolute-missing-from-roots"),
    pytest.param("{tmp}/media-evil", id="sibling-with-common-prefix"),
    pytest.param("{tmp}/media-evil/loot", id="inside-sibling"),
    pytest.param("{media}/escape", id="symlink-pointing-out"),
    pytest.param("{media}/escape/loot", id="through-symlink"),
    pytest.param("{media}/movies%00/../../secret", id="nul-byte"),
    pytest.param("{media}/" + "a" * MAX_PATH_CHARS, id="over-long"),
    pytest.param("../secret", id="relative"),
    pytest.param("{tmp}/no/such/place", id="missing-outside"),
]


@pytest.mark.parametrize("template", TRAVERSALS)
async def test_every_escape_from_the_roots_is_refused_with_one_uniform_403(
    api: Client, media: Path, tmp_path: Path, template: str
) -> None:
    await set_roots(api, media)

    status, text = await browse_raw(api, template.format(media=media, tmp=tmp_path))

    assert status == 403
    assert text == '{"detail":"' + OUTSIDE_ROOTS_DETAIL + '"}'


DOUBLE_ENCODED = [
    pytest.param("{media}/%252e%252e/secret", id="double-encoded-dots"),
    pytest.param("{media}/..%252fsecret", id="double-encoded-slash"),
    pytest.param("{media}/%252e%252e%252fsecret", id="double-encoded-all"),
]


@pytest.mark.parametrize("template", DOUBLE_ENCODED)
async def test_double_encoded_traversal_stays_a_literal_name_inside_the_root(
    api: Client, media: Path, template: str
) -> None:
    await set_roots(api, media)

    status, text = await browse_raw(api, template.format(media=media))

    assert status == 404
    assert "loot" not in text


async def test_a_folder_literally_named_with_percent_signs_is_browsable(
    api: Client, media: Path
) -> None:
    await set_roots(api, media)

    status, text = await browse_raw(api, f"{media}/%252e%252e")

    assert status == 200
    assert "loot" not in text


async def test_a_symlink_pointing_out_of_a_root_is_not_listed(
    api: Client, media: Path
) -> None:
    await set_roots(api, media)

    response = await api.get("/api/filesystem/browse", params={"path": str(media)})

    names = [item["name"] for item in (await response.json())["items"]]
    assert "escape" not in names


async def test_the_parent_of_a_root_is_hidden_when_it_is_outside_the_roots(
    api: Client, media: Path
) -> None:
    await set_roots(api, media / "movies", media / "Anime")

    response = await api.get(
        "/api/filesystem/browse", params={"path": str(media / "movies")}
    )

    assert (await response.json())["parent_path"] is None


async def test_common_paths_list_the_existing_roots(
    api: Client, media: Path, tmp_path: Path
) -> None:
    await set_roots(api, media, tmp_path / "not-there")

    response = await api.get("/api/filesystem/common-paths")

    assert response.status == 200
    assert await response.json() == [
        {
            "name": str(media),
            "path": str(media),
            "is_directory": True,
            "is_readable": True,
        }
    ]


async def test_common_paths_with_the_default_roots_start_at_slash(
    api: Client,
) -> None:
    response = await api.get("/api/filesystem/common-paths")

    body = await response.json()
    assert body[0] == {
        "name": "/",
        "path": "/",
        "is_directory": True,
        "is_readable": True,
    }
    assert {item["path"] for item in body[1:]} <= MEDIA_DIRS_RESOLVED
