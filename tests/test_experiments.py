"""The experiment grids, the results store and the runner (wtal_kit.experiments)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from wtal_kit import experiments as E
from wtal_kit.errors import InputError

REPO = Path(__file__).resolve().parents[1]


# -- grids -----------------------------------------------------------------------------------
def test_the_grid_trains_each_config_once_and_the_full_method_serves_every_artefact_that_shows_it():
    jobs = E.grid(None, "small", (0, 1, 2))
    # Distinct configs, counted by hand from the paper's artefacts: the full method on each
    # layout (2); Table 3: metric none, contrastive (2); Table 4: no blocks (1); Table 5: kappa
    # none, 2, 3, 5, 10 (5); Figure 2: BCE, Softmax (2); Figure 3: cosine, Euclidean, custom (3);
    # Figure 4a: k 2, 5, 15, 20 (4); Figure 4b: blocks 20..100 with k = 6% (1, 2, 4, 5, 6): 5,
    # none of them the full method's (60, 10). 24 configs x 3 seeds.
    assert len(jobs) == 24 * 3
    assert len({job.key for job in jobs}) == len(jobs)
    full = [job for job in jobs if job.config.seed == 0 and job.config.dataset == "synthetic-thumos14"
            and job.config == E.base_config("small").replace(seed=0)]
    assert len(full) == 1
    assert {name for name, _ in full[0].uses} == {"table1", "table3", "table4", "table5", "figure2", "figure3", "figure4a", "figure5"}


def test_figure_4b_keeps_k_at_six_percent_of_the_block():
    ks = {v.changes["block_size"]: v.changes["k"] for v in E.ARTEFACTS["figure4b"].variants}
    assert ks == {20: 1, 40: 2, 60: 4, 80: 5, 100: 6}  # round(0.06 * l): 1.2, 2.4, 3.6, 4.8, 6.0


def test_reports_train_the_artefacts_they_read():
    assert E.training_artefacts(["audit"]) == ("table1",)
    assert "table2" not in E.training_artefacts(["claims"])
    assert set(E.training_artefacts(["claims"])) == set(E.REPORT_SOURCES["claims"])
    assert E.training_artefacts(None) == tuple(E.ARTEFACTS)


def test_modes_differ_as_documented():
    smoke, quick, full = (E.base_config(mode) for mode in E.MODES)
    assert (quick.feature_dim, quick.lr, quick.iterations) == (256, 1e-3, 800)
    assert (full.feature_dim, full.lr, full.iterations, full.preset) == (2048, 1e-4, 4401, "paper")
    assert smoke.iterations < 10 and smoke.feature_dim < 64
    activitynet = E.base_config("small", "activitynet12")
    assert activitynet.dataset == "synthetic-activitynet12"
    assert activitynet.iterations // activitynet.eval_every == E.ACTIVITYNET_EVALUATIONS


def test_the_key_ignores_where_and_how_a_run_is_scored_but_not_what_it_trains():
    config = E.base_config("small")
    key = E.config_key(config)
    for change in (dict(device="cpu"), dict(threshold=0.3), dict(gamma=0.1), dict(localization="wsad_code"),
                   dict(eval_protocol="wtalc"), dict(checkpoint_selection="best_test_map"), dict(feature_cache_mb=10)):
        assert E.config_key(config.replace(**change)) == key, change
    for change in (dict(seed=1), dict(lr=2e-3), dict(kappa=None), dict(k=5), dict(bf16=True), dict(feature_dim=128)):
        assert E.config_key(config.replace(**change)) != key, change


@pytest.mark.parametrize("call, field", [
    (lambda: E.grid(None, "fast"), "mode"),
    (lambda: E.grid(None, "small", []), "seeds"),
    (lambda: E.grid(None, "small", [0, 0]), "seeds"),
    (lambda: E.grid(None, "small", [-1]), "seeds"),
    (lambda: E.grid(["table9"], "small"), "only"),
    (lambda: E.run_jobs([], workers=0), "workers"),
])
def test_bad_requests_are_refused_with_the_field(call, field):
    with pytest.raises(InputError) as raised:
        call()
    assert raised.value.field == field


# -- the store -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_second_run_trains_nothing(tmp_path, monkeypatch):
    first = E.run_artefacts(["table1"], "smoke", (0, 1), tmp_path, progress=False)
    assert (len(first.trained), len(first.cached), first.failed) == (2, 0, [])
    assert len(E.ResultsStore(tmp_path).keys()) == 2
    import wtal_kit.training

    def no_training(*args, **kwargs):
        raise AssertionError("the store should have served this run")

    monkeypatch.setattr(wtal_kit.training, "train", no_training)
    second = E.run_artefacts(["table1", "figure5"], "smoke", (0, 1), tmp_path, progress=False)
    assert (len(second.trained), len(second.cached), second.failed) == (0, 2, [])

    results = E.collect("table1", "smoke", (0, 1), tmp_path)
    assert results.missing == []
    assert sorted(results.table["seed"].unique()) == [0, 1]
    assert len(results.table) == 2 * 5  # two seeds x (four tIoU thresholds + avg)
    entry = results.entries[(E.FULL_METHOD, 1)]
    assert entry.config.seed == 1 and entry.info["seed"] == 1
    stored = entry.results["map"]
    row = results.table[(results.table.seed == 1) & (results.table.tiou == "avg")]
    assert float(row["map"].iloc[0]) == stored["avg"]
    assert (entry.path / "scores_test.h5").is_file() and (entry.path / "metrics.csv").is_file()
    assert not list((tmp_path / ".tmp").iterdir())  # no scratch folder left behind


@pytest.mark.slow
def test_collect_lists_what_is_missing(tmp_path):
    E.run_artefacts(["table1"], "smoke", (0,), tmp_path, progress=False)
    results = E.collect("table3", "smoke", (0,), tmp_path)
    assert results.missing == [("BBCE", 0), ("BBCE + contrastive", 0)]  # the full method is Table 1's run
    assert set(results.table["variant"]) == {"BBCE + triplet"}
    assert "synthetic" in results.label() and "smoke mode" in results.label()


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_a_failed_run_is_reported_and_the_others_complete(tmp_path, workers):
    good = E.grid(["table1"], "smoke", (0,))[0]
    bad_config = good.config.replace(dataset=str(tmp_path / "missing.h5"))
    bad = E.Job(bad_config, E.config_key(bad_config), [("test", "bad")])
    summary = E.run_jobs([bad, good], tmp_path / "store", workers=workers, progress=False)
    assert summary.trained == [good.key]
    assert [key for key, _ in summary.failed] == [bad.key]
    assert "missing.h5" in summary.failed[0][1]
    assert "1 failed" in summary.line() and bad.key in summary.line()
    assert E.ResultsStore(tmp_path / "store").keys() == [good.key]


def test_a_failed_training_leaves_no_entry_and_no_scratch(tmp_path, monkeypatch):
    import wtal_kit.training

    def crash(config, run_dir, **kwargs):
        (Path(run_dir) / "results.json").write_text("{half")  # a partial run directory
        raise RuntimeError("boom")

    monkeypatch.setattr(wtal_kit.training, "train", crash)
    job = E.grid(["table1"], "smoke", (0,))[0]
    with pytest.raises(RuntimeError):
        E.ResultsStore(tmp_path).compute(job)
    assert E.ResultsStore(tmp_path).get(job.key) is None
    assert not (tmp_path / job.key).exists()
    assert not list((tmp_path / ".tmp").iterdir())


_RUNNER = textwrap.dedent("""
    import json, sys, torch
    torch.set_num_threads(1)
    from wtal_kit import experiments as E
    summary = E.run_artefacts(sys.argv[2].split(","), "smoke", (0, 1), sys.argv[1], progress=False)
    print(json.dumps({"trained": summary.trained, "cached": summary.cached, "failed": summary.failed}))
""")


@pytest.mark.slow
def test_two_runner_processes_on_one_store_lose_nothing_and_train_nothing_twice(tmp_path):
    store = tmp_path / "store"
    # overlapping grids: the full method (Table 1) is in both
    commands = [[sys.executable, "-c", _RUNNER, str(store), names] for names in ("table1,table3", "table3,table1")]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    processes = [subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for command in commands]
    seen_valid = set()
    while any(p.poll() is None for p in processes):  # a reader never finds a half-written entry
        for key in E.ResultsStore(store).keys():
            entry = E.ResultsStore(store).get(key)
            assert "avg" in entry.results["map"] and len(entry.metrics) >= 1
            seen_valid.add(key)
        time.sleep(0.05)
    outputs = []
    for process in processes:
        out, err = process.communicate()
        assert process.returncode == 0, err
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    expected = {job.key for job in E.grid(["table1", "table3"], "smoke", (0, 1))}
    assert len(expected) == 6  # three configs x two seeds
    assert set(E.ResultsStore(store).keys()) == expected
    trained = outputs[0]["trained"] + outputs[1]["trained"]
    assert sorted(trained) == sorted(expected)  # each entry trained by exactly one of the two
    for output in outputs:
        assert output["failed"] == []
        assert set(output["trained"]) | set(output["cached"]) == expected
    assert not list((store / ".tmp").iterdir())
