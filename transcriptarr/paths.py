"""Path resolution and confinement for paths that come from requests.

A path from a request is resolved first (``os.path.realpath``: symlinks, ``..``
and repeated slashes) and checked after, against the allowed roots by path
components: ``/media-evil`` is not inside ``/media``, and a symlink inside a
root that points out of it resolves to where it points, so it is refused.

Every kind of escape (outside the roots, a NUL byte, an over-long or relative
path) is refused with the same 403 and the same text, so the answer says
nothing about what exists outside the roots.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from transcriptarr.errors import Forbidden, InvalidInput, NotFound

logger = logging.getLogger(__name__)

MAX_PATH_CHARS = 4096
OUTSIDE_ROOTS_DETAIL = "Path is outside the directories this server may show"
PERMISSION_DENIED_DETAIL = "Permission denied"
WELL_KNOWN_MEDIA_DIRS = ("/media", "/mnt", "/data", "/srv")


class FilesystemItem(BaseModel):
    name: str
    path: str
    is_directory: bool
    is_readable: bool


class DirectoryListing(BaseModel):
    current_path: str
    parent_path: str | None
    items: list[FilesystemItem]


@dataclass(frozen=True, slots=True)
class AllowedRoots:
    """The resolved directories that request paths must stay inside."""

    roots: tuple[Path, ...]

    @classmethod
    def from_setting(cls, configured: Iterable[str]) -> AllowedRoots:
        """Resolve the ``filesystem_roots`` setting; relative entries are ignored.

        Args:
            configured: The paths as the setting lists them.
        """
        resolved: list[Path] = []
        for entry in configured:
            root = _resolve_root(entry)
            if root is not None and root not in resolved:
                resolved.append(root)
        return cls(tuple(resolved))

    def contains(self, resolved: Path) -> bool:
        """Whether a resolved path is one of the roots or lies under one."""
        return any(resolved.is_relative_to(root) for root in self.roots)

    def default_start(self) -> str:
        """Where browsing starts without a path: ``/`` if allowed, else a root."""
        if self.contains(Path("/")) or not self.roots:
            return "/"
        return str(self.roots[0])


def _resolve_root(entry: str) -> Path | None:
    if not _is_plausible_path(entry):
        logger.debug("Ignoring filesystem root that is not an absolute path")
        return None
    return Path(os.path.realpath(entry))


def _is_plausible_path(raw: str) -> bool:
    return raw.startswith("/") and "\x00" not in raw and len(raw) <= MAX_PATH_CHARS


def resolve_confined(raw_path: str, roots: AllowedRoots) -> Path:
    """Resolve a path from a request and require it inside the roots.

    Args:
        raw_path: The path as the client sent it (already URL-decoded).
        roots: The allowed roots.

    Returns:
        The resolved path; it may not exist.

    Raises:
        Forbidden: With one uniform text, for every kind of escape.
    """
    if not _is_plausible_path(raw_path):
        raise Forbidden(OUTSIDE_ROOTS_DETAIL)
    try:
        resolved = Path(os.path.realpath(raw_path))
    except (OSError, ValueError) as exc:
        raise Forbidden(OUTSIDE_ROOTS_DETAIL) from exc
    if not roots.contains(resolved):
        raise Forbidden(OUTSIDE_ROOTS_DETAIL)
    return resolved


def browse(raw_path: str, roots: AllowedRoots) -> DirectoryListing:
    """The readable listing of one directory inside the roots.

    Args:
        raw_path: The directory as the client sent it.
        roots: The allowed roots.

    Raises:
        Forbidden: Outside the roots (uniform text), or not readable.
        NotFound: The directory does not exist.
        InvalidInput: The path is not a directory.
    """
    directory = resolve_confined(raw_path, roots)
    _require_listable(directory)
    return DirectoryListing(
        current_path=str(directory),
        parent_path=_parent_inside(directory, roots),
        items=_child_directories(directory, roots),
    )


def common_paths(roots: AllowedRoots) -> list[FilesystemItem]:
    """The roots that exist, then well-known media folders inside them."""
    candidates = [*roots.roots, *(_resolved(d) for d in WELL_KNOWN_MEDIA_DIRS)]
    found: list[FilesystemItem] = []
    for path in dict.fromkeys(candidates):
        # os.path.isdir, unlike Path.is_dir, answers False on EACCES too.
        if roots.contains(path) and os.path.isdir(path):
            found.append(_item(str(path), path))
    return found


def _resolved(raw_path: str) -> Path:
    return Path(os.path.realpath(raw_path))


def _require_listable(directory: Path) -> None:
    try:
        mode = os.stat(directory).st_mode
    except PermissionError as exc:
        raise Forbidden(PERMISSION_DENIED_DETAIL) from exc
    except OSError as exc:
        raise NotFound("Path does not exist") from exc
    if not stat.S_ISDIR(mode):
        raise InvalidInput("Path is not a directory", field="path")
    if not _is_readable(directory):
        raise Forbidden(PERMISSION_DENIED_DETAIL)


def _is_readable(directory: Path) -> bool:
    # Listing a directory needs read; entering its children needs execute.
    return os.access(directory, os.R_OK | os.X_OK)


def _parent_inside(directory: Path, roots: AllowedRoots) -> str | None:
    parent = directory.parent
    if parent == directory or not roots.contains(parent):
        return None
    return str(parent)


def _child_directories(directory: Path, roots: AllowedRoots) -> list[FilesystemItem]:
    try:
        items = list(_scan(directory, roots))
    except PermissionError as exc:
        raise Forbidden(PERMISSION_DENIED_DETAIL) from exc
    except FileNotFoundError as exc:
        raise NotFound("Path does not exist") from exc
    return sorted(items, key=lambda item: (item.name.casefold(), item.name))


def _scan(directory: Path, roots: AllowedRoots) -> Iterator[FilesystemItem]:
    with os.scandir(directory) as entries:
        for entry in entries:
            if _is_shown(entry, roots):
                yield _item(entry.name, directory / entry.name)


def _is_shown(entry: os.DirEntry[str], roots: AllowedRoots) -> bool:
    if entry.name.startswith(".") or not _is_utf8(entry.name):
        return False
    try:
        if not entry.is_dir():
            return False
        if entry.is_symlink():
            return roots.contains(_resolved(entry.path))
    except OSError:
        return False
    return True


def _is_utf8(name: str) -> bool:
    # Names that are not valid UTF-8 arrive with surrogate escapes; JSON cannot
    # carry them, and a client could not send them back.
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _item(name: str, path: Path) -> FilesystemItem:
    return FilesystemItem(
        name=name,
        path=str(path),
        is_directory=True,
        is_readable=_is_readable(path),
    )
