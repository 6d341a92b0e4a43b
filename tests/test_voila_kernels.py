"""widgets.voila_kernels.PageKernelManager: a kernel ends a few seconds after its page's last websocket closed.

The connection counts are jupyter_server's own (notify_connect / notify_disconnect, as the kernel
websocket calls them); starting and shutting down kernels is replaced by a record, so the test is
about the decision, in an event loop, in well under a second.
"""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("jupyter_server")

from widgets.voila_kernels import PageKernelManager  # noqa: E402


class Recording(PageKernelManager):
    """Kernels "a" and "b" exist; shutdowns are recorded instead of done."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.ended = []
        for kernel_id in ("a", "b"):
            self._kernel_connections[kernel_id] = 0  # as start_kernel leaves a new kernel

    def __contains__(self, kernel_id):
        return kernel_id in self._kernel_connections

    def kernel_model(self, kernel_id):
        return {"id": kernel_id, "connections": self._kernel_connections[kernel_id]}

    async def shutdown_kernel(self, kernel_id, *args, **kwargs):
        self.ended.append(kernel_id)
        self._kernel_connections.pop(kernel_id)


def test_a_closed_page_ends_its_kernel_and_a_reconnect_keeps_it():
    async def scenario():
        manager = Recording(close_grace=0.05)
        manager.notify_connect("a")
        manager.notify_connect("b")
        manager.notify_disconnect("a")  # a's page closed
        manager.notify_disconnect("b")  # b's websocket dropped ...
        manager.notify_connect("b")  # ... and came back within the grace
        await asyncio.sleep(0.2)
        return manager

    manager = asyncio.run(scenario())
    assert manager.ended == ["a"]
    assert "b" in manager and manager.connections("b") == 1


def test_a_kernel_with_a_second_page_still_open_is_kept():
    async def scenario():
        manager = Recording(close_grace=0.05)
        manager.notify_connect("a")
        manager.notify_connect("a")
        manager.notify_disconnect("a")
        await asyncio.sleep(0.2)
        return manager

    assert asyncio.run(scenario()).ended == []
