"""Still images as a frame source: one file, a folder or a glob pattern."""

from __future__ import annotations

import glob
import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from ferlite.edge.imagefiles.imageio import read_image
from ferlite.edge.sources.frames import Frame, _Source
from ferlite.edge.sources.listing import Listing, list_folder, list_paths
from ferlite.errors import ImageReadError, SourceError
from ferlite.tables import printable

log = logging.getLogger(__name__)

#: Unreadable photos named one by one as warnings; the rest at debug level (the summary counts them all).
SHOWN_SKIPS = 3


class ImageSource(_Source):
    """Still images: one file, a folder (sorted, not recursive) or a glob pattern; timestamps are the frame
    index. Every entry named like an image is read; one that cannot be used is skipped with a warning and kept
    in ``skipped`` as (path, one-line reason). Other entries are ignored, counted by kind in ``ignored``
    (edge.sources.listing)."""

    def __init__(self, spec: str | Path):
        super().__init__()
        self.spec = str(spec)
        self.name = self.spec
        self.files: list[Path] = []
        self.ignored: Counter = Counter()
        self.skipped: list[tuple[str, str]] = []

    def _open(self) -> None:
        p = Path(self.spec)
        if p.is_dir():
            listing = list_folder(p)
        elif p.is_file():
            listing = Listing([p])
        else:
            listing = list_paths(sorted(glob.glob(self.spec, recursive=True)))
        if not listing.files:
            raise SourceError(f"{self.spec}: no image files found")
        self.files, self.ignored, self.skipped = listing.files, listing.ignored, []

    def _frames(self) -> Iterator[Frame]:
        """The readable images; a single named file that cannot be read, or a folder or glob none of whose
        images can be, is a SourceError (not an empty run)."""
        index = 0
        for path in self.files:
            try:
                loaded = read_image(path)
            except ImageReadError as exc:
                if Path(self.spec).is_file():
                    raise SourceError(f"{path}: {exc}") from None
                if len(self.skipped) == SHOWN_SKIPS:
                    log.warning("further unreadable files are counted in the summary, not shown (-v shows them)")
                shown = len(self.skipped) < SHOWN_SKIPS
                log.log(logging.WARNING if shown else logging.DEBUG, "skipped %s: %s", printable(path), exc)
                self.skipped.append((str(path), str(exc)))
                continue
            yield Frame(loaded.image, float(index), index, path=str(path))
            index += 1
        if index == 0:
            raise SourceError(f"{self.spec}: none of its {len(self.files)} image file(s) could be read")
