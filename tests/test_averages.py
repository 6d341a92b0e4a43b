"""One "avg": the paper's mean over tIoU 0.1, 0.3, 0.5, 0.7 everywhere; any other average is named with its set.

The library's rule is tested in test_evaluate.py (with_average, average_label); here, each place
that shows or stores an average: metrics.csv, results.json, the printed tables, `wtal evaluate --iou`.
The explorer's and the sliders' tables are tested in test_widgets.py and test_sliders.py.
"""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import make_scores
from wtal_kit.apps.cli import main
from wtal_kit.apps.printing import format_map_rows
from wtal_kit.config import FINE_TIOUS, PAPER_TIOUS, Config
from wtal_kit.data.hdf5 import write_scores
from wtal_kit.data.runfolder import metric_column, metric_key
from wtal_kit.evaluate import with_average

FINE = pd.Series([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1], index=list(FINE_TIOUS), name="mAP")
# the paper's four of these: (0.9 + 0.7 + 0.5 + 0.3) / 4 = 0.6; all nine: 4.5 / 9 = 0.5


def test_metrics_csv_columns_keep_map_avg_for_the_paper_and_label_other_sets(tmp_path):
    from wtal_kit.training.log import MetricsLog

    paper = MetricsLog(tmp_path, Config())
    assert paper.fields[-5:] == ["map@0.1", "map@0.3", "map@0.5", "map@0.7", "map_avg"]  # the format as it was
    fine = MetricsLog(tmp_path, Config(iou_thresholds=FINE_TIOUS))
    assert fine.fields[-2:] == ["map_avg", "map_avg_0.1:0.1:0.9"]
    fine.start()
    fine.append(100, {"total": 1.0, "classification": 0.5, "metric": 0.5}, with_average(FINE))
    row = fine.read().iloc[0]
    assert row["map_avg"] == pytest.approx(0.6) and row["map_avg_0.1:0.1:0.9"] == pytest.approx(0.5)
    assert [metric_key(c) for c in ("map@0.5", "map_avg", "map_avg_0.1:0.1:0.9")] == [0.5, "avg", "avg 0.1:0.1:0.9"]
    assert all(metric_key(metric_column(key)) == key for key in (0.3, "avg", "avg 0.5:0.05:0.95"))


def test_results_json_round_trip_keeps_the_labels():
    from wtal_kit.training.runs import map_from_json, map_to_json

    mean_ap = with_average(FINE)
    back = map_from_json(map_to_json(mean_ap))
    assert list(back.index) == list(mean_ap.index) and back["avg 0.1:0.1:0.9"] == pytest.approx(0.5)


def test_printed_table_heads_each_average_with_its_name():
    text = format_map_rows([("ours", with_average(FINE)), ("paper", with_average(FINE[list(PAPER_TIOUS)]))])
    header, _, ours, paper = text.splitlines()
    assert header.split()[-2:] == ["avg", "0.1:0.1:0.9"] and "avg 0.1:0.1:0.9" in header
    assert ours.split()[-2:] == ["60.0", "50.0"] and paper.split()[-2:] == ["60.0", "—"]


def test_cli_evaluate_with_another_iou_set_labels_its_average(thumos_annotations, tmp_path, capsys):
    split = thumos_annotations.select(thumos_annotations.indices("test"))
    scores = make_scores(split, seed=2)
    path = tmp_path / "scores.h5"
    write_scores(path, scores.annotations, list(range(len(scores.annotations.videos))),
                 [scores.logits[v] for v in scores.annotations.videos], scores.video_probs, dict(scores.attrs))
    assert main(["evaluate", "--scores", str(path), "--iou", "0.3", "0.5"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert header.split()[-3:] == ["@0.5", "avg", "0.3,0.5"]  # one average, named: the paper's four are not there
    assert main(["evaluate", "--scores", str(path)]) == 0  # the default, the paper's set: "avg" as before
    header = capsys.readouterr().out.splitlines()[0]
    assert header.split()[-1] == "avg"
