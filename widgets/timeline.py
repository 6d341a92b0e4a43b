"""One video's timeline as one persistent plotly ``FigureWidget``, updated in place.

Top panel: the thresholded curve of one class over time (seconds on the axis, segment
index in the hover), the threshold line and a time cursor. Bottom panel, one row each:
ground truth (matched / missed at the chosen tIoU), our detections (true / false
positive, with their scores), one row per compared method, the ambiguous intervals.
Rectangles are horizontal bars (``base`` = start, ``x`` = length), so each has its hover.

:func:`timeline_data` turns a :class:`wtal_kit.VideoView` into the arrays of every trace
(plain data, tested without a browser); :class:`Timeline` owns the figure and writes
those arrays into it inside one ``batch_update``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

import wtal_kit
from wtal_kit.timegrid import segment_containing
from widgets.livefigure import TEMPLATE, LiveFigure

COLORS = {
    "curve": "#1f77b4",
    "threshold": "#7f7f7f",
    "cursor": "#111111",
    "gt_matched": "#2ca02c",
    "gt_missed": "#ff7f0e",
    "tp": "#2ca02c",
    "fp": "#d62728",
    "compare": "#9467bd",
    "ambiguous": "#bbbbbb",
}
GROUND_TRUTH_ROW = "ground truth"
DETECTION_ROW = "detections"
AMBIGUOUS_ROW = "ambiguous"
CURVE, THRESHOLD, CURSOR, GROUND_TRUTH, TRUE_POSITIVES, FALSE_POSITIVES, AMBIGUOUS = range(7)  # trace order
FIRST_COMPARE = 7


def _bars(table: pd.DataFrame, row: str, text) -> dict:
    starts = table["t_start"].to_numpy(dtype=float)
    return {"base": starts, "x": table["t_end"].to_numpy(dtype=float) - starts, "y": [row] * len(table), "hovertext": list(text)}


def _detection_text(table: pd.DataFrame, what: str) -> list[str]:
    return [f"{what}: {s:.2f}-{e:.2f} s, score {q:.3f}" for s, e, q in zip(table["t_start"], table["t_end"], table["score"])]


def timeline_data(view: wtal_kit.VideoView, compared: dict | None = None, cursor: float | None = None) -> dict:
    """Every trace's data for ``view``: {"curve": {...}, "threshold": {...}, ..., "compare": [{...}], "layout": {...}}.

    compared: method name -> its detections of this video and class (video, label, t_start, t_end, score).
    """
    compared = compared or {}
    x = view.t_start  # the curve is a step: segment i holds its value over [t_start_i, t_end_i)
    step_x = np.append(x, view.t_end[-1:]) if len(x) else x
    step_y = np.append(view.curve, view.curve[-1:]) if len(x) else view.curve
    hover = [f"t = {s:.2f} s, segment {i}, value {v:.3f}" for s, i, v in zip(x, view.segment, view.curve)]
    curve_name = "sigmoid(clip(s))" if view.localization == "paper" else "raw logit s"
    duration = float(view.t_end[-1]) if len(view.t_end) else view.duration
    tp = view.detections[view.detections["true_positive"]]
    fp = view.detections[~view.detections["true_positive"]]
    gt = view.ground_truth
    gt_text = [f"ground truth: {s:.2f}-{e:.2f} s ({'matched' if m else 'missed'} at tIoU {view.tiou:g})"
               for s, e, m in zip(gt["t_start"], gt["t_end"], gt["matched"])]
    ambiguous = view.ambiguous.assign(score=np.nan)
    cursor = 0.0 if cursor is None else float(np.clip(cursor, 0.0, duration))
    rows = [AMBIGUOUS_ROW, *reversed(list(compared)), DETECTION_ROW, GROUND_TRUTH_ROW]
    return {
        "curve": {"x": step_x, "y": step_y, "name": curve_name, "hovertext": hover + hover[-1:]},
        "threshold": {"x": [0.0, duration], "y": [view.curve_threshold] * 2,
                      "name": f"threshold {view.curve_threshold:.3g}" + (" (midpoint)" if view.localization == "wsad_code" else "")},
        "cursor": {"x": [cursor, cursor], "y": _curve_range(view)},
        "ground_truth": {**_bars(gt, GROUND_TRUTH_ROW, gt_text),
                         "marker_color": [COLORS["gt_matched"] if m else COLORS["gt_missed"] for m in gt["matched"]]},
        "true_positives": _bars(tp, DETECTION_ROW, _detection_text(tp, "true positive")),
        "false_positives": _bars(fp, DETECTION_ROW, _detection_text(fp, "false positive")),
        "ambiguous": _bars(ambiguous, AMBIGUOUS_ROW, [f"ambiguous: {s:.2f}-{e:.2f} s" for s, e in zip(ambiguous["t_start"], ambiguous["t_end"])]),
        "compare": [_bars(table, name, _detection_text(table, name)) for name, table in compared.items()],
        "layout": {
            "title": f"{view.video} — {view.label}: P(c|V) = {view.video_prob:.3f}  "
                     f"({view.localization} localization, tIoU {view.tiou:g} for true/false positives)",
            "x_range": [0.0, duration],
            "y_range": _curve_range(view),
            "rows": rows,
        },
    }


def _curve_range(view) -> list[float]:
    if view.localization == "paper":
        return [0.0, 1.02]
    low, high = (float(view.curve.min()), float(view.curve.max())) if len(view.curve) else (0.0, 1.0)
    pad = 0.05 * max(high - low, 1e-6)
    return [low - pad, high + pad]


def cursor_report(view: wtal_kit.VideoView, seconds: float) -> str:
    """What lies under the time cursor: time, segment, curve value, and which detection / ground truth contains it."""
    if not len(view.segment):
        return "empty video"
    seconds = float(np.clip(seconds, 0.0, view.t_end[-1]))
    segment = int(min(segment_containing(seconds, view.seconds_per_segment), len(view.segment) - 1))
    parts = [f"t = {seconds:.2f} s", f"segment {segment}", f"value {view.curve[segment]:.3f}"]
    inside = view.detections[(view.detections["t_start"] <= seconds) & (seconds <= view.detections["t_end"])]
    for row in inside.itertuples():
        parts.append(f"in detection {row.t_start:.2f}-{row.t_end:.2f} s ({'TP' if row.true_positive else 'FP'}, score {row.score:.3f})")
    truth = view.ground_truth[(view.ground_truth["t_start"] <= seconds) & (seconds <= view.ground_truth["t_end"])]
    for row in truth.itertuples():
        parts.append(f"in ground truth {row.t_start:.2f}-{row.t_end:.2f} s ({'matched' if row.matched else 'missed'})")
    if not len(inside) and not len(truth):
        parts.append("no detection or ground truth here")
    return " · ".join(parts)


class Timeline:
    """The figure of one video; ``show(view, compared, cursor)`` rewrites it in place."""

    def __init__(self, compare_names=(), height: int = 440, width: int | None = None):
        """``width`` None: the figure fills its box (plotly's autosize), in a page or a notebook's output."""
        self.compare_names = list(compare_names)
        bar = dict(orientation="h", yaxis="y2", xaxis="x", hoverinfo="text", showlegend=False)
        traces = [
            go.Scatter(name="curve", line=dict(color=COLORS["curve"], shape="hv"), hoverinfo="text"),
            go.Scatter(name="threshold", mode="lines", line=dict(color=COLORS["threshold"], dash="dash"), hoverinfo="name"),
            go.Scatter(name="cursor", mode="lines", line=dict(color=COLORS["cursor"], width=1), hoverinfo="skip", showlegend=False),
            go.Bar(name=GROUND_TRUTH_ROW, **bar),
            go.Bar(name="true positives", marker_color=COLORS["tp"], **bar),
            go.Bar(name="false positives", marker_color=COLORS["fp"], **bar),
            go.Bar(name=AMBIGUOUS_ROW, marker_color=COLORS["ambiguous"], **bar),
        ] + [go.Bar(name=name, marker_color=COLORS["compare"], **bar) for name in self.compare_names]
        self.figure = LiveFigure(
            data=traces,
            layout=go.Layout(
                template=TEMPLATE,
                height=height,
                width=width,
                margin=dict(l=110, r=20, t=70, b=40),
                barmode="overlay",
                hovermode="x",  # a click anywhere above a time picks the curve there (moves the cursor)
                xaxis=dict(title="time (s)", anchor="y2"),
                yaxis=dict(domain=[0.42, 1.0], title="score"),
                yaxis2=dict(domain=[0.0, 0.34], type="category", fixedrange=True),
                legend=dict(orientation="h", y=1.0, x=1, xanchor="right", yanchor="bottom"),
                title=dict(font=dict(size=13), y=0.98, yanchor="top"),
            ),
        )

    def show(self, view, compared: dict | None = None, cursor: float | None = None) -> dict:
        data = timeline_data(view, {name: (compared or {}).get(name, _EMPTY) for name in self.compare_names}, cursor)
        with self.figure.batch_update():
            traces = self.figure.data
            for index, key in ((CURVE, "curve"), (THRESHOLD, "threshold"), (CURSOR, "cursor")):
                traces[index].update(data[key])
            for index, key in ((GROUND_TRUTH, "ground_truth"), (TRUE_POSITIVES, "true_positives"),
                               (FALSE_POSITIVES, "false_positives"), (AMBIGUOUS, "ambiguous")):
                traces[index].update(data[key])
            for offset, bars in enumerate(data["compare"]):
                traces[FIRST_COMPARE + offset].update(bars)
            layout = data["layout"]
            self.figure.layout.title.text = layout["title"]
            self.figure.layout.xaxis.range = layout["x_range"]
            self.figure.layout.yaxis.range = layout["y_range"]
            self.figure.layout.yaxis2.categoryarray = layout["rows"]
            self.figure.layout.yaxis2.categoryorder = "array"
            self.figure.layout.yaxis2.range = [-0.5, len(layout["rows"]) - 0.5]
        return data

    def add_compared(self, name: str) -> None:
        self.compare_names.append(name)
        self.figure.add_bar(name=name, orientation="h", yaxis="y2", xaxis="x", hoverinfo="text", showlegend=False,
                            marker_color=COLORS["compare"])

    def move_cursor(self, seconds: float, y_range) -> None:
        with self.figure.batch_update():
            self.figure.data[CURSOR].update(x=[seconds, seconds], y=list(y_range))


_EMPTY = pd.DataFrame({"t_start": [], "t_end": [], "score": []})
