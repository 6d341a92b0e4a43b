"""The published numbers: the paper's Tables 1-5 as printed (``data/published_results.csv``), and
the printed row of each reproduction variant. Wherever they appear they are labelled "published";
a number measured on the embedded synthetic benchmark is never presented as a THUMOS14 result.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from wtal_kit.config import PAPER_TIOUS
from wtal_kit.data.bundled import bundled_path
from wtal_kit.data.catalog import LAYOUT_NAMES

PUBLISHED_CSV = "published_results.csv"  # a shipped data file: bundled_path(PUBLISHED_CSV)
PUBLISHED_COLUMNS = {**{f"iou_{t:g}": t for t in PAPER_TIOUS}, "avg": "avg"}  # CSV column -> our index
PAPER_DATASETS = LAYOUT_NAMES  # layout -> published dataset name (the CSV names each dataset as its layout does)
PAPER_METHOD = "Islam & Radke (paper)"
PUBLISHED_SOURCE = "published (paper, real {dataset} I3D features, single run)"
OTHER_SOURCE = "published (as printed in the paper's Table {table}; {supervision} supervised; that method's own features)"
SUPERVISION = {"full": "fully", "weak": "weakly"}
DERIVED_AVG = "avg = mean of the four printed tIoU values (the paper prints no avg for this row)"


def published_results(path=None) -> pd.DataFrame:
    """The paper's printed numbers (mAP in %, NaN = not reported); by default the shipped CSV."""
    if path is not None:
        return _read_published(path)
    return _shipped_published().copy()  # read once: the sliders look rows up on every control change


@lru_cache(maxsize=1)
def _shipped_published() -> pd.DataFrame:
    return _read_published(bundled_path(PUBLISHED_CSV))


def _read_published(path) -> pd.DataFrame:
    table = pd.read_csv(path)
    table["variant"] = table["variant"].fillna("")
    return table


def _printed(table: int, dataset: str, method: str, variant: str) -> pd.Series | None:
    """The shipped CSV's row of (table, dataset, method, variant) as printed, or None."""
    rows = _shipped_published()  # read only: no copy
    hit = rows[(rows["table"] == table) & (rows["dataset"] == dataset) & (rows["method"] == method) & (rows["variant"] == variant)]
    return None if hit.empty else hit.iloc[0]


def published_row(table: int = 1, dataset: str = "THUMOS14", method: str = PAPER_METHOD, variant: str = "") -> pd.Series:
    """One published row as a Series indexed like our mAP series (0.1, 0.3, 0.5, 0.7, "avg"), in %."""
    row = _printed(table, dataset, method, variant)
    if row is None:
        raise KeyError(f"no published row for table {table}, {dataset}, {method!r}, {variant!r}")
    values = {key: float(row[column]) for column, key in PUBLISHED_COLUMNS.items()}
    if np.isnan(values["avg"]):
        known = [values[t] for t in PAPER_TIOUS]
        values["avg"] = float(np.mean(known)) if not any(np.isnan(known)) else float("nan")
    return pd.Series(values)


# -- the paper's rows of the reproduction's variants -------------------------------------------
def published_dataset(variant) -> str:
    return PAPER_DATASETS[variant.layout]


def published_for(variant) -> pd.Series | None:
    """The paper's printed row of a variant (mAP in %, index :data:`TIOUS`), or None if it has none."""
    if variant.published is None:
        return None
    table, name = variant.published
    return published_row(table=table, dataset=published_dataset(variant), method=PAPER_METHOD, variant=name)


def avg_is_printed(variant) -> bool:
    table, name = variant.published
    row = _printed(table, published_dataset(variant), PAPER_METHOD, name)
    return row is not None and not pd.isna(row["avg"])


# 0.1's names of this module that moved (wtal_kit/legacy.py): they warn, and go away in 0.3
from wtal_kit import legacy  # noqa: E402

__getattr__ = legacy.old_names("wtal_kit.experiments.published")  # its own name, also when run as __main__
