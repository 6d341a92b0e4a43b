"""Ground truth for evaluation, from any of the three forms wtal-kit reads.

* an ActivityNet-style JSON file (``{"database": ...}``, :mod:`wtal_kit.data.jsonio`);
* a W-TALC annotation folder (``videoname.npy``, ``segments.npy``, ...; :mod:`wtal_kit.data.wtalc`);
* a wtal-kit HDF5 file (feature store or scores file) with an ``annotations`` group
  (:mod:`wtal_kit.data.hdf5`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from wtal_kit.data.annotations import Annotations
from wtal_kit.errors import InputError

__all__ = ["load_ground_truth"]

HDF5_SUFFIXES = (".h5", ".hdf5")


def load_ground_truth(path, subset: str | None = None, classes=None) -> tuple[pd.DataFrame, tuple]:
    """Read ground truth; return (table, class names).

    path: an ActivityNet JSON (``.json``), a W-TALC annotation folder, or a wtal-kit
        HDF5 file (``.h5`` / ``.hdf5``) with an ``annotations`` group.
    subset: keep the instances of the videos of this subset only (all when None).
    classes: the class names the detections use (e.g. a scores file's). When given,
        a ground-truth label outside them is an :class:`~wtal_kit.errors.InputError`
        and they are the class names returned (in their order); otherwise the
        file's own class list is returned.

    The table has the columns ``video, label, t_start, t_end`` (:mod:`wtal_kit.data.tables`).
    Raises :class:`~wtal_kit.errors.InputError` for a missing path, an unknown form or
    malformed content.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if path.is_dir():
        from wtal_kit.data.wtalc import load_wtalc_annotations

        annotations = load_wtalc_annotations(path)
    elif suffix == ".json":
        from wtal_kit.data.jsonio import read_ground_truth_json

        annotations = read_ground_truth_json(path, subset=subset, classes=classes)  # reads that subset's videos only
        subset = None
    elif suffix in HDF5_SUFFIXES:
        from wtal_kit.data.hdf5 import read_file_annotations  # h5py only when needed

        annotations = read_file_annotations(path)
    elif not path.exists():
        raise InputError("ground truth not found (expected an ActivityNet JSON, a W-TALC annotation folder or a wtal-kit HDF5 file)", file=path)
    else:
        raise InputError(
            f"unknown ground-truth form (suffix {suffix or 'none'!r}): expected an ActivityNet JSON (.json), "
            "a W-TALC annotation folder or a wtal-kit HDF5 file (.h5, .hdf5)",
            file=path,
        )
    table = annotations.ground_truth(subset)  # InputError naming the subsets present if subset is absent
    if classes is None:
        return table, tuple(annotations.classes)
    classes = tuple(str(c) for c in classes)
    _check_labels(table, classes, annotations)
    return table, classes


def _check_labels(table: pd.DataFrame, classes: tuple, annotations: Annotations) -> None:
    labels = table["label"].to_numpy()
    unknown = ~np.isin(labels, np.array(classes, dtype=object))
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        raise InputError(
            f"ground-truth label {labels[row]!r} is not one of the {len(classes)} classes of the detections",
            file=annotations.source or annotations.name,
            video=table["video"].iat[row],
            field="label",
        )
