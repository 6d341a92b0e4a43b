"""The data files shipped with wtal-kit: real annotation layouts and the paper's published numbers.

The repository keeps them in its top-level ``data/`` folder (thumos14/, activitynet12/,
published_results.csv, ANNOTATIONS.md). Packaging maps that folder onto the
subpackage ``wtal_kit._bundled_data`` (pyproject.toml: ``[tool.setuptools] package-dir``
and ``package-data``), so a regular ``pip install .`` copies it into the installed
package. :func:`bundled_path` looks in two places, in this order:

1. ``wtal_kit/_bundled_data`` -- a regular (non-editable) install;
2. ``wtal_kit/../data`` -- a source checkout, an editable install (``pip install -e .``)
   or ``PYTHONPATH=<repo>``.

A folder counts only if it holds ``ANNOTATIONS.md`` (so an unrelated ``data`` folder
next to an installed package is never taken for ours). Nothing here imports numpy
or the data readers.
"""

from __future__ import annotations

from pathlib import Path, PurePath

from wtal_kit.errors import InputError

__all__ = ["bundled_path"]

_PACKAGE = Path(__file__).resolve().parents[1]  # wtal_kit/
_CANDIDATES = (_PACKAGE / "_bundled_data", _PACKAGE.parent / "data")
_MARKER = "ANNOTATIONS.md"


def _root() -> Path | None:
    for folder in _CANDIDATES:
        if (folder / _MARKER).is_file():
            return folder
    return None


def bundled_path(*parts) -> Path:
    """The path of a shipped data file or folder: ``bundled_path("thumos14")``,
    ``bundled_path("published_results.csv")``; ``bundled_path()`` is the data folder itself.

    Raises :class:`~wtal_kit.errors.InputError` if the data are not installed or the
    file is missing."""
    for part in parts:
        relative = PurePath(str(part))
        if not str(part) or relative.is_absolute() or relative.anchor or ".." in relative.parts:
            raise InputError(f"bundled_path takes relative names inside the data folder, got {str(part)!r}", file="wtal_kit.data.bundled")
    root = _root()
    if root is None:
        raise InputError(
            "the data shipped with wtal-kit (annotation layouts, published numbers) are not installed; "
            f"looked for {_MARKER} in {' and '.join(str(c) for c in _CANDIDATES)}. "
            "Reinstall the package (pip install .) or run from a checkout that has data/",
            file=_CANDIDATES[0],
        )
    path = root.joinpath(*map(str, parts))
    if not path.exists():
        raise InputError(f"not among the data shipped with wtal-kit (in {root})", file=path)
    return path
