"""widgets.background.LatestOnly: one job at a time, only the newest waiting one runs next."""

from __future__ import annotations

import threading

from widgets.background import LatestOnly


def test_synchronous_mode_runs_each_job_at_once():
    worker, seen = LatestOnly(background=False), []
    for value in range(3):
        worker.submit(lambda generation, value=value: seen.append((value, generation, worker.superseded(generation))))
    assert seen == [(0, 1, False), (1, 2, False), (2, 3, False)]
    assert worker.dropped == 0 and not worker.busy


def test_background_mode_drops_waiting_jobs_and_marks_the_running_one_superseded():
    worker, gate, entered = LatestOnly(), threading.Event(), threading.Event()
    seen, stale_seen = [], []

    def blocking(generation):
        entered.set()
        assert gate.wait(10)
        stale_seen.append(worker.superseded(generation))
        seen.append("first")

    worker.submit(blocking)
    assert entered.wait(10)
    for value in range(4):
        worker.submit(lambda generation, value=value: seen.append(value))
    assert worker.busy and seen == []
    gate.set()
    assert worker.wait(10)
    assert seen == ["first", 3]  # the three older waiting jobs never ran
    assert stale_seen == [True]  # the running job could tell that newer work had arrived
    assert worker.dropped == 3 and worker.started == 2 and not worker.busy


def test_a_failing_job_does_not_stop_the_worker():
    worker, seen = LatestOnly(), []
    worker.submit(lambda generation: 1 / 0)
    assert worker.wait(10)
    worker.submit(lambda generation: seen.append(generation))
    assert worker.wait(10)
    assert seen == [2]
