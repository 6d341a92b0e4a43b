"""The apps' kernel manager in the Voilà server: a page's kernel ends with the page.

Voilà starts (or, preheated, hands out) one kernel per page view. Its page's ``beforeunload``
beacon shuts it down (once the page has an ``_xsrf`` cookie, which the apps' template gives it:
without one the server refused every beacon, and closed pages kept their kernels, 430 MB each for
the explorer). A tab that crashes, a machine that sleeps or a lost network sends no beacon; here the
server itself notices: when the last websocket of a kernel closes and none reconnects within
``close_grace`` seconds, the kernel is shut down.
A kernel that no page ever connected to (a preheated one waiting in the pool) is left alone;
jupyter_server's culling (``cull_idle_timeout``, set by :mod:`wtal_kit.apps.serve`) ends one whose
page went away before it connected.

``wtal_kit.apps.serve`` names this class on Voilà's command line
(``--VoilaConfiguration.multi_kernel_manager_class``); Voilà adds its kernel pool on top of it.
"""

from __future__ import annotations

import asyncio

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from traitlets import Float

from wtal_kit.apps.serve import CLOSE_GRACE


class PageKernelManager(AsyncMappingKernelManager):
    """Shuts a kernel down ``close_grace`` seconds after its last websocket closed, unless one reconnected."""

    close_grace = Float(float(CLOSE_GRACE), config=True, help="seconds a kernel waits for its page to reconnect before it is shut down")

    def connections(self, kernel_id: str) -> int:
        """Open websockets of ``kernel_id`` (0 for an unknown kernel, or one going away)."""
        try:
            return int(self.kernel_model(kernel_id).get("connections", 0)) if kernel_id in self else 0
        except KeyError:
            return 0

    def notify_disconnect(self, kernel_id: str) -> None:
        super().notify_disconnect(kernel_id)  # called in the server's event loop, by the closing websocket
        if kernel_id in self and self.connections(kernel_id) == 0:
            asyncio.get_running_loop().call_later(self.close_grace, self._end_if_unused, kernel_id)

    def _end_if_unused(self, kernel_id: str) -> None:
        if kernel_id in self and self.connections(kernel_id) == 0:
            self.log.info("Shutting down kernel %s: its page closed %g s ago", kernel_id, self.close_grace)
            asyncio.ensure_future(self.shutdown_kernel(kernel_id))
