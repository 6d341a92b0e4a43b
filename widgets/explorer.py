"""The detection explorer: move the threshold and watch detections, ground truth and mAP change together.

:class:`Explorer` holds the UI state (sliders, the chosen video and class, the cursor)
and asks a :class:`wtal_kit.Localizer` for everything it shows; every settings change
re-localizes and re-evaluates the whole split. It is an ipywidgets ``VBox`` (``.widget``)
that a Voila notebook displays, and it is driven the same way in tests: set a control's
``value`` and read the figures, the mAP table, the charts.

In the app (``background=True``) a settings change recomputes in a background thread, so the
kernel keeps taking the page's messages; a slider that moves again while a recompute runs
drops the stale one (it stops before drawing, and only the newest request runs next).
Programmatic use is synchronous by default: a change returns with everything redrawn.

Errors in the page (a file that is not a scores file, a results JSON naming unknown
videos) become one line in ``.message``; the explorer keeps working.
"""

from __future__ import annotations

import html
import json
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import ipywidgets as w
import numpy as np
import pandas as pd
import plotly.graph_objects as go

import wtal_kit
from wtal_kit.config import DEFAULT_MIN_LENGTH, EVAL_PROTOCOLS, LOCALIZATIONS, VIEW_TIOU, Config, LocalizationSettings
from wtal_kit.data.catalog import layout_of
from wtal_kit.diagnosis import ACTIVITYNET_LENGTH_BINS, THUMOS14_LENGTH_BINS
from wtal_kit.evaluate import per_class_ap
from widgets.background import LatestOnly
from widgets.explorer_compute import SplitResults, neighbours
from widgets.explorer_files import PathPolicy, download_link, open_scores, parse_compare, read_compared, short_name
from widgets.explorer_views import (SORT_KEYS, TABLE_THRESHOLDS, evaluated_thresholds, map_column, map_table_html, summary_html,
                                    table_keys, video_options)
from widgets.livefigure import TEMPLATE, LiveFigure
from widgets.timeline import Timeline, cursor_report

__all__ = ["Explorer", "PathPolicy", "SORT_KEYS", "TABLE_THRESHOLDS", "NO_CAP", "explorer_app", "explorer_from_parameters",
           "open_scores", "parse_compare", "short_name"]

# The per-video cap's choices: none (the paper's protocol, the default) or a top-k by score. A dropdown
# shows a None value as no selection at all, so "no cap" is 0 in the control and None in the settings.
NO_CAP = 0
MAX_PER_VIDEO_CHOICES = [("no cap (paper)", NO_CAP), ("100 (ActivityNet challenge)", 100), ("50", 50), ("20", 20),
                         ("10", 10), ("5", 5), ("1", 1)]
BUSY_AFTER_S = 0.25  # say "updating" only when a recompute takes longer than this
SETTLE_S = 0.025  # in the app, a result is drawn no sooner than this after its move: a burst of moves draws only its last
DRAW_EVERY_S = 0.1  # and no sooner than this after the previous drawing: a held key or a drag never outpaces the browser,
                    # which needs about 90 ms to redraw the whole page
PREFETCH_STEPS = 3  # in the app, once a move is drawn, the thresholds this many steps either side are computed ahead
CONTROL_WIDTH = dict(width="100%", max_width="420px")  # a control fills its column, up to this


def is_activitynet_scale(localizer: wtal_kit.Localizer) -> bool:
    """True on the ActivityNet layout (by the run's dataset, or ActivityNet-long instances): its table adds 0.5:0.05:0.95."""
    dataset = (localizer.scores.attrs.get("config") or {}).get("dataset", "")
    if layout_of(dataset) is not None:
        return layout_of(dataset) == "activitynet12"
    return length_bins(localizer) is ACTIVITYNET_LENGTH_BINS


def length_bins(localizer: wtal_kit.Localizer):
    """DETAD's length buckets: THUMOS14's (seconds) unless the instances are ActivityNet-long."""
    lengths = (localizer.ground_truth["t_end"] - localizer.ground_truth["t_start"]).to_numpy()
    return ACTIVITYNET_LENGTH_BINS if len(lengths) and np.median(lengths) > 30 else THUMOS14_LENGTH_BINS


def figure_box(figure, basis: str) -> w.VBox:
    """A figure in a box that shares its row (``basis``: its preferred width) and wraps below the others when narrow."""
    return w.VBox([figure], layout=w.Layout(flex=f"1 1 {basis}", min_width="0", overflow="hidden"))


class Explorer:
    """The explorer's widgets and state. ``Explorer(localizer, compared={"name": detections})``."""

    def __init__(self, localizer: wtal_kit.Localizer, compared: dict | None = None, *, label: str = "",
                 path_policy: PathPolicy | None = None, background: bool = False, prefetch: int | None = None,
                 videos=None):
        if videos is not None and not Path(videos).is_dir():
            raise wtal_kit.InputError("not a folder of videos", file=videos, field="videos")
        self.worker = LatestOnly(background)  # recomputes of the whole split: latest request only
        # threshold steps computed ahead while the page is idle (the app's way; never in a synchronous explorer)
        self.prefetch = (PREFETCH_STEPS if background else 0) if prefetch is None else prefetch
        self.compared = dict(compared or {})
        self.label = label
        self.path_policy = path_policy
        self._compared_ap = {}  # (name, eval protocol) -> per-class AP at TABLE_THRESHOLDS (fixed detections: once)
        # Control changes the explorer makes itself must not be taken for the user's. The flag is per
        # thread: a background refresh filling the list must not silence a slider the user moves meanwhile.
        self._quiet = threading.local()
        self._busy_lock = threading.Lock()
        self._finished = 0  # generation of the last background refresh that ended
        self._drawn_at = 0.0  # when a background refresh last drew (monotonic seconds)
        self._quiet.on = True

        slider = dict(continuous_update=True, readout_format=".2f", style={"description_width": "110px"}, layout=w.Layout(**CONTROL_WIDTH))
        self.threshold = w.FloatSlider(value=Config.threshold, min=0.05, max=0.95, step=0.01, description="threshold", **slider)
        self.gamma = w.FloatSlider(value=Config.gamma, min=0.0, max=2.0, step=0.05, description="γ (video score)", **slider)
        self.tiou = w.FloatSlider(value=VIEW_TIOU, min=0.1, max=0.9, step=0.05, description="tIoU (TP / FP)", **slider)
        self.min_length = w.IntSlider(value=1, min=1, max=20, step=1, description="min length",
                                      continuous_update=True, style={"description_width": "110px"}, layout=w.Layout(**CONTROL_WIDTH))
        self.localization = w.ToggleButtons(options=list(LOCALIZATIONS), value=Config.localization, description="localization",
                                            tooltips=["the paper (Sec. 3.5)", "the authors' released code"])
        self.eval_protocol = w.ToggleButtons(options=list(EVAL_PROTOCOLS), value=Config.eval_protocol, description="evaluation")
        self.max_per_video = w.Dropdown(options=MAX_PER_VIDEO_CHOICES, value=Config.max_per_video or NO_CAP, description="max per video",
                                        style={"description_width": "110px"}, layout=w.Layout(**CONTROL_WIDTH),
                                        tooltip="keep each video's this many highest-scoring detections")
        self.busy = w.HTML()
        self.search = w.Text(placeholder="search videos", layout=w.Layout(flex="1 1 160px", min_width="0"))
        self.sort = w.Dropdown(options=list(SORT_KEYS), value="AP (lowest first)", layout=w.Layout(flex="1 1 200px", min_width="0"))
        self.videos = w.Select(options=[], rows=14, layout=w.Layout(width="100%"))
        self._list_options = ()  # what the video list shows: (label, video) pairs
        self.klass = w.Dropdown(options=[], description="class", layout=w.Layout(width="100%", max_width="420px"))
        self.cursor = w.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.01, description="time cursor (s)", continuous_update=True,
                                    readout_format=".2f", style={"description_width": "110px"},
                                    layout=w.Layout(width="100%", max_width="800px"))
        self.cursor.add_class("wtal-cursor")  # found by browser tests and benchmarks
        self.cursor_info = w.HTML()
        self.message = w.HTML()
        self.summary = w.HTML()
        self.map_table = w.HTML()
        self.exports = w.HTML()
        self.export_button = w.Button(description="export", tooltip="links to the current detections (JSON, CSV) and figure (HTML)")
        self._use(localizer)
        self.timeline = Timeline(self.compared)
        # figures without a width fill their box (plotly's autosize), whatever the page's or the output's width
        self.class_chart = LiveFigure(layout=go.Layout(template=TEMPLATE, height=300, margin=dict(l=50, r=10, t=40, b=110),
                                                       barmode="group", yaxis=dict(range=[0, 100], title="AP (%)"),
                                                       xaxis=dict(tickangle=-60)))
        self.class_chart.add_bar(name="ours")
        for name in self.compared:
            self.class_chart.add_bar(name=name)
        self.error_chart = LiveFigure(layout=go.Layout(template=TEMPLATE, height=300, margin=dict(l=50, r=10, t=40, b=90),
                                                       showlegend=False))
        self.error_chart.add_bar(name="false positives", marker_color="#d62728", xaxis="x", yaxis="y")
        self.error_chart.add_bar(name="missed ground truth", marker_color="#ff7f0e", xaxis="x2", yaxis="y2")
        self.error_chart.layout.update(xaxis=dict(domain=[0, 0.55], tickangle=-30),
                                       xaxis2=dict(domain=[0.65, 1.0], anchor="y2", tickangle=-30),
                                       yaxis2=dict(anchor="x2"), title=dict(text="errors", font=dict(size=13)))
        # beside the timeline, with ``videos`` (a folder of the run's video files): the frame under the cursor
        self.frames = w.VBox(layout=w.Layout(display="none", flex="0 1 320px", min_width="0"))
        self.frame_panel = None
        if videos is not None:
            from widgets.frames import FramePanel

            self.frame_panel = FramePanel(videos, localizer.videos, background=background)
            self.frames.children = (self.frame_panel.widget,)
            self.frames.layout.display = ""
        self.open_path = w.Text(placeholder="run folder or scores file", layout=w.Layout(flex="1 1 220px", min_width="0"))
        self.open_button = w.Button(description="open")
        self.compare_path = w.Text(placeholder="NAME=results.json", layout=w.Layout(flex="1 1 220px", min_width="0"))
        self.compare_button = w.Button(description="compare")

        self.timeline.figure.data[0].on_click(self._on_figure_click)
        self.localization.observe(self._on_localization, names="value")  # first: it sets the minimum length
        for control in (self.threshold, self.gamma, self.tiou, self.min_length, self.localization, self.eval_protocol,
                        self.max_per_video):
            control.observe(self._on_settings, names="value")
        self.search.observe(self._on_list_change, names="value")
        self.sort.observe(self._on_list_change, names="value")
        self.videos.observe(self._on_video, names="value")
        self.klass.observe(self._on_class, names="value")
        self.cursor.observe(self._on_cursor, names="value")
        self.open_button.on_click(self._on_open)
        self.compare_button.on_click(self._on_compare)
        self.export_button.on_click(lambda button: self._guard(self._draw_exports))

        self.widget = self._layout()
        self._show_ground_truth_parts()
        self._quiet.on = False
        self.refresh()  # the first page: drawn before it is shown

    def _use(self, localizer: wtal_kit.Localizer) -> None:
        """Explore ``localizer``: its scale (the table adds ActivityNet's average 0.5:0.05:0.95 on that layout),
        its length buckets, and fresh stores of results (ours by settings, the compared methods' AP)."""
        self.localizer = localizer
        self.activitynet = is_activitynet_scale(localizer)
        self.bins = length_bins(localizer)
        self.results = SplitResults(localizer, evaluated_thresholds(self.activitynet), self.bins)
        self._compared_ap.clear()

    # -- layout ----------------------------------------------------------------------------
    def _layout(self) -> w.Widget:
        """Rows that wrap: in a narrow output (a notebook's) the columns stack, and the figures fill the width."""
        self.title = w.HTML(self._title_html())
        wrap = dict(display="flex", flex_flow="row wrap", align_items="flex-start", width="100%")
        controls = w.VBox([self.threshold, self.gamma, self.tiou, self.min_length, self.max_per_video, self.localization,
                           self.eval_protocol, self.busy], layout=w.Layout(flex="1 1 340px", min_width="0"))
        listing = w.VBox([w.HBox([self.search, self.sort], layout=w.Layout(width="100%")), self.videos, self.klass],
                         layout=w.Layout(flex="1 1 340px", min_width="0"))
        numbers = w.VBox([self.map_table, self.summary], layout=w.Layout(flex="0 1 300px", min_width="0"))
        files = w.VBox([w.HBox([self.open_path, self.open_button], layout=w.Layout(width="100%")),
                        w.HBox([self.compare_path, self.compare_button], layout=w.Layout(width="100%"))],
                       layout=w.Layout(flex="1 1 340px", min_width="0"))
        self.charts = w.HBox([figure_box(self.class_chart, "420px"), figure_box(self.error_chart, "420px")],
                             layout=w.Layout(**wrap))
        return w.VBox(
            [
                self.title,
                self.message,
                w.HBox([controls, listing, numbers], layout=w.Layout(**wrap, grid_gap="8px 24px")),
                w.HBox([figure_box(self.timeline.figure, "600px"), self.frames], layout=w.Layout(**wrap)),
                self.cursor,
                self.cursor_info,
                self.charts,
                w.HBox([w.VBox([self.export_button, self.exports], layout=w.Layout(flex="1 1 300px", min_width="0")), files],
                       layout=w.Layout(**wrap)),
            ],
            layout=w.Layout(padding="6px", width="100%", max_width="100%", overflow="hidden"),
        )

    def _show_ground_truth_parts(self) -> None:
        """Without ground truth (one's own videos) the parts that need it are hidden, and the page says so."""
        shown = "" if self.localizer.has_ground_truth else "none"
        for part in (self.charts, self.tiou, self.eval_protocol, self.compare_path, self.compare_button):
            part.layout.display = shown
        if not self.localizer.has_ground_truth:
            with self._quietly():
                self.sort.value = "name"

    def _title_html(self) -> str:
        scores = self.localizer.scores
        dataset = (scores.attrs.get("config") or {}).get("dataset", "")
        note = (" — numbers on the embedded synthetic benchmark are not THUMOS14 results"
                if layout_of(dataset) is not None else "")
        where = f"{html.escape(self.label)}: subset '{html.escape(str(scores.attrs.get('subset', '?')))}', " \
                f"{len(self.localizer.videos)} videos, {self.localizer.num_classes} classes{note}"
        return f"<h3 style='margin:4px 0'>wtal-kit detection explorer</h3><div>{where}</div>"

    # -- settings --------------------------------------------------------------------------
    def settings(self) -> LocalizationSettings:
        """The controls' localization settings (checked: a bad value is one InputError)."""
        return LocalizationSettings(threshold=self.threshold.value, gamma=self.gamma.value,
                                    localization=self.localization.value, min_length=self.min_length.value,
                                    max_per_video=self.max_per_video.value or None)

    def _say(self, text: str = "", error: bool = False) -> None:
        color = "#b00020" if error else "#555"
        self.message.value = f"<div style='color:{color}'>{html.escape(text)}</div>" if text else ""

    def _guard(self, action, *args) -> bool:
        """Run an update; any error becomes one line in the page (never a traceback). True if it ran through."""
        try:
            action(*args)
            return True
        except wtal_kit.WtalError as exc:
            self._say(str(exc), error=True)
        except Exception as exc:  # noqa: BLE001 - the page must keep working
            self._say(f"{type(exc).__name__}: {exc}", error=True)
        return False

    @contextmanager
    def _quietly(self):
        """Control changes made inside (by the explorer itself, in this thread) trigger no handler."""
        before = self._is_quiet()
        self._quiet.on = True
        try:
            yield
        finally:
            self._quiet.on = before

    def _is_quiet(self) -> bool:
        return getattr(self._quiet, "on", False)

    def _on_settings(self, change) -> None:
        if not self._is_quiet():
            self.request_refresh()

    def request_refresh(self, note: str = "") -> None:
        """Recompute the whole split (in the background in the app); ``note``: a line to say once drawn."""
        requested = time.monotonic()

        def job(generation: int) -> None:
            drawn = False
            try:
                drawn = self._guard(self.refresh, generation, requested) and not self.worker.superseded(generation)
                if drawn and note:
                    self._say(note)  # an error stays on the page instead
            finally:
                with self._busy_lock:
                    self._finished = max(self._finished, generation)
                    if not self.worker.superseded(generation):
                        self.busy.value = ""
            if drawn and self.prefetch and self.worker.background:
                self.worker.submit(self._compute_ahead)  # any move submitted later stops it

        generation = self.worker.submit(job)
        if self.worker.background:
            timer = threading.Timer(BUSY_AFTER_S, self._show_busy, args=(generation,))
            timer.daemon = True
            timer.start()

    def _compute_ahead(self, generation: int) -> None:
        """The thresholds a few steps either side of the drawn one, computed while nothing else is asked."""
        settings, protocol, tiou = self.settings(), self.eval_protocol.value, self.tiou.value
        if settings.localization != "paper":
            return  # the released code's localization has no threshold
        slider = self.threshold  # the steps and bounds a move can reach
        for threshold in neighbours(settings.threshold, self.prefetch, slider.step, slider.min, slider.max):
            if self.worker.superseded(generation):
                return
            try:
                self.results.get(settings.replace(threshold=threshold), protocol, tiou,
                                 stale=lambda: self.worker.superseded(generation))
            except Exception:  # noqa: BLE001 - work ahead; a real move reports its own errors
                return

    def _show_busy(self, generation: int) -> None:
        with self._busy_lock:  # not once that refresh (or a newer one) has ended
            if self._finished < generation:
                self.busy.value = "<span style='color:#555'>updating …</span>"

    def wait(self, timeout: float | None = 30) -> bool:
        """Wait for background recomputes to finish (tests, scripts); False on timeout."""
        return self.worker.wait(timeout)

    def _on_localization(self, change) -> None:
        # the released code keeps runs of 2 or more segments, the paper every run
        with self._quietly():
            self.min_length.value = DEFAULT_MIN_LENGTH[change["new"]]
            self.threshold.disabled = change["new"] == "wsad_code"  # the released code's threshold is the per-video midpoint

    # -- the whole split ---------------------------------------------------------------------
    def refresh(self, generation: int | None = None, requested: float | None = None) -> None:
        """Re-localize and re-evaluate the whole split (or take the results kept for these settings), then redraw.

        Everything is computed first, then drawn in one go: one batch of messages per recompute, each
        widget's once (and none for a widget whose content did not change). ``generation``: the
        background job's; once a newer request exists, this one stops between its steps and draws nothing
        (the newer one draws). ``requested``: when the move came (monotonic seconds); a background
        result is drawn no sooner than SETTLE_S after it, so that of quick moves only the last is drawn,
        and no sooner than DRAW_EVERY_S after the previous drawing.
        """
        def stale() -> bool:
            return generation is not None and self.worker.superseded(generation)

        settings, protocol, tiou = self.settings(), self.eval_protocol.value, self.tiou.value
        computed = self.results.get(settings, protocol, tiou, stale)
        if computed is None or stale():
            return
        if requested is not None and self.worker.background:
            now = time.monotonic()
            time.sleep(max(0.0, SETTLE_S - (now - requested), DRAW_EVERY_S - (now - self._drawn_at)))
            if stale():
                return
            self._drawn_at = time.monotonic()
        evaluation, video_table = computed.evaluation, computed.video_table
        self.evaluation, self.video_table, self.errors = evaluation, video_table, computed.errors
        if evaluation is not None:
            columns = {"ours": map_column(evaluation.per_class.mean(axis=0), self.activitynet)}
            for name in self.compared:
                columns[name] = self._compared_map(name, protocol)
            self.map_table.value = map_table_html(columns, table_keys(self.activitynet))
            self._draw_classes(evaluation, protocol)
            self._draw_errors(computed.errors, tiou)
        else:
            self.map_table.value = ""
        self._fill_list()
        self.summary.value = summary_html(video_table, settings.max_per_video, tiou, protocol, evaluation is not None)
        self._draw_video()
        self.exports.value = ""  # made on demand (the export button): they would cost more than the update itself
        self._say()

    def _compared_per_class(self, name: str, protocol: str) -> pd.DataFrame:
        key = (name, protocol)
        if key not in self._compared_ap:
            ground_truth = self.localizer.ground_truth
            detections = self.compared[name]
            self._compared_ap[key] = per_class_ap(ground_truth, detections[detections["label"].isin(ground_truth["label"])],
                                                  evaluated_thresholds(self.activitynet), protocol)
        return self._compared_ap[key]

    def _compared_map(self, name: str, protocol: str) -> pd.Series:
        return map_column(self._compared_per_class(name, protocol).mean(axis=0), self.activitynet)

    def _draw_classes(self, evaluation, protocol) -> None:
        tiou = min(TABLE_THRESHOLDS, key=lambda t: abs(t - self.tiou.value))
        names = [str(c) for c in evaluation.per_class.index]
        title = f"per-class AP at tIoU {tiou:g} ({protocol})"
        with self.class_chart.batch_update():
            self.class_chart.data[0].update(x=names, y=100 * evaluation.per_class[tiou].to_numpy())
            for offset, name in enumerate(self.compared, start=1):
                per_class = self._compared_per_class(name, protocol)[tiou].reindex(names)
                self.class_chart.data[offset].update(x=names, y=100 * per_class.to_numpy())
            if self.class_chart.layout.title.text != title:
                self.class_chart.layout.title = dict(text=title, font=dict(size=13))

    def _draw_errors(self, breakdown, tiou: float) -> None:
        counts = breakdown.false_positives.counts.drop("true_positive", errors="ignore")
        missed = breakdown.missed_by_length
        title = f"false positives by type, missed ground truth by length (tIoU {tiou:g})"
        with self.error_chart.batch_update():
            self.error_chart.data[0].update(x=[str(i).replace("_", " ") for i in counts.index], y=counts.to_numpy())
            self.error_chart.data[1].update(x=[f"missed {b}" for b in missed["bucket"]], y=missed["missed"].to_numpy())
            if self.error_chart.layout.title.text != title:
                self.error_chart.layout.title.text = title

    # -- the video list -----------------------------------------------------------------------
    def _fill_list(self) -> bool:
        """Show the videos (search, sort) with their current numbers; True if the chosen video changed.

        The list keeps its widget and its choice: new labels go out in one message with the choice, and
        no message at all when nothing changed. A choice that left the list (a search) moves to the first.
        """
        options = tuple(video_options(self.video_table, self.search.value, self.sort.value))
        values = [value for _, value in options]
        current = self.videos.value
        chosen = current if current in values else (values[0] if values else None)
        if options != self._list_options:
            with self._quietly(), self.videos.hold_sync():
                self.videos.options = options
                self.videos.value = chosen
            self._list_options = options
        if chosen is not None and chosen != current:
            self._choose(chosen)
            return True
        return False

    def _on_list_change(self, change) -> None:
        self._guard(lambda: self._fill_list() and self._draw_video())

    def _on_video(self, change) -> None:
        if self._is_quiet() or change["new"] is None:
            return
        self._guard(self._pick_video, change["new"])

    def _pick_video(self, video: str) -> None:
        self._choose(video)
        self._draw_video()

    def _choose(self, video: str) -> None:
        """A new video: its classes (ground truth first), the cursor at its start."""
        with self._quietly():
            self.klass.options = self.localizer.top_classes(video)
            self.klass.value = self.klass.options[0]
            self.cursor.max = max(self.localizer.duration(video), 0.01)
            self.cursor.value = 0.0

    def _on_class(self, change) -> None:
        if not self._is_quiet():
            self._guard(self._draw_video)

    # -- one video -----------------------------------------------------------------------------
    def current_view(self):
        if self.videos.value is None or self.klass.value is None:
            return None
        return self.localizer.view(self.videos.value, self.klass.value, tiou=self.tiou.value,
                                   eval_protocol=self.eval_protocol.value, settings=self.settings())

    def _draw_video(self) -> None:
        if self.videos.value is None:
            return
        if self.klass.value is None or self.klass.value not in self.localizer.classes:
            with self._quietly():
                self.klass.options = self.localizer.top_classes(self.videos.value)
                self.klass.value = self.klass.options[0]
        view = self.current_view()
        self.view = view
        compared = {}
        for name, detections in self.compared.items():
            compared[name] = detections[(detections["video"] == view.video) & (detections["label"] == view.label)]
        self.timeline_data = self.timeline.show(view, compared, self.cursor.value)
        self.cursor_info.value = html.escape(cursor_report(view, self.cursor.value))
        if self.frame_panel is not None:
            if self.frame_panel.video != view.video:
                self.frame_panel.show(view.video, self.cursor.value)  # its thumbnails, then the frame
            elif self.frame_panel.seconds != self.cursor.value:
                self.frame_panel.show_time(self.cursor.value)

    def _on_cursor(self, change) -> None:
        if self._is_quiet() or getattr(self, "view", None) is None:
            return
        self.timeline.move_cursor(change["new"], self.timeline_data["layout"]["y_range"])
        self.cursor_info.value = html.escape(cursor_report(self.view, change["new"]))
        if self.frame_panel is not None:
            self.frame_panel.show_time(change["new"])  # decoded in the background in the app; a stale frame is dropped

    def _on_figure_click(self, trace, points, selector) -> None:
        if points.xs:
            self.cursor.value = float(np.clip(points.xs[0], self.cursor.min, self.cursor.max))

    # -- export -----------------------------------------------------------------------------
    def detections_json(self) -> str:
        detections = self.localizer.detections(self.settings())
        results = {}
        for row in detections.itertuples():
            results.setdefault(row.video, []).append({"label": row.label, "score": row.score, "segment": [row.t_start, row.t_end]})
        return json.dumps({"version": "wtal-kit explorer", "results": results, "external_data": {"settings": self.settings().to_dict()}})

    def _draw_exports(self) -> None:
        detections = self.localizer.detections(self.settings())
        links = [
            download_link(self.detections_json(), "detections.json", "application/json", "detections (ActivityNet JSON)"),
            download_link(detections.to_csv(index=False), "detections.csv", "text/csv", "detections (CSV)"),
        ]
        if getattr(self, "view", None) is not None:
            figure = go.Figure(self.timeline.figure)
            links.append(download_link(figure.to_html(include_plotlyjs=True, full_html=True), f"{self.view.video}.html",
                                       "text/html", "this figure (standalone HTML)"))
        self.exports.value = "<div>export: " + " · ".join(links) + " · PNG: the camera icon of the figure's toolbar</div>"

    # -- opening files --------------------------------------------------------------------------
    def _checked(self, text: str) -> Path:
        if self.path_policy is None:
            raise wtal_kit.InputError("opening files from the page is not enabled")
        return self.path_policy.check(text)

    def _on_open(self, button) -> None:
        self._guard(self._open, self.open_path.value)

    def _open(self, text: str) -> None:
        path = self._checked(text)
        localizer = wtal_kit.Localizer(open_scores(path))
        for name, detections in self.compared.items():
            unknown = set(detections["video"]) - set(localizer.videos)
            if unknown:
                raise wtal_kit.InputError(f"the compared results {name!r} name videos outside these scores", file=path)
        self._use(localizer)
        self._show_ground_truth_parts()
        self.label = short_name(path)
        self.title.value = self._title_html()
        self.request_refresh(note=f"opened {path}")

    def _on_compare(self, button) -> None:
        self._guard(self._compare, self.compare_path.value)

    def _compare(self, text: str) -> None:
        name, _, path_text = text.partition("=")
        if not path_text:
            name, path_text = Path(text).stem, text
        path = self._checked(path_text)
        if name in self.compared:
            raise wtal_kit.InputError(f"a compared method is already called {name!r}")
        detections = read_compared(path, self.localizer)
        self.compared[name] = detections
        self.timeline.add_compared(name)  # one more detection track
        self.class_chart.add_bar(name=name)
        self.request_refresh(note=f"comparing with {name} ({len(detections)} detections)")


def explorer_app(source: str | Path, compare: dict | None = None, roots=(), background: bool = True,
                 videos=None) -> Explorer:
    """An explorer on a run folder or scores file; ``compare``: name -> results JSON path.

    ``background``: recompute in a background thread, latest request only (the app's way).
    ``videos``: a folder of the run's video files (matched by file name): the frame under the cursor.
    """
    path = Path(source)
    localizer = wtal_kit.Localizer(open_scores(path))
    compared = {name: read_compared(Path(file), localizer) for name, file in (compare or {}).items()}
    policy = PathPolicy(roots or [path if path.is_dir() else path.parent])
    return Explorer(localizer, compared, label=short_name(path), path_policy=policy, background=background,
                    videos=videos)


ENV_RUN, ENV_COMPARE, ENV_ROOTS, ENV_VIDEOS = ("WTAL_EXPLORE_RUN", "WTAL_EXPLORE_COMPARE", "WTAL_EXPLORE_ROOTS",
                                             "WTAL_EXPLORE_VIDEOS")
DEFAULT_RUN = "runs/demo"


class Unavailable:
    """What the page shows when the explorer cannot start: one line, no traceback."""

    def __init__(self, problem: str):
        self.widget = w.HTML(f"<div style='color:#b00020'>The explorer could not open its data: {html.escape(problem)}</div>")


def explorer_from_parameters(run: str = "", compare: str = "", roots: str = "", videos: str = ""):
    """The Voila app's entry point: notebook parameters, else WTAL_EXPLORE_* variables, else runs/demo."""
    run = run or os.environ.get(ENV_RUN, "") or DEFAULT_RUN
    compare = compare or os.environ.get(ENV_COMPARE, "")
    roots = roots or os.environ.get(ENV_ROOTS, "")
    videos = videos or os.environ.get(ENV_VIDEOS, "") or None
    try:
        return explorer_app(run, parse_compare(compare), [root for root in roots.split(os.pathsep) if root], videos=videos)
    except wtal_kit.WtalError as exc:
        return Unavailable(str(exc))
    except Exception as exc:  # noqa: BLE001 - a page, not a traceback
        return Unavailable(f"{type(exc).__name__}: {exc}")
