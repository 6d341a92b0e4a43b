"""The explorer's files: what it may open, how it opens a run or a scores file, another method's results, exports.

Everything here is plain Python over the library (no widget): the explorer (:mod:`widgets.explorer`)
calls it, and its tests call it directly.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

import wtal_kit
from wtal_kit.data.runfolder import held_out_scores


class PathPolicy:
    """Only files under the configured folders can be opened from the page."""

    def __init__(self, roots):
        self.roots = [Path(root).resolve() for root in roots]

    def check(self, text: str) -> Path:
        path = Path(text.strip()).expanduser()
        resolved = path.resolve()
        if not any(resolved == root or root in resolved.parents for root in self.roots):
            raise wtal_kit.InputError("outside the folders this explorer may open (" + ", ".join(map(str, self.roots)) + ")", file=path)
        return resolved


def open_scores(path: Path) -> wtal_kit.Scores:
    """A scores file, or the held-out split's scores of a run directory (read without torch when they exist)."""
    path = Path(path)
    if path.is_dir():
        ready = held_out_scores(path)
        if ready is None:  # no scores file yet: the run computes it (torch, the model)
            return wtal_kit.load_run(path).scores(progress=False)
        path = ready
    return wtal_kit.read_scores(path)


def read_compared(path: Path, localizer: wtal_kit.Localizer) -> pd.DataFrame:
    """An ActivityNet-style results JSON whose videos must all belong to the explored split."""
    detections = wtal_kit.read_detections_json(path, classes=localizer.classes)
    unknown = sorted(set(detections["video"]) - set(localizer.videos))
    if unknown:
        raise wtal_kit.InputError(f"{len(unknown)} video(s) not in the explored split, e.g. {unknown[0]!r}", file=path, field="results")
    return detections


def parse_compare(text: str) -> dict:
    """``NAME=FILE,NAME=FILE`` (a bare FILE is named after its stem) -> {name: path}."""
    compared = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, path = item.partition("=")
        if not path:
            name, path = Path(item).stem, item
        compared[name] = Path(path)
    return compared


def short_name(path: Path) -> str:
    """The last two parts of a path (runs/demo): enough to recognise it, no machine-specific prefix."""
    return str(Path(*Path(path).parts[-2:]))


def download_link(text: str, filename: str, mime: str, label: str) -> str:
    payload = base64.b64encode(text.encode()).decode()
    return f'<a download="{html.escape(filename)}" href="data:{mime};base64,{payload}" target="_blank">{html.escape(label)}</a>'
