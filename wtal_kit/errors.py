"""Error types raised on bad input.

Every malformed input raises :class:`InputError` with one message that names the
file, the video and the field involved, so that a user can find the problem at
once. The CLI turns a :class:`WtalError` into one line on stderr and exit code 2.
"""

from __future__ import annotations

import traceback
from pathlib import Path


class WtalError(Exception):
    """Base class of every error that wtal-kit raises on purpose."""


class InputError(WtalError, ValueError):
    """A malformed input: a missing file, wrong shapes, non-finite values, ...

    ``InputError("end < start", file="gt.json", video="v1", field="segment")``
    reads ``gt.json: video 'v1': field 'segment': end < start``.

    The message is always one line: whitespace runs in ``problem`` (a multi-line repr of an
    array, a library's message) become one space, and a line break in a file name is escaped.
    """

    def __init__(self, problem: str, *, file=None, video=None, field=None):
        self.problem = " ".join(str(problem).split())
        self.file = None if file is None else str(file)
        self.video = None if video is None else str(video)
        self.field = field
        parts = []
        if self.file is not None:
            parts.append(_one_line(self.file))
        if self.video is not None:
            parts.append(f"video {self.video!r}")
        if field is not None:
            parts.append(f"field {field!r}")
        parts.append(self.problem)
        super().__init__(": ".join(parts))


def _one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n")


def failure_message(error: BaseException) -> str:
    """One line for a failure (a training of a grid, a Ray task): a WtalError's own message; anything
    else with its type and where it happened."""
    if isinstance(error, WtalError):
        return str(error)
    frames = traceback.extract_tb(error.__traceback__)  # a bug or a library error
    where = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(error).__name__}: {error}{where}"
