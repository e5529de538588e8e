"""The client a report's execution talks to its kernel through: :class:`PromptKernelClient`.

Named by the kernel-manager settings of :mod:`pipnb.execute` (``client_class``), so jupyter_client imports this
module in a pool worker when it starts a kernel; nothing else imports it (jupyter_client is loaded only to run
notebooks).
"""

from __future__ import annotations

import time
from queue import Empty

from jupyter_client.asynchronous import AsyncKernelClient

__all__ = ["PromptKernelClient"]


class PromptKernelClient(AsyncKernelClient):
    """The client nbclient talks to a report's kernel through: ready as soon as the kernel answers
    ``kernel_info`` and IOPub delivers a message (so it is connected), as jupyter_client's own check. That
    check then also waits until IOPub has been silent for 0.2 s, at every kernel start; nbclient reads only
    the IOPub messages answering its own requests, so the wait buys a report nothing."""

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        while True:
            self.kernel_info()
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                reply = None
            if reply is not None and reply["msg_type"] == "kernel_info_reply":
                try:
                    await self.iopub_channel.get_msg(timeout=0.2)
                except Empty:
                    pass                    # IOPub not connected yet: ask again
                else:
                    self._handle_kernel_info_reply(reply)
                    return
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")
