"""The experiment grid on Ray (wtal_kit.experiments.ray_runner): the local runner's results, retries, and no Ray installed."""

from __future__ import annotations

import io
import json
import logging
import sys
import tarfile

import pandas as pd
import pytest
import torch

from wtal_kit.apps import cli
from wtal_kit import experiments as E
from wtal_kit.experiments import ray_runner as ray_executor
from wtal_kit.errors import InputError, WtalError


@pytest.fixture(scope="module")
def local_ray():
    """One small local Ray instance for the module (it takes several seconds to start)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20, logging_level=logging.WARNING)
    yield ray
    ray.shutdown()


def _bad_job(tmp_path) -> E.Job:
    """A job whose training raises inside the worker: its feature store does not exist."""
    config = E.grid(["table1"], "smoke", (0,))[0].config.replace(dataset=str(tmp_path / "missing.h5"))
    return E.Job(config, E.config_key(config), [("test", "bad")])


@pytest.mark.slow
def test_the_grid_on_ray_stores_what_the_local_runner_stores_and_reports_a_failing_task(tmp_path, local_ray):
    jobs = E.grid(["table4"], "smoke", (0, 1))  # two configs (blocks or not) x two seeds
    assert len(jobs) == 4
    # A Ray task trains on one thread, as each local worker does when there are as many workers
    # as cores; on CPU the thread count changes the last digits, so the local run uses one too.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        local = E.run_jobs(jobs, tmp_path / "local", progress=False)
    finally:
        torch.set_num_threads(threads)
    bad = _bad_job(tmp_path)
    on_ray = E.run_jobs([*jobs, bad], tmp_path / "ray", executor="ray", progress=False)

    assert sorted(on_ray.trained) == sorted(local.trained) == sorted(job.key for job in jobs)
    assert [key for key, _ in on_ray.failed] == [bad.key]
    message = on_ray.failed[0][1]
    assert "missing.h5" in message and f"failed {ray_executor.ATTEMPTS} times" in message and "\n" not in message
    assert "4 trained, 0 cached, 1 failed" in on_ray.line()

    local_store, ray_store = E.ResultsStore(tmp_path / "local"), E.ResultsStore(tmp_path / "ray")
    assert ray_store.keys() == local_store.keys()
    for job in jobs:
        mine, theirs = local_store.get(job.key), ray_store.get(job.key)
        assert theirs.results["map"] == mine.results["map"]  # exactly: training is seeded
        assert theirs.results["per_class_ap"] == mine.results["per_class_ap"]
        pd.testing.assert_frame_equal(theirs.metrics, mine.metrics, check_exact=True)
        assert theirs.info["key"] == job.key and theirs.info["seed"] == job.config.seed
        assert theirs.config == mine.config
        assert (theirs.path / "scores_test.h5").is_file() and (theirs.path / "checkpoint.pt").is_file()
    assert not list((tmp_path / "ray" / ".tmp").iterdir())  # no scratch folder left behind

    # a second run schedules nothing that is stored
    again = E.run_jobs(jobs, tmp_path / "ray", executor="ray", progress=False)
    assert (again.trained, sorted(again.cached), again.failed) == ([], sorted(job.key for job in jobs), [])


@pytest.mark.slow
def test_a_task_is_retried_once_then_reported_while_the_others_complete(tmp_path, local_ray):
    attempts = tmp_path / "attempts"
    attempts.mkdir()
    good, flaky = E.grid(["table1"], "smoke", (0, 1))
    bad = _bad_job(tmp_path)

    def counted(job):  # a nested function: Ray pickles it by value into its workers
        import ray

        from wtal_kit.experiments.ray_runner import train_entry

        with open(attempts / job.key, "a") as log:
            log.write(json.dumps(ray.get_runtime_context().get_assigned_resources()) + "\n")
        if job.key == flaky.key and len((attempts / job.key).read_text().splitlines()) == 1:
            raise OSError("the node's disk is full")  # its first attempt only
        return train_entry(job)

    records = []
    ray_executor.run_on_ray([bad, flaky, good], E.ResultsStore(tmp_path / "store"),
                            lambda *record: records.append(record), task=counted)

    tries = {job.key: (attempts / job.key).read_text().splitlines() for job in (bad, flaky, good)}
    assert {key: len(lines) for key, lines in tries.items()} == {bad.key: 2, flaky.key: 2, good.key: 1}
    assert all(json.loads(line) == {"CPU": 1.0} for lines in tries.values() for line in lines)  # no GPU here
    statuses = {key: (status, message) for key, status, message in records}
    assert len(records) == 3
    assert statuses[good.key] == ("trained", None) and statuses[flaky.key] == ("trained", None)
    assert statuses[bad.key][0] == "failed" and "missing.h5" in statuses[bad.key][1]
    assert E.ResultsStore(tmp_path / "store").keys() == sorted([good.key, flaky.key])


def test_a_gpu_request_the_cluster_cannot_meet_is_refused(tmp_path, local_ray):
    job = E.grid(["table1"], "smoke", (0,))[0]
    with pytest.raises(InputError, match="asks for 0.5 GPU but the Ray cluster has 0") as raised:
        E.run_jobs([job], tmp_path, executor="ray", gpus_per_task=0.5, progress=False)
    assert raised.value.field == "gpus_per_task"
    assert E.ResultsStore(tmp_path).keys() == []


def test_an_entry_sent_back_by_a_task_lands_whole_and_only_once(tmp_path):
    made = tmp_path / "made"
    made.mkdir()
    (made / E.ENTRY).write_text(json.dumps({"key": "k1"}))
    (made / "results.json").write_text(json.dumps({"map": {"avg": 0.25}}))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(made, arcname=".")
    store = E.ResultsStore(tmp_path / "store")
    (store.root / ".tmp" / "k1.4242.deadbeef").mkdir(parents=True)  # a killed run's scratch folder
    assert ray_executor.install_entry(store, "k1", buffer.getvalue()) == "trained"
    assert store.keys() == ["k1"] and store.get("k1").results == {"map": {"avg": 0.25}}
    assert not list((store.root / ".tmp").iterdir())
    assert ray_executor.install_entry(store, "k1", b"not even a tar file") == "cached"  # never unpacked
    with pytest.raises(tarfile.TarError):
        ray_executor.install_entry(store, "k2", b"not even a tar file")
    assert store.keys() == ["k1"] and not list((store.root / ".tmp").iterdir())


@pytest.mark.parametrize("value, ok", [(None, True), (0, True), (0.25, True), (1, True), (2, True),
                                       (-1, False), (1.5, False), ("1", False), (True, False), (float("nan"), False)])
def test_gpus_per_task_is_a_fraction_or_a_whole_number(value, ok):
    if ok:
        assert ray_executor.check_gpus_per_task(value) == (None if value is None else float(value))
    else:
        with pytest.raises(InputError) as raised:
            ray_executor.check_gpus_per_task(value)
        assert raised.value.field == "gpus_per_task"


@pytest.mark.parametrize("options", [dict(executor="dask"), dict(address="auto"), dict(gpus_per_task=0.5)])
def test_executor_options_are_checked(options):
    with pytest.raises(InputError) as raised:
        E.run_jobs([], executor=options.pop("executor", "local"), **options)
    assert raised.value.field == "executor"


def test_without_ray_the_executor_fails_with_one_line_before_anything_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(WtalError, match=r"pip install -e '\.\[cluster\]'"):
        E.run_jobs([_bad_job(tmp_path)], tmp_path / "api-store", executor="ray", progress=False)
    code = cli.main(["reproduce", "--mode", "smoke", "--only", "table1", "--executor", "ray",
                     "--store", str(tmp_path / "store"), "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == f"wtal reproduce: error: {ray_executor.RAY_MISSING}\n"
    assert not (tmp_path / "store").exists() and not (tmp_path / "out").exists() and not (tmp_path / "api-store").exists()


@pytest.mark.parametrize("flags, message", [
    (["--address", "auto"], "--address and --gpus-per-task are for --executor ray"),
    (["--gpus-per-task", "0.5"], "--address and --gpus-per-task are for --executor ray"),
    (["--executor", "ray", "--workers", "2"], "--workers is for --executor local"),
])
def test_reproduce_flags_that_do_not_go_together_are_refused(tmp_path, capsys, flags, message):
    code = cli.main(["reproduce", "--mode", "smoke", "--only", "table1", *flags,
                     "--store", str(tmp_path / "store"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


@pytest.mark.slow
def test_reproduce_hands_the_executor_options_to_the_runner(tmp_path, monkeypatch):
    import wtal_kit.experiments.notebooks

    seen = {}

    def fake_reproduce(*args, **kwargs):
        seen.update(kwargs)
        return {"grid": {"failed": []}, "notebooks": []}

    monkeypatch.setattr(wtal_kit.experiments.notebooks, "reproduce", fake_reproduce)
    code = cli.main(["reproduce", "--mode", "smoke", "--executor", "ray", "--address", "10.0.0.5:6379",
                     "--gpus-per-task", "0.25", "--store", str(tmp_path / "store")])
    assert code == 0
    assert (seen["executor"], seen["address"], seen["gpus_per_task"], seen["workers"]) == ("ray", "10.0.0.5:6379", 0.25, 1)
