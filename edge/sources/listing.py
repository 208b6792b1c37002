"""Which entries of a folder or glob are images to read, and which are ignored (counted by kind).

An entry named like an image (:data:`IMAGE_EXTENSIONS`) is always a candidate, whatever it is: a FIFO, a
folder, a link that loops or points nowhere is handed to the reader, which says why it cannot be used, so it
gets a reason in the output instead of vanishing. Every other entry is ignored and counted: files not named
like an image (notes.txt, clip.mp4) and, when not recursing, folders. Recursion never follows a linked folder
(no loops). Entries come sorted by path, with names as the file system gives them: bytes that are not UTF-8
stay surrogate escapes (``os.fsdecode``), so the paths open the same files again. Only the standard library.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm", ".ppm",
                              ".pbm", ".pnm", ".pam"})
#: How an ignored entry is counted.
NOT_AN_IMAGE_NAME = "not named like an image"
FOLDER = "folder"


@dataclass
class Listing:
    """The candidate image files, and the ignored entries counted by kind."""

    files: list[Path] = field(default_factory=list)
    ignored: Counter = field(default_factory=Counter)


def is_image_name(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _is_folder(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def list_folder(folder: str | Path, recursive: bool = False) -> Listing:
    """The images of ``folder`` (and its subfolders with ``recursive``), and what was ignored."""
    listing = Listing()
    pending = [Path(folder)]
    while pending:
        current = pending.pop()
        try:
            entries = sorted(os.scandir(current), key=lambda e: e.name)
        except OSError:  # an unreadable subfolder: counted, not fatal (the top folder is checked by the caller)
            listing.ignored["unreadable folder"] += 1
            continue
        for entry in entries:
            folder_entry = _is_folder(entry)
            if recursive and folder_entry:
                pending.append(Path(entry.path))
            if is_image_name(entry.name):
                listing.files.append(Path(entry.path))
            elif not (recursive and folder_entry):
                listing.ignored[FOLDER if folder_entry else NOT_AN_IMAGE_NAME] += 1
    listing.files.sort()
    return listing


def list_paths(paths: Iterable[str | Path]) -> Listing:
    """The images among ``paths`` (a glob's matches), and what was ignored."""
    listing = Listing()
    for p in map(Path, paths):
        if is_image_name(p):
            listing.files.append(p)
        else:
            listing.ignored[FOLDER if p.is_dir() and not p.is_symlink() else NOT_AN_IMAGE_NAME] += 1
    return listing
