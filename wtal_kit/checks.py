"""Input checks, in one place: each returns the value in its plain form or raises one
:class:`~wtal_kit.errors.InputError` that names the field (and the file, when given).

    count = checks.integer(value, "max_per_video", minimum=1)     # an int, never a bool
    tiou = checks.number(value, "tiou", above=0, maximum=1)       # a finite float in (0, 1]

Numbers from numpy count as numbers (``np.int64(3)`` is an integer); a bool is never a number
here, although Python's ``True`` is an int: ``max_per_video=True`` is a mistake, not a cap of 1.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from wtal_kit.errors import InputError

MAX_INT = 2**31 - 1  # the largest count, size or seed a config accepts


def _bounds_text(minimum=None, maximum=None, above=None, below=None) -> str:
    """'>= 1 and <= 2147483647', '> 0 and < 1', ...: the bounds a value must keep."""
    def text(bound) -> str:
        return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"

    bounds = ((">=", minimum), (">", above), ("<", below), ("<=", maximum))
    return " and ".join(f"{sign} {text(bound)}" for sign, bound in bounds if bound is not None)


def is_integer(value) -> bool:
    """An integer (Python's or numpy's) that is not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def is_number(value) -> bool:
    """A real number (Python's or numpy's) that is not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def integer(value, field: str, *, minimum: int | None = None, maximum: int | None = MAX_INT, file=None) -> int:
    """``value`` as an int, within [minimum, maximum]; else InputError naming ``field``."""
    bounds = _bounds_text(minimum=minimum, maximum=maximum)
    kind = f"an integer {bounds}" if bounds else "an integer"
    if not is_integer(value):
        raise InputError(f"must be {kind}, got {value!r:.80}", field=field, file=file)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise InputError(f"must be {kind}, got {value!r}", field=field, file=file)
    return int(value)


def optional_integer(value, field: str, *, minimum: int | None = None, maximum: int | None = MAX_INT, file=None):
    """None, or :func:`integer`."""
    if value is None:
        return None
    try:
        return integer(value, field, minimum=minimum, maximum=maximum, file=file)
    except InputError as error:
        raise InputError(f"{error.problem} (or None)", field=field, file=file) from None


def optional_number(value, field: str, **bounds):
    """None, or :func:`number` with the same bounds."""
    if value is None:
        return None
    try:
        return number(value, field, **bounds)
    except InputError as error:
        raise InputError(f"{error.problem} (or None)", field=field, file=bounds.get("file")) from None


def number(value, field: str, *, minimum=None, maximum=None, above=None, below=None, file=None) -> float:
    """``value`` as a finite float within the bounds given (inclusive ``minimum`` / ``maximum``,
    exclusive ``above`` / ``below``); else InputError naming ``field``. NaN is never within bounds."""
    if not is_number(value):
        raise InputError(f"must be a number, got {value!r:.80}", field=field, file=file)
    value = float(value)
    if not math.isfinite(value):
        raise InputError(f"must be a finite number, got {value!r}", field=field, file=file)
    inside = ((minimum is None or value >= minimum) and (maximum is None or value <= maximum)
              and (above is None or value > above) and (below is None or value < below))
    if not inside:
        raise InputError(f"must be {_bounds_text(minimum, maximum, above, below)}, got {value!r}", field=field, file=file)
    return value


def one_of(value, choices, field: str, *, file=None):
    """``value`` if it is one of ``choices``; else InputError listing them."""
    try:
        known = value in choices
    except TypeError:  # an unhashable value against a set or dict
        known = False
    if not known:
        raise InputError(f"must be one of {tuple(choices)}, got {value!r:.80}", field=field, file=file)
    return value


def tiou_thresholds(values, field: str = "iou_thresholds") -> np.ndarray:
    """A non-empty 1-D float64 array of distinct tIoU thresholds, each in (0, 1]."""
    try:
        thresholds = np.atleast_1d(np.asarray(values, dtype=np.float64))
    except (TypeError, ValueError):
        raise InputError(f"tIoU thresholds must be numbers, got {values!r:.80}", field=field) from None
    if thresholds.ndim != 1 or thresholds.size == 0:
        raise InputError(f"tIoU thresholds must be a non-empty 1-D sequence, got {values!r:.80}", field=field)
    bad = ~((thresholds > 0) & (thresholds <= 1))  # also catches NaN
    if bad.any():
        raise InputError(f"tIoU thresholds must lie in (0, 1], got {thresholds[bad].tolist()}", field=field)
    if np.unique(thresholds).size != thresholds.size:
        raise InputError(f"tIoU thresholds must be distinct, got {thresholds.tolist()}", field=field)
    return thresholds
