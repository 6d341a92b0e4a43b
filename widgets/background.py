"""Latest-only background work for dashboards: a slider that moves again drops the stale recompute.

A :class:`LatestOnly` runs one job at a time in a background thread, so that the kernel
keeps handling the page's messages (the next slider move) while a recompute runs. A job
submitted while another runs replaces any job still waiting: only the newest request is
ever started after the running one, never a queue of outdated ones. The running job can
see that it has been superseded (:meth:`LatestOnly.superseded`) and stop before drawing.

Standard library only; the widgets decide what a job is.
"""

from __future__ import annotations

import threading
from typing import Callable


class LatestOnly:
    """One background thread at a time; at most one job waiting, the newest.

    ``LatestOnly(background=False)`` runs every job at once in the caller's thread (the
    programmatic tests and plain notebook use, where a call should return with its result).
    """

    def __init__(self, background: bool = True):
        self.background = background
        self._lock = threading.Lock()
        self._waiting: Callable[[], None] | None = None
        self._running = False
        self._idle = threading.Event()
        self._idle.set()
        self._generation = 0  # bumped by every submit: a job compares it with its own
        self.started = 0  # jobs started
        self.dropped = 0  # jobs replaced before they started

    def submit(self, job: Callable[[int], None]) -> int:
        """Run ``job(generation)`` as soon as the running one (if any) ends; returns its generation."""
        with self._lock:
            self._generation += 1
            generation = self._generation
            call = lambda: job(generation)  # noqa: E731
            if not self.background:
                self.started += 1
            else:
                if self._waiting is not None:
                    self.dropped += 1
                self._waiting = call
                if self._running:
                    return generation
                self._running = True
                self._idle.clear()
        if not self.background:
            call()
        else:
            threading.Thread(target=self._work, name="wtal-latest-only", daemon=True).start()
        return generation

    def superseded(self, generation: int) -> bool:
        """True once a newer job has been submitted: the running one should stop without drawing."""
        return generation != self._generation

    @property
    def busy(self) -> bool:
        return not self._idle.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no job runs or waits; False on timeout."""
        return self._idle.wait(timeout)

    def _work(self) -> None:
        while True:
            with self._lock:
                call, self._waiting = self._waiting, None
                if call is None:
                    self._running = False
                    self._idle.set()
                    return
                self.started += 1
            try:
                call()
            except Exception:  # noqa: BLE001 - a job reports its own errors; the worker must go on
                pass
