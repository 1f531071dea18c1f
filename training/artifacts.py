"""Checksums over model folders. No torch: the web process verifies artifacts too."""

from __future__ import annotations

import hashlib
from pathlib import Path


def folder_digest(folder: Path) -> str:
    """sha256 over every file's relative path and content, in a stable order.

    Checkpoint folders from training are excluded: they are resume state, not the model.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"model folder {folder} does not exist")
    digest = hashlib.sha256()
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith("checkpoint-") for part in p.parts)
    )
    if not files:
        raise FileNotFoundError(f"model folder {folder} is empty")
    for path in files:
        relative = path.relative_to(folder).as_posix()
        digest.update(relative.encode() + b"\0")
        file_digest = hashlib.sha256()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                file_digest.update(chunk)
        digest.update(file_digest.digest())
    return digest.hexdigest()


def verify_folder(folder: Path, expected: str) -> str | None:
    """None if the folder matches, else a sentence saying what is wrong."""
    try:
        actual = folder_digest(folder)
    except FileNotFoundError as exc:
        return str(exc)
    if actual != expected:
        return f"model folder {folder} fails its checksum (expected {expected[:12]}…, found {actual[:12]}…)"
    return None
