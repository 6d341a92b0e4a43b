"""The live hyperparameter sliders without a browser: the session (queue, background trainings, store) and the widgets.

Trainings are the smoke preset's (d=16, a few iterations); a listener that holds the training thread
at a given iteration makes "while it trains" exact, with no timing in the assertions.
"""

from __future__ import annotations

import html
import threading
import time

import pytest

from wtal_kit import experiments
from wtal_kit.apps import sessions
from wtal_kit.errors import InputError
from wtal_kit.localizer import Localizer
from wtal_kit.experiments.published import published_row
from wtal_kit.training.runs import CHECKPOINT, load_checkpoint, load_run

WAIT = 120  # seconds a test waits for a tiny training before it fails


def hold_at(session: sessions.Session, iteration: int):
    """A listener that holds every training at ``iteration`` until released: (reached, release)."""
    reached, release = threading.Semaphore(0), threading.Event()

    def listener(run, kind):
        if kind == "iteration" and run.iteration == iteration:
            reached.release()
            release.wait(WAIT)

    session.subscribe(listener)
    return reached, release


@pytest.fixture(scope="module")
def smoke():
    return sessions.preset_config("smoke")


@pytest.fixture(scope="module")
def finished(tmp_path_factory, smoke):
    """A store holding one finished smoke run of kappa = 2, trained through a session."""
    store = tmp_path_factory.mktemp("store")
    session = sessions.Session(store, workers=1)
    run = session.submit(smoke.replace(kappa=2.0), smoke)
    assert run.finished.wait(WAIT)
    session.close()
    assert run.status == "finished", run.message
    return store, run


# -- checks and published rows -------------------------------------------------------------------
@pytest.mark.parametrize("changes, field, words", [
    ({"margin": -1.0}, "margin", "must be >= 0"),
    ({"k": 30, "block_size": 20}, "k", "larger than the block"),
    ({"lr": 0.0}, "lr", "must be > 0"),
    ({"iterations": 0}, "iterations", "must be an integer >= 1"),
    ({"kappa": -2.0}, "kappa", "must be > 0, got -2.0 (or None)"),
])
def test_check_names_the_field_of_a_bad_value(smoke, changes, field, words):
    config, problems = sessions.check(smoke, changes)
    assert config is None and words in problems[field]


def test_check_accepts_k_above_the_block_size_without_blocks(smoke):
    config, problems = sessions.check(smoke, {"k": 30, "block_size": 20, "block_processing": False})
    assert problems == {} and config.k == 30 and not config.block_processing


def test_matches_find_the_papers_rows(smoke):
    kappa2 = sessions.matches(smoke.replace(kappa=2.0, lr=0.5, iterations=3, seed=7))  # the budget does not matter
    assert [(m.artefact, m.variant) for m in kappa2] == [("table5", "kappa=2")]
    assert kappa2[0].published.equals(published_row(5, "THUMOS14", variant="kappa=2"))
    assert "real THUMOS14" in kappa2[0].source
    assert "avg = mean of the four printed" in kappa2[0].source  # Table 5 prints no avg
    no_metric = sessions.matches(smoke.replace(metric_loss="none"))
    assert [m.variant for m in no_metric] == ["BBCE"] and no_metric[0].published[0.5] == 14.0
    cosine = sessions.matches(smoke.replace(distance="cosine"))
    assert [(m.artefact, m.published) for m in cosine] == [("figure3", None)] and "chart" in cosine[0].source
    assert sessions.matches(smoke.replace(margin=2.0)) == []  # the paper has no row for this setting
    full = sessions.matches(smoke)
    assert full[0].artefact == "table1" and {m.artefact for m in full} >= {"table3", "table4", "table5", "figure2"}
    activitynet = sessions.matches(sessions.preset_config("smoke", "activitynet12"))
    assert [m.artefact for m in activitynet] == ["table2"]


@pytest.mark.parametrize("preset, mode", [("smoke", "smoke"), ("small", "small")])
def test_every_paper_row_set_from_the_controls_has_the_reproductions_key(preset, mode):
    for artefact in experiments.ARTEFACTS.values():
        for variant in artefact.variants:
            base = sessions.preset_config(preset, variant.layout)
            # the controls give floats where the reproduction's rows write ints (kappa=2)
            changes = {k: float(v) if k == "kappa" and v is not None else v for k, v in variant.changes.items()}
            asked = base.replace(seed=1, threshold=0.3, **changes)
            expected = experiments.variant_config(experiments.base_config(mode, variant.layout), variant, 1)
            key = experiments.config_key(sessions.training_config(asked, base))
            assert key == experiments.config_key(expected), (artefact.name, variant.label)


def test_eval_every_keeps_the_presets_number_of_evaluations():
    small = sessions.preset_config("small")
    assert sessions.eval_every(small, small.iterations) == small.eval_every
    assert sessions.eval_every(small, 400) == 100 and sessions.eval_every(small, 1) == 1
    paper = sessions.preset_config("paper")
    assert sessions.eval_every(paper, paper.iterations) == paper.eval_every


# -- the session -------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_run_made_here_is_a_reproduction_entry(finished, smoke):
    store, run = finished
    entry = experiments.ResultsStore(store).get(run.key)
    assert entry is not None and run.run_dir == entry.path
    assert entry.info["uses"] == [["table5", "kappa=2"]] and entry.info["source"] == sessions.SOURCE
    results = experiments.collect("table5", mode="smoke", seeds=(0,), store=store)  # what the notebooks read
    rows = results.table[results.table["variant"] == "kappa=2"]
    assert set(rows["key"]) == {run.key}
    assert rows.set_index("tiou")["map"].to_dict() == pytest.approx(run.mean_ap.to_dict())
    assert len(run.losses) == smoke.iterations and [i for i, _ in run.evaluations] == [3, 6]


def test_a_second_identical_request_is_served_from_the_store(finished, smoke):
    store, first = finished
    session = sessions.Session(store, workers=1)
    kinds = []
    session.subscribe(lambda run, kind: kinds.append(kind))
    again = session.submit(smoke.replace(kappa=2.0), smoke)
    assert again.status == "store" and again.finished.is_set()  # at once, in submit
    assert again.mean_ap.equals(first.mean_ap) and kinds == ["finished"]  # never queued, never started
    assert session._threads == []  # no worker was even started
    # another threshold: the same entry, re-evaluated from its scores; the entry keeps the preset's threshold
    other = session.submit(smoke.replace(kappa=2.0, threshold=0.3), smoke)
    assert other.status == "store" and other.key == first.key
    expected = Localizer(load_run(first.run_dir).scores(progress=False)).evaluate(
        threshold=0.3, gamma=smoke.gamma, localization=smoke.localization, iou_thresholds=smoke.iou_thresholds).mean_ap
    assert other.mean_ap.to_dict() == pytest.approx(expected.to_dict())
    assert not other.mean_ap.equals(first.mean_ap)
    # a cap on detections per video is an evaluation setting too: the same entry, re-evaluated with the cap
    capped = session.submit(smoke.replace(kappa=2.0, max_per_video=1), smoke)
    assert capped.status == "store" and capped.key == first.key
    expected = Localizer(load_run(first.run_dir).scores(progress=False)).evaluate(
        threshold=smoke.threshold, gamma=smoke.gamma, localization=smoke.localization, max_per_video=1,
        iou_thresholds=smoke.iou_thresholds).mean_ap
    assert capped.mean_ap.to_dict() == pytest.approx(expected.to_dict())
    assert not capped.mean_ap.equals(first.mean_ap)
    session.close()


def test_a_run_stopped_while_it_waits_for_its_key_never_trains(tmp_path, smoke, monkeypatch):
    import wtal_kit.training

    monkeypatch.setattr(wtal_kit.training, "train", lambda *args, **kwargs: pytest.fail("trained after Stop"))
    session = sessions.Session(tmp_path / "store", workers=1)
    config = smoke.replace(seed=7)
    with session.store.lock(experiments.config_key(sessions.training_config(config, smoke))):  # another runner holds the key
        run = session.submit(config, smoke)
        deadline = time.time() + WAIT
        while run.status != "running" and time.time() < deadline:  # the worker took it and waits for the lock
            time.sleep(0.01)
        assert run.status == "running"
        session.stop(run)
    assert run.finished.wait(WAIT)
    assert run.status == "cancelled" and "before it started" in run.message
    assert not session.stopped_path(run.key).exists()  # nothing kept as a stopped run
    session.close()


@pytest.mark.slow
def test_stop_keeps_a_checkpoint_outside_the_store_and_resuming_matches(tmp_path, finished, smoke):
    _, uninterrupted = finished
    session = sessions.Session(tmp_path / "store", workers=1)
    reached, release = hold_at(session, 2)
    run = session.submit(smoke.replace(kappa=2.0), smoke)
    assert reached.acquire(timeout=WAIT) and run.status == "running"
    session.stop(run)
    release.set()
    assert run.finished.wait(WAIT)
    assert run.status == "stopped" and run.iteration == 2 and "stopped at iteration 2" in run.message
    assert session.store.get(run.key) is None  # a stopped run is not a store entry
    assert run.run_dir == session.stopped_path(run.key)
    assert load_checkpoint(run.run_dir / CHECKPOINT)["iteration"] == 2
    assert load_run(run.run_dir).results["completed"] is False
    resumed = session.submit(smoke.replace(kappa=2.0), smoke)  # the same config again: resumed from iteration 2
    assert resumed.finished.wait(WAIT) and resumed.status == "finished", resumed.message
    assert resumed.resumed_from == 2 and [i for i, _ in resumed.losses] == [3, 4, 5, 6]
    assert resumed.mean_ap.equals(uninterrupted.mean_ap)  # what the uninterrupted run reached
    assert not session.stopped_path(run.key).exists()
    session.close()


@pytest.mark.slow
def test_two_runs_train_at_once_and_a_queued_one_can_be_cancelled(tmp_path, smoke):
    session = sessions.Session(tmp_path / "store", workers=2)
    reached, release = hold_at(session, 1)
    first = session.submit(smoke.replace(seed=1), smoke)
    second = session.submit(smoke.replace(seed=2), smoke)
    third = session.submit(smoke.replace(seed=3), smoke)
    assert session.submit(smoke.replace(seed=1), smoke) is first  # the same request joins the run in flight
    assert reached.acquire(timeout=WAIT) and reached.acquire(timeout=WAIT)
    assert (first.status, second.status, third.status) == ("running", "running", "queued")
    session.stop(third)
    assert third.status == "cancelled" and third.finished.is_set()
    session.stop()
    release.set()
    assert session.wait(WAIT)
    assert {first.status, second.status} == {"stopped"}
    session.close()


def test_submit_refuses_a_bad_config(tmp_path, smoke):
    session = sessions.Session(tmp_path / "store", workers=1)
    with pytest.raises(InputError, match="larger than the block"):
        session.submit(smoke.replace(k=70))
    assert session.runs == []


# -- the widgets ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_sliders_train_stop_row_and_store(tmp_path, smoke):
    pytest.importorskip("ipywidgets")
    pytest.importorskip("plotly")
    from widgets.hyperparameters import MAP_TRACE, Sliders

    app = Sliders(sessions.Session(tmp_path / "store", workers=1), preset="smoke")
    assert "Cost: seconds" in app.cost.value and not app.train_button.disabled
    assert app.charts.layout.display == "none"  # no empty axes before the first run
    app.kappa.value = 3.0
    reached, release = hold_at(app.session, 2)
    app.iterations.value = 50
    app.train_button.click()
    running = app.session.runs[0]
    assert reached.acquire(timeout=WAIT) and running.status == "running"
    assert running.config.kappa == 3.0 and running.config.iterations == 50
    assert app.charts.layout.display == "flex"
    assert "It waits for 1 run ahead of it (1 training, 0 queued; 1 at once)." in app.cost.value  # said as it started

    # while it trains: a control change is processed (checked, shown, Train disabled) ...
    app.margin.value = -1.0
    assert "must be &gt;= 0" in app.notes["margin"].value and app.train_button.disabled
    assert running.status == "running"
    app.margin.value = 3.0
    assert app.notes["margin"].value == "" and not app.train_button.disabled
    app.no_clipping.value = True
    assert app.kappa.disabled and app.changes()["kappa"] is None
    assert "It waits for 1 run ahead of it" in app.cost.value

    # ... and Stop ends it cleanly, with a valid checkpoint and a row that says where it stopped
    app.stop_button.click()
    release.set()
    assert running.finished.wait(WAIT) and running.status == "stopped"
    app.redraw()
    assert load_checkpoint(running.run_dir / CHECKPOINT)["iteration"] == running.iteration == 2
    assert "stopped at iteration 2" in app.table.value
    assert "waits" not in app.cost.value and "starts at once" not in app.cost.value  # the queue is empty again

    # a finished run adds its row, its curve, its tIoU line and the paper's row of its setting
    app.iterations.value = smoke.iterations
    done = app.train()
    assert done.finished.wait(WAIT) and done.status == "finished", done.message
    app.redraw()
    assert app.table.value.count("class='wtal-run'") == 2
    assert "Table 5 · kappa=none" in app.table.value and "60.3" in app.table.value
    assert f"{100 * done.mean_ap['avg']:.1f}" in app.table.value
    # the table's avg is the paper's: the mean of its four tIoU columns (0.1, 0.3, 0.5, 0.7)
    assert done.mean_ap["avg"] == pytest.approx(sum(done.mean_ap[t] for t in (0.1, 0.3, 0.5, 0.7)) / 4)
    tiou_lines = app.tiou_chart.data
    assert [trace.name for trace in tiou_lines if trace.visible] == [
        "#1 κ=3 (stopped)", "paper: Table 5 · kappa=3", "#2 κ=none", "paper: Table 5 · kappa=none"]
    assert list(tiou_lines[2].y) == pytest.approx([100 * done.mean_ap[t] for t in smoke.iou_thresholds])
    assert list(app.live.data[0].x) == list(range(1, smoke.iterations + 1))  # the loss terms of every iteration
    assert list(app.live.data[MAP_TRACE].x) == [3, 6]  # the mAP at each evaluation
    assert "in the results store" in app.cost.value  # the same setting again would not train

    # a second identical request is served from the store without training
    started = []
    app.session.subscribe(lambda run, kind: kind == "started" and started.append(run.number))
    again = app.train()
    assert again.status == "store" and again.mean_ap.equals(done.mean_ap) and started == []
    app.redraw()
    assert "from the store" in app.table.value

    # any row opens in the explorer, below the table
    explorer = app.open_in_explorer(done.number)
    assert app.explorer_box.children[-1] is explorer.widget and explorer.threshold.value == smoke.threshold
    app.session.close()


def test_bad_values_are_refused_next_to_their_control(tmp_path):
    pytest.importorskip("ipywidgets")
    from widgets.hyperparameters import Sliders

    app = Sliders(sessions.Session(tmp_path / "store", workers=1), preset="smoke")
    app.block_size.value = 5
    assert "k = 10 is larger than the block (5 segments)" in app.notes["k"].value and app.train_button.disabled
    assert app.train() is None and app.session.runs == []
    app.no_blocks.value = True  # without blocks the whole video is the block
    assert app.notes["k"].value == "" and not app.train_button.disabled
    app.lr.value = -0.1
    assert "must be &gt; 0" in app.notes["lr"].value
    app.preset.value = "small"  # a preset resets every control to its full method
    assert app.lr.value == sessions.preset_config("small").lr and app.notes["lr"].value == "" and not app.no_blocks.value
    seconds, iterations = sessions.SMALL_PRESET_SECONDS, sessions.preset_config("small").iterations
    cost = html.unescape(app.cost.value)
    assert f"about {seconds:.0f} s of one CPU core (the small preset's {iterations} iterations, measured)" in cost
    assert "scaled" not in cost  # nothing to scale: the preset's own iterations
    app.iterations.value = 2 * iterations
    assert f"about {2 * seconds:.0f} s of one CPU core ({2 * iterations} iterations: the small preset's {iterations} " \
           f"measured {seconds:.0f} s, scaled)" in html.unescape(app.cost.value)


def test_the_page_says_why_it_cannot_start(tmp_path):
    pytest.importorskip("ipywidgets")
    from widgets.hyperparameters import Unavailable, sliders_from_parameters

    page = sliders_from_parameters(store=str(tmp_path), preset="fast")
    assert isinstance(page, Unavailable) and "field &#x27;preset&#x27;" in page.widget.value
    assert "got &#x27;fast&#x27;" in page.widget.value
    unavailable = sliders_from_parameters(store=str(tmp_path), workers="two").widget.value
    assert "field &#x27;workers&#x27;: must be an integer" in unavailable and "got &#x27;two&#x27;" in unavailable


# -- the command --------------------------------------------------------------------------------
@pytest.mark.slow
def test_cli_time_preset_and_bad_flags(capsys, tmp_path):
    from wtal_kit.apps.cli import main

    import torch

    threads = torch.get_num_threads()
    assert main(["sliders", "--time-preset", "--preset", "smoke", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("smoke preset, thumos14 layout (d=16, 6 iterations) on cpu: ") and " with 1 torch thread(s) " in out
    assert torch.get_num_threads() == threads  # given back
    assert main(["sliders", "--workers", "0"]) == 2
    assert "--workers must be a positive integer" in capsys.readouterr().err
    assert main(["sliders", "--time-preset", "--threads", "0"]) == 2
    assert "--threads must be a positive integer" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert main(["sliders", "--store", str(tmp_path / "file")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_queue_text_says_when_a_new_run_would_start():
    pytest.importorskip("ipywidgets")
    from widgets.hyperparameters import queue_text

    assert queue_text(0, 0, 2) == ""
    assert queue_text(1, 0, 2) == " It starts at once, beside 1 run training."
    assert queue_text(2, 0, 2) == " It waits for 1 run ahead of it (2 training, 0 queued; 2 at once)."
    assert queue_text(2, 3, 2) == " It waits for 4 runs ahead of it (2 training, 3 queued; 2 at once)."  # 3 queued + 1 to end
