"""The one place that converts seconds <-> segment indices.

An I3D feature is computed on a segment of 16 frames; with frames extracted at
25 fps one segment lasts ``seconds_per_segment = 16 / 25 = 0.64`` s. Segment ``i``
covers the half-open interval ``[i * sps, (i + 1) * sps)`` seconds (paper Sec. 3.5;
docs/method.md, "Localization (Sec. 3.5)"). A video of ``duration`` seconds has
``ceil(duration / sps)`` segments (at least one).

Everything else in wtal-kit calls these functions instead of multiplying or
dividing by ``seconds_per_segment`` itself.
"""

from __future__ import annotations

import numpy as np

DEFAULT_SECONDS_PER_SEGMENT = 16 / 25  # 16-frame I3D segments at 25 fps

# Divisions such as 6.4 / 0.64 give 10.000000000000002; rounding to this many
# decimals first keeps an exact multiple from spilling into one more segment.
_DECIMALS = 9


def check_seconds_per_segment(seconds_per_segment: float) -> float:
    sps = float(seconds_per_segment)
    if not np.isfinite(sps) or sps <= 0:
        raise ValueError(f"seconds_per_segment must be a positive number, got {seconds_per_segment!r}")
    return sps


def num_segments(duration, seconds_per_segment: float = DEFAULT_SECONDS_PER_SEGMENT):
    """Number of feature segments of a video of ``duration`` seconds: ceil(duration / sps), >= 1."""
    sps = check_seconds_per_segment(seconds_per_segment)
    count = np.ceil(np.round(np.asarray(duration, dtype=np.float64) / sps, _DECIMALS))
    count = np.maximum(count, 1).astype(np.int64)
    return int(count) if count.ndim == 0 else count


def segment_start_seconds(index, seconds_per_segment: float = DEFAULT_SECONDS_PER_SEGMENT):
    """Start time (s) of segment ``index``: index * sps."""
    return np.asarray(index, dtype=np.float64) * check_seconds_per_segment(seconds_per_segment)


def segment_end_seconds(index, seconds_per_segment: float = DEFAULT_SECONDS_PER_SEGMENT):
    """End time (s, exclusive) of segment ``index``: (index + 1) * sps."""
    return (np.asarray(index, dtype=np.float64) + 1) * check_seconds_per_segment(seconds_per_segment)


def segment_containing(seconds, seconds_per_segment: float = DEFAULT_SECONDS_PER_SEGMENT):
    """Index of the segment whose interval contains time ``seconds``: floor(seconds / sps)."""
    sps = check_seconds_per_segment(seconds_per_segment)
    return np.floor(np.round(np.asarray(seconds, dtype=np.float64) / sps, _DECIMALS)).astype(np.int64)


def seconds_to_feature_grid(seconds, seconds_per_segment: float = DEFAULT_SECONDS_PER_SEGMENT):
    """round(seconds / sps): the authors' released code compares times on this grid."""
    sps = check_seconds_per_segment(seconds_per_segment)
    return np.round(np.asarray(seconds, dtype=np.float64) / sps).astype(np.int64)


def feature_grid_to_seconds(index, seconds_per_segment: float = DEFAULT_SECONDS_PER_SEGMENT):
    """Inverse of :func:`seconds_to_feature_grid`: index * sps."""
    return segment_start_seconds(index, seconds_per_segment)
