"""What the data is, as a fingerprint, without decoding an image: the stages that read the data
(train, calibrate) key their records on it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dense_edge.fileio import sha256_json
from dense_edge.recipe import Recipe


def data_identity(recipe: Recipe) -> dict[str, Any]:
    """The data settings, and for file sources the listing of every file below ``data.root``
    with its size."""
    d = recipe.data
    ident: dict[str, Any] = {"settings": d.model_dump(mode="json")}
    if d.root and Path(d.root).is_dir():
        root = Path(d.root)
        listing = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                f = Path(dirpath) / name
                try:
                    listing.append([f.relative_to(root).as_posix(), f.stat().st_size])
                except OSError:
                    listing.append([f.relative_to(root).as_posix(), None])
        ident["files"] = len(listing)
        ident["listing_sha256"] = sha256_json(listing)
    return ident
