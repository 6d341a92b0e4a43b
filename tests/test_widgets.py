"""The explorer's widgets without a browser: set controls, check what the library says must be shown."""

from __future__ import annotations

import base64
import json
import re
import time

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("plotly")

from wtal_kit.data.hdf5 import write_scores  # noqa: E402
from wtal_kit.data.jsonio import write_detections_json  # noqa: E402
from wtal_kit.diagnosis import error_breakdown  # noqa: E402
from wtal_kit.localizer import Localizer  # noqa: E402
from widgets.explorer import NO_CAP, TABLE_THRESHOLDS, Explorer, PathPolicy, explorer_app  # noqa: E402
from widgets.timeline import CURVE, FALSE_POSITIVES, FIRST_COMPARE, GROUND_TRUTH, THRESHOLD, TRUE_POSITIVES, timeline_data  # noqa: E402

from conftest import make_scores  # noqa: E402


@pytest.fixture(scope="module")
def split(thumos_annotations):
    return thumos_annotations.select(thumos_annotations.indices("test"))


@pytest.fixture(scope="module")
def scores(split):
    return make_scores(split, seed=4)


@pytest.fixture()
def app(scores, tmp_path):
    return Explorer(Localizer(scores), path_policy=PathPolicy([tmp_path]))


def table_numbers(html: str) -> list[list[float]]:
    rows = re.findall(r"<tr><th>([^<]+)</th>(.*?)</tr>", html)
    return [[float(v) for v in re.findall(r"<td>([^<]+)</td>", cells)] for label, cells in rows if label != "mAP (%)"]


ROWS = [*TABLE_THRESHOLDS, "avg", "avg 0.1:0.1:0.9"]  # "avg": the paper's four; the nine's mean is labelled


def expected_map_rows(localizer, settings, protocol="activitynet") -> list[list[float]]:
    evaluation = localizer.evaluate(**settings, iou_thresholds=TABLE_THRESHOLDS, eval_protocol=protocol)
    return [[round(100 * float(evaluation.mean_ap[key]), 1)] for key in ROWS]


def test_the_table_says_which_average_is_which(app):
    labels = re.findall(r"<tr><th>([^<]+)</th>", app.map_table.value)[1:]  # after the head, "mAP (%)"
    assert labels == [f"@{t:g}" for t in TABLE_THRESHOLDS] + ["avg", "avg 0.1:0.1:0.9"]
    assert "avg: the paper's, mean over 0.1, 0.3, 0.5, 0.7" in app.map_table.value
    mean_ap = app.evaluation.per_class.mean(axis=0)
    rows = dict(zip(labels, (row[0] for row in table_numbers(app.map_table.value))))
    assert rows["avg"] == round(100 * (mean_ap[0.1] + mean_ap[0.3] + mean_ap[0.5] + mean_ap[0.7]) / 4, 1)
    assert rows["avg 0.1:0.1:0.9"] == round(100 * mean_ap[list(TABLE_THRESHOLDS)].mean(), 1)


@pytest.mark.slow
def test_threshold_move_updates_table_figure_charts(app, scores):
    localizer = Localizer(scores)
    figure = app.timeline.figure
    traces_before = len(figure.data)
    for threshold in (0.35, 0.62):
        app.threshold.value = threshold
        settings = dict(threshold=threshold, gamma=app.gamma.value, localization="paper", min_length=1)
        assert table_numbers(app.map_table.value) == expected_map_rows(localizer, settings)
        view = localizer.view(app.videos.value, app.klass.value, tiou=app.tiou.value, **settings)
        tp = view.detections[view.detections["true_positive"]]
        fp = view.detections[~view.detections["true_positive"]]
        np.testing.assert_array_equal(figure.data[TRUE_POSITIVES].base, tp["t_start"].to_numpy())
        np.testing.assert_array_equal(figure.data[FALSE_POSITIVES].base, fp["t_start"].to_numpy())
        np.testing.assert_allclose(np.asarray(figure.data[FALSE_POSITIVES].x), (fp["t_end"] - fp["t_start"]).to_numpy())
        assert list(figure.data[THRESHOLD].y) == [threshold, threshold]
        np.testing.assert_array_equal(np.asarray(figure.data[CURVE].y)[:-1], view.probs)
        np.testing.assert_array_equal(figure.data[GROUND_TRUTH].base, view.ground_truth["t_start"].to_numpy())
        per_class = localizer.evaluate(**settings, iou_thresholds=[0.5]).per_class[0.5]
        np.testing.assert_allclose(app.class_chart.data[0].y, 100 * per_class.to_numpy())
        breakdown = error_breakdown(localizer.ground_truth, localizer.detections(**settings), tiou=0.5)
        counts = breakdown.false_positives.counts.drop("true_positive", errors="ignore")
        assert list(app.error_chart.data[0].y) == counts.tolist()
        assert list(app.error_chart.data[1].y) == breakdown.missed_by_length["missed"].tolist()
    assert app.timeline.figure is figure and len(figure.data) == traces_before  # updated in place, never rebuilt


@pytest.mark.slow
def test_gamma_protocol_and_localization_switches(app, scores):
    localizer = Localizer(scores)
    app.gamma.value = 0.0
    app.eval_protocol.value = "wtalc"
    settings = dict(threshold=0.5, gamma=0.0, localization="paper", min_length=1)
    assert table_numbers(app.map_table.value) == expected_map_rows(localizer, settings, "wtalc")
    app.localization.value = "wsad_code"
    assert app.min_length.value == 2 and app.threshold.disabled
    settings = dict(threshold=0.5, gamma=0.0, localization="wsad_code", min_length=2)
    assert table_numbers(app.map_table.value) == expected_map_rows(localizer, settings, "wtalc")
    view = localizer.view(app.videos.value, app.klass.value, **settings)
    assert app.timeline.figure.data[THRESHOLD].y[0] == pytest.approx(view.curve_threshold)  # the per-video midpoint
    app.min_length.value = 4
    settings["min_length"] = 4
    assert table_numbers(app.map_table.value) == expected_map_rows(localizer, settings, "wtalc")
    assert app.message.value == ""


def test_video_list_sorts_and_searches(app, scores):
    table = Localizer(scores).video_table()
    values = [value for _, value in app.videos.options]
    expected = table.sort_values(["ap", "video"], ascending=[True, True], na_position="last")["video"].tolist()
    assert values == expected
    app.sort.value = "missed ground truth (most first)"
    missed = table.set_index("video").loc[[v for _, v in app.videos.options], "missed"].to_numpy()
    assert (np.diff(missed) <= 0).all()
    app.search.value = "0000004"
    assert [v for _, v in app.videos.options] == [v for v in table["video"] if "0000004" in v]


def test_video_and_class_pick_and_cursor(app, scores):
    localizer = Localizer(scores)
    video = scores.annotations.videos[7]
    app.videos.value = video
    assert list(app.klass.options) == localizer.top_classes(video)
    assert app.klass.value == localizer.top_classes(video)[0]
    other = localizer.top_classes(video)[1]
    app.klass.value = other
    assert other in app.timeline.figure.layout.title.text and video in app.timeline.figure.layout.title.text
    app.cursor.value = 3.3
    assert "segment 5" in app.cursor_info.value  # 3.3 s / 0.64 s = segment 5
    assert list(app.timeline.figure.data[2].x) == [3.3, 3.3]


@pytest.mark.slow
def test_bad_input_is_one_line_and_the_app_keeps_working(app, scores, tmp_path):
    app.open_path.value = "/etc"
    app._on_open(None)
    assert "outside the folders" in app.message.value and "Traceback" not in app.message.value
    not_scores = tmp_path / "x.h5"
    not_scores.write_text("hello")
    app.open_path.value = str(not_scores)
    app._on_open(None)
    assert "x.h5" in app.message.value and "\n" not in app.message.value
    foreign = tmp_path / "other.json"
    foreign.write_text(json.dumps({"results": {"video_nowhere": [{"label": "Diving", "score": 1, "segment": [0, 1]}]}}))
    app.compare_path.value = f"other={foreign}"
    app._on_compare(None)
    assert "not in the explored split" in app.message.value
    app.threshold.value = 0.4  # still alive
    assert app.message.value == ""
    assert table_numbers(app.map_table.value) == expected_map_rows(Localizer(scores), dict(threshold=0.4, gamma=0.7, localization="paper", min_length=1))


@pytest.mark.slow
def test_compare_adds_a_column_and_a_track(scores, tmp_path):
    localizer = Localizer(scores)
    other = localizer.detections(threshold=0.7, gamma=0.0)
    path = tmp_path / "other.json"
    write_detections_json(path, other)
    app = Explorer(localizer, path_policy=PathPolicy([tmp_path]))
    app.compare_path.value = f"strict={path}"
    app._on_compare(None)
    assert "<th>strict</th>" in app.map_table.value
    rows = table_numbers(app.map_table.value)
    expected = localizer.evaluate(threshold=0.7, gamma=0.0, iou_thresholds=TABLE_THRESHOLDS).mean_ap
    assert [row[1] for row in rows] == [round(100 * float(expected[k]), 1) for k in ROWS]
    track = app.timeline.figure.data[FIRST_COMPARE]
    mine = other[(other["video"] == app.videos.value) & (other["label"] == app.klass.value)]
    np.testing.assert_array_equal(track.base, mine["t_start"].to_numpy())


@pytest.mark.slow
def test_export_links_hold_the_current_detections(app, scores):
    app.threshold.value = 0.55
    assert app.exports.value == ""  # made on demand
    app.export_button.click()
    links = dict(re.findall(r'download="([^"]+)" href="data:[^;]+;base64,([^"]+)"', app.exports.value))
    exported = json.loads(base64.b64decode(links["detections.json"]))
    expected = Localizer(scores).detections(threshold=0.55, gamma=0.7)
    assert sum(len(v) for v in exported["results"].values()) == len(expected)
    csv = pd.read_csv(pd.io.common.StringIO(base64.b64decode(links["detections.csv"]).decode()))
    np.testing.assert_allclose(csv["score"].to_numpy(), expected["score"].to_numpy())
    html_name = [name for name in links if name.endswith(".html")][0]
    assert b"plotly" in base64.b64decode(links[html_name])


def test_timeline_data_by_hand(scores):
    localizer = Localizer(scores)
    video = scores.annotations.videos[0]
    view = localizer.view(video, threshold=0.5)
    data = timeline_data(view, cursor=1.0)
    assert data["curve"]["x"][-1] == view.t_end[-1] and len(data["curve"]["x"]) == len(view.t_start) + 1
    assert data["threshold"]["y"] == [0.5, 0.5] and data["cursor"]["x"] == [1.0, 1.0]
    assert data["layout"]["rows"] == ["ambiguous", "detections", "ground truth"]


@pytest.mark.slow
def test_explorer_app_opens_a_run_folder_and_a_compare_file(scores, split, tmp_path):
    path = tmp_path / "scores_test.h5"
    write_scores(path, split, np.arange(split.num_videos), [scores.logits[v] for v in split.videos], scores.video_probs,
                 {**scores.attrs, "name": "t", "subset": "test"})
    results = tmp_path / "mine.json"
    write_detections_json(results, Localizer(scores).detections(threshold=0.6))
    app = explorer_app(path, compare={"mine": results})
    assert "<th>mine</th>" in app.map_table.value and app.videos.value is not None


@pytest.mark.slow
def test_max_per_video_control_caps_everything_shown(app, scores):
    assert app.max_per_video.label == "no cap (paper)" and app.settings().max_per_video is None  # shown, and the default
    localizer = Localizer(scores)
    app.threshold.value = 0.3
    app.max_per_video.value = 1
    settings = dict(threshold=0.3, gamma=app.gamma.value, localization="paper", min_length=1, max_per_video=1)
    assert table_numbers(app.map_table.value) == expected_map_rows(localizer, settings)
    assert app.video_table["detections"].max() == 1
    assert "(at most 1 per video)" in app.summary.value
    exported = json.loads(app.detections_json())
    assert exported["external_data"]["settings"]["max_per_video"] == 1
    assert max(len(v) for v in exported["results"].values()) == 1
    app.max_per_video.value = NO_CAP
    assert app.settings().max_per_video is None
    assert app.video_table["detections"].max() > 1 and "per video" not in app.summary.value


class SlowLocalizer(Localizer):
    """A Localizer whose evaluate blocks until the test lets it go, counting its calls."""

    def __init__(self, scores):
        import threading

        super().__init__(scores)
        self.calls, self.gate, self.entered = [], threading.Event(), threading.Event()

    def evaluate(self, settings=None, **kwargs):
        self.calls.append(settings.threshold)
        self.entered.set()
        assert self.gate.wait(20)
        return super().evaluate(settings, **kwargs)


@pytest.mark.slow
def test_background_refresh_takes_moves_while_busy_and_drops_stale_ones(scores, tmp_path):
    localizer = SlowLocalizer(scores)
    localizer.gate.set()  # the first page is drawn synchronously
    app = Explorer(localizer, path_policy=PathPolicy([tmp_path]), background=True, prefetch=0)  # no work ahead: counted calls
    localizer.gate.clear()
    localizer.calls.clear()
    app.threshold.value = 0.31  # starts a recompute, which blocks inside evaluate
    assert localizer.entered.wait(10)
    for threshold in (0.32, 0.33, 0.34, 0.35, 0.36):
        app.threshold.value = threshold  # each returns at once: the kernel keeps taking messages
    assert app.worker.busy and localizer.calls == [0.31]  # nothing else started while the first runs
    localizer.gate.set()
    assert app.wait(30)
    # the running one finished its evaluation but drew nothing; of the five waiting, only the newest ran
    assert localizer.calls == [0.31, 0.36]
    assert app.worker.dropped == 4
    settings = dict(threshold=0.36, gamma=app.gamma.value, localization="paper", min_length=1)
    assert table_numbers(app.map_table.value) == expected_map_rows(Localizer(scores), settings)
    assert app.busy.value == ""


@pytest.mark.slow
def test_background_refresh_reports_errors_in_one_line(scores, tmp_path, monkeypatch):
    app = Explorer(Localizer(scores), path_policy=PathPolicy([tmp_path]), background=True)

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(app.localizer, "evaluate", broken)
    app.threshold.value = 0.4
    assert app.wait(30)
    assert "RuntimeError: disk on fire" in app.message.value and "Traceback" not in app.message.value
    monkeypatch.undo()
    app.threshold.value = 0.45
    assert app.wait(30)
    assert app.message.value == ""  # working again


@pytest.mark.slow
def test_a_move_during_a_background_redraw_is_not_lost(scores, tmp_path):
    """The background refresh silences only its own control changes: a slider moved meanwhile is taken."""
    import threading

    app = Explorer(Localizer(scores), path_policy=PathPolicy([tmp_path]), background=True)
    gate, inside = threading.Event(), threading.Event()
    fill = app._fill_list

    def slow_fill():
        with app._quietly():  # as _fill_list is while it replaces the list's options
            inside.set()
            assert gate.wait(20)
        fill()

    app._fill_list = slow_fill
    app.threshold.value = 0.4
    assert inside.wait(10)
    app.threshold.value = 0.6  # from the kernel's thread, while the background one is quiet
    gate.set()
    assert app.wait(30)
    settings = dict(threshold=0.6, gamma=app.gamma.value, localization="paper", min_length=1)
    assert table_numbers(app.map_table.value) == expected_map_rows(Localizer(scores), settings)


@pytest.mark.slow
def test_a_failed_background_refresh_keeps_its_error_and_clears_updating(scores, tmp_path, monkeypatch):
    app = Explorer(Localizer(scores), path_policy=PathPolicy([tmp_path]), background=True)
    monkeypatch.setattr("widgets.explorer.BUSY_AFTER_S", 0.0)  # "updating" at once

    def broken(*args, **kwargs):
        raise RuntimeError("no evaluation today")

    monkeypatch.setattr(app.results, "get", broken)  # the same settings: kept results, unless getting them fails
    app.request_refresh(note="opened something")
    assert app.wait(30)
    time.sleep(0.2)  # the timer's thread has looked by now, and must have found the refresh ended
    assert "no evaluation today" in app.message.value and "opened something" not in app.message.value
    assert app.busy.value == ""
    monkeypatch.undo()
    app.request_refresh(note="opened something")
    assert app.wait(30)
    assert "opened something" in app.message.value


def test_on_the_activitynet_layout_the_table_adds_its_usual_average(activitynet_annotations):
    split = activitynet_annotations.select(activitynet_annotations.indices("validation")[:300])  # ActivityNet-long instances
    app = Explorer(Localizer(make_scores(split, seed=1)))
    labels = re.findall(r"<tr><th>([^<]+)</th>", app.map_table.value)[1:]
    assert labels[-3:] == ["avg", "avg 0.1:0.1:0.9", "avg 0.5:0.05:0.95"]
    mean_ap = app.evaluation.per_class.mean(axis=0)
    usual = [round(0.5 + 0.05 * i, 2) for i in range(10)]  # 0.5, 0.55, ..., 0.95
    assert table_numbers(app.map_table.value)[-1] == [round(100 * mean_ap[usual].mean(), 1)]


def test_the_app_computes_neighbouring_thresholds_ahead_and_draws_them_without_recomputing(scores, tmp_path):
    localizer = SlowLocalizer(scores)
    localizer.gate.set()
    app = Explorer(localizer, path_policy=PathPolicy([tmp_path]), background=True)  # the app's way: 3 steps ahead
    app.threshold.value = 0.4
    assert app.wait(30)
    assert sorted(localizer.calls[-6:]) == [0.37, 0.38, 0.39, 0.41, 0.42, 0.43]  # computed while idle, nearest first
    localizer.calls.clear()
    app.threshold.value = 0.42  # two steps: already computed
    assert app.wait(30)
    assert 0.42 not in localizer.calls
    settings = dict(threshold=0.42, gamma=app.gamma.value, localization="paper", min_length=1)
    assert table_numbers(app.map_table.value) == expected_map_rows(Localizer(scores), settings)
    localizer.calls.clear()
    app.gamma.value = 0.3  # another setting: computed anew (nothing kept for γ 0.7 is taken for it)
    assert app.wait(30)
    assert localizer.calls[0] == 0.42
    settings["gamma"] = 0.3
    assert table_numbers(app.map_table.value) == expected_map_rows(Localizer(scores), settings)
