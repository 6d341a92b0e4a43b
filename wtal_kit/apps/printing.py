"""How the command line and the demo print an mAP table: one labelled row per result, in %.

A number measured on the embedded synthetic benchmark is labelled as such and never presented as a
THUMOS14 result; published numbers (:mod:`wtal_kit.experiments.published`) are labelled "published".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from wtal_kit.evaluate import is_average


def format_map_rows(rows: list[tuple[str, pd.Series]], percent_rows: set[str] = frozenset()) -> str:
    """A plain-text table: one labelled row per (label, mAP series); values shown in %.

    Series of fractions are multiplied by 100 unless their label is in ``percent_rows``.
    """
    columns = []
    for _, series in rows:
        for key in series.index:
            if key not in columns:
                columns.append(key)
    numeric = sorted(c for c in columns if not is_average(c))
    columns = numeric + [c for c in columns if is_average(c)]  # "avg" (the paper's) and any labelled average
    width = max(len(label) for label, _ in rows)
    heads = [c if is_average(c) else "@" + format(c, "g") for c in columns]
    header = "mAP (%)".ljust(width) + "".join(f"{head:>{max(8, len(head) + 2)}}" for head in heads)
    lines = [header, "-" * len(header)]
    for label, series in rows:
        scale = 1.0 if label in percent_rows else 100.0
        cells = []
        for c, head in zip(columns, heads):
            value = series.get(c, np.nan)
            cells.append(f"{'—' if pd.isna(value) else format(scale * float(value), '.1f'):>{max(8, len(head) + 2)}}")
        lines.append(label.ljust(width) + "".join(cells))
    return "\n".join(lines)
