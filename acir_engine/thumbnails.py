"""Where a photo's thumbnail comes from, as the user says it with ``--thumbnail``: ``auto`` (the one
embedded in the photo), ``none``, an image file, or a folder of thumbnails named like the photos
(``b.jpg.png`` or ``b.png`` for ``a/b.jpg``). The one parser behind ``acir sca``, ``acir restore``
and the restoration pipeline."""
from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

import fsspec
import numpy as np

from acir_core.errors import InvalidParameter
from acir_core.imagefile import load_rgb
from acir_engine.inputs import IMAGE_EXTENSIONS, read_bytes

HELP = ("auto: the thumbnail embedded in the photo; none; an image file; or a folder of thumbnails named "
        "like the photos (default auto)")


@dataclass(frozen=True, kw_only=True)
class ThumbnailSpec:
    """``kind``: auto | none | file | folder; ``path`` for the last two."""

    kind: str
    path: str = ""

    @classmethod
    def parse(cls, text: str) -> "ThumbnailSpec":
        """The spec for ``text``; a path that is neither a file nor a folder is an error naming it."""
        if text in ("auto", "none"):
            return cls(kind=text)
        try:
            fs, p = fsspec.core.url_to_fs(text)
            if fs.isdir(p):
                return cls(kind="folder", path=text)
            if fs.exists(p):
                return cls(kind="file", path=text)
        except (ValueError, OSError):
            pass
        raise InvalidParameter("--thumbnail: not auto, none, an image file or a folder", source=text)

    def for_photo(self, name: str) -> np.ndarray | str | None:
        """What the SCA takes for photo ``name`` (its relative name): ``"auto"`` (look in the
        photo), None (no thumbnail) or the image (H×W×3 uint8). A folder without a file for
        the photo falls back to ``"auto"``."""
        if self.kind == "auto":
            return "auto"
        if self.kind == "none":
            return None
        if self.kind == "file":
            return load_rgb(read_bytes(self.path), self.path).rgb
        fs, root = fsspec.core.url_to_fs(self.path)
        rel = re.sub(r"~\d+$", "", name)  # the run's suffix for a second input of one name
        for cand in (rel, posixpath.basename(rel)):  # a/b.jpg: a/b.jpg.png, a/b.png, then b.jpg.png, b.png
            folder = posixpath.join(root.rstrip("/"), posixpath.dirname(cand))
            base = posixpath.basename(cand)
            try:
                entries = sorted(posixpath.basename(e) for e in fs.ls(folder, detail=False))
            except (FileNotFoundError, NotADirectoryError, OSError):
                continue
            for stem in (base, posixpath.splitext(base)[0]):
                for e in entries:
                    if e.startswith(stem + ".") and e.lower().endswith(IMAGE_EXTENSIONS) and e[len(stem) + 1:].count(".") == 0:
                        path = posixpath.join(folder, e)
                        return load_rgb(fs.cat_file(path), path).rgb
        return "auto"
