"""Zip archives: unpack beside the archive (bounded), list the members, show each member's text."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

#: Refuse archives that would unpack to more than this many bytes or members (zip bombs).
MAX_UNPACKED_BYTES = 512 << 20
MAX_MEMBERS = 2_000
#: Share of the output each member's text may take, at least this many characters.
MIN_MEMBER_CHARS = 2_000
TOTAL_CHARS = 20_000


def extraction_folder(archive: Path) -> Path:
    """Where ``archive`` is unpacked: ``<name>_extracted`` beside it (``data.zip`` -> ``data_extracted``)."""
    return archive.with_name(archive.stem + "_extracted")


def _members(archive: zipfile.ZipFile, name: str) -> list[zipfile.ZipInfo]:
    members = [info for info in archive.infolist() if not info.is_dir()]
    if len(members) > MAX_MEMBERS:
        raise ValueError(f"{name} holds {len(members)} files; inspect_file unpacks at most {MAX_MEMBERS}")
    total = sum(info.file_size for info in members)
    if total > MAX_UNPACKED_BYTES:
        raise ValueError(f"{name} would unpack to {total:,} bytes; the limit is {MAX_UNPACKED_BYTES:,}")
    return members


def unpack(path: Path) -> tuple[Path, list[Path]]:
    """Unpack ``path`` into :func:`extraction_folder`; return the folder and its member files.

    ``zipfile`` keeps members inside the folder (absolute names and ``..`` are neutralised); members
    are written again on every call, so edits the agent made to unpacked copies are replaced.
    """
    folder = extraction_folder(path)
    with zipfile.ZipFile(path) as archive:
        files = [Path(archive.extract(info, folder)) for info in _members(archive, path.name)]
    return folder, files


def extract_member(path: Path, member: str) -> Path:
    """Unpack the archive ``path`` and return the unpacked file of ``member`` (``"inner/a.csv"``)."""
    folder, files = unpack(path)
    target = folder / member
    if target not in files:
        names = [f.relative_to(folder).as_posix() for f in files][:20]
        raise FileNotFoundError(f"{path.name} has no member {member!r} (members: {names})")
    return target


def archive_text(path: Path, read: Callable[[Path], str]) -> str:
    """A listing of the archive's members followed by each member's text, read with ``read``."""
    try:
        folder, files = unpack(path)
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{path.name} is not a valid zip archive ({exc})") from None
    shown = lambda f: f.relative_to(path.parent).as_posix()  # noqa: E731 - a one-line label helper
    lines = [f"Archive {path.name}: {len(files)} files, unpacked into {shown(folder)}/"]
    lines += [f"- {shown(f)} ({f.stat().st_size:,} bytes)" for f in files]
    budget = max(MIN_MEMBER_CHARS, TOTAL_CHARS // max(len(files), 1))
    for member in files:
        try:
            text = read(member)
        except (ValueError, OSError, ImportError) as exc:
            text = f"(cannot show this file: {exc})"
        except Exception as exc:  # noqa: BLE001 - a broken member must not hide the others
            text = f"(cannot show this file: {type(exc).__name__}: {exc})"
        if len(text) > budget:
            text = text[:budget] + f"\n... [cut: {len(text) - budget} more characters; inspect_file({shown(member)!r})]"
        lines += ["", f"=== {shown(member)} ===", text]
    return "\n".join(lines)
