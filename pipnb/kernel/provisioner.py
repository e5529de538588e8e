"""``ForkServerProvisioner``: a jupyter_client kernel provisioner that forks kernels from the fork server.

jupyter_client finds it through the ``jupyter_client.kernel_provisioners`` entry point
``pipnb-fork-provisioner`` named in the ``pipnb-fast`` kernelspec. It is the
:class:`~jupyter_client.provisioning.LocalProvisioner` (same connection file, environment and
command) except for the launch: the kernel is forked by the fork server, so it is not this
process's child. The provisioner keeps the server connection and a pidfd instead of a ``Popen``:
``poll``/``wait`` read the exit status the server reports after reaping the kernel, and
``send_signal``/``kill``/``terminate`` signal the kernel's process group with ``os.killpg``.

Where forking is unavailable (``pipnb.kernel.fork_supported()`` false, e.g. ``PIPNB_FAST_KERNEL=0``)
or the server cannot start, it launches the kernel the ordinary way and logs one warning line, so
``papermill -k pipnb-fast`` always runs.

Configuration (traitlets; also via ``"config"`` in the kernelspec's ``kernel_provisioner``)
---------------------------------------------------------------------------------------------
``transport``
    ``"ipc"`` (default): kernels listen on Unix sockets in the runtime directory, which avoids
    TCP port races between parallel workers; ``"tcp"`` keeps the kernel manager's setting.
``fallback``
    Launch a normal kernel when the fork server is unavailable (default True).
``start_timeout``
    Seconds allowed for starting the fork server (default 60).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
from typing import Any

from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.provisioning import LocalProvisioner
from traitlets import Bool, CaselessStrEnum, Float

from pipnb.kernel import fork_supported
from pipnb.kernel.forked import ForkedKernel, launch_kernel
from pipnb.kernel.launcher import SOCKET_PATH_MAX, ForkServerError, runtime_dir


class ForkServerProvisioner(LocalProvisioner):  # type: ignore[misc]
    """Launch ipykernels by forking them from a server that has the heavy libraries imported.

    Each kernel is a fresh child of the server: nothing one kernel sets is visible to the next.
    Interrupt, restart, shutdown and a dying kernel behave as with :class:`LocalProvisioner`.
    """

    transport = CaselessStrEnum(
        ["ipc", "tcp"], default_value="ipc", config=True, help="Transport for forked kernels."
    )
    fallback = Bool(True, config=True, help="Launch a normal kernel when the fork server is unavailable.")
    start_timeout = Float(60.0, config=True, help="Seconds allowed for starting the fork server.")

    _forked: ForkedKernel | None = None
    _use_fork: bool = False

    @property
    def has_process(self) -> bool:
        """True while a kernel launched by this provisioner has not been waited for."""
        return self._forked is not None or super().has_process

    @property
    def forked(self) -> bool:
        """True when the current kernel was forked by the fork server (not launched normally)."""
        return self._forked is not None

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        """Prepare the launch as :class:`LocalProvisioner` does, switching to IPC when forking.

        Parameters
        ----------
        **kwargs
            Keyword arguments of ``KernelManager.start_kernel``.

        Returns
        -------
        dict
            Arguments for :meth:`launch_kernel` (``cmd``, ``env``, ``cwd`` ...).
        """
        self._use_fork, reason = fork_supported()
        if not self._use_fork:
            self.log.info("pipnb fast kernel: %s; launching a normal kernel", reason)
        elif self.transport == "ipc":
            self._use_ipc()
        return await super().pre_launch(**kwargs)

    def _use_ipc(self) -> None:
        """Give a fresh kernel manager IPC sockets under the runtime directory (short paths)."""
        km = self.parent
        if km is None or km.transport != "tcp" or getattr(km, "_connection_file_written", False):
            return
        if any(getattr(km, f"{name}_port", 0) for name in ("shell", "iopub", "stdin", "hb", "control")):
            return  # ports were chosen by the caller: keep TCP
        prefix = runtime_dir() / f"pk-{secrets.token_hex(4)}"
        if len(str(prefix)) + 6 > SOCKET_PATH_MAX:
            return
        km.transport = "ipc"
        km.ip = str(prefix)
        km.cache_ports = False

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        """Fork the kernel from the server (starting it if needed), or launch it normally.

        Parameters
        ----------
        cmd
            Formatted kernelspec argv.
        **kwargs
            ``env``, ``cwd`` and Popen-style ``stdin``/``stdout``/``stderr`` from :meth:`pre_launch`.

        Returns
        -------
        KernelConnectionInfo
            The connection information written by :meth:`pre_launch`.

        Raises
        ------
        ForkServerError
            When forking fails and ``fallback`` is off.
        """
        if self._use_fork:
            env = dict(kwargs.get("env") or os.environ)
            env["JPY_PARENT_PID"] = str(os.getpid())  # what a normal launch puts in the kernel's env
            try:
                self._forked = await launch_kernel(
                    cmd,
                    cwd=kwargs.get("cwd"),
                    env=env,
                    stdin=kwargs.get("stdin"),
                    stdout=kwargs.get("stdout"),
                    stderr=kwargs.get("stderr"),
                    start_timeout=self.start_timeout,
                )
            except ForkServerError as exc:
                if not self.fallback:
                    raise
                self.log.warning("pipnb fast kernel unavailable (%s); launching a normal kernel", exc)
            else:
                self.pid = self.pgid = self._forked.pid
                self.cwd = kwargs.get("cwd") or os.getcwd()
                return self.connection_info
        return await super().launch_kernel(cmd, **kwargs)

    async def poll(self) -> int | None:
        """Return None while the kernel runs, else its exit code (``-N`` if killed by signal N)."""
        if self._forked is not None:
            return self._forked.poll()
        return await super().poll()

    async def wait(self) -> int | None:
        """Wait until the kernel has exited, then release it; return its exit code."""
        if self._forked is None:
            return await super().wait()
        while (code := self._forked.poll()) is None:
            await asyncio.sleep(0.05)
        self._forked.close()
        self._forked = None
        return code

    async def send_signal(self, signum: int) -> None:
        """Send ``signum`` to the kernel's process group (the kernel and its subprocesses)."""
        if self._forked is not None:
            self._forked.send_signal(signum)
            return
        await super().send_signal(signum)

    async def kill(self, restart: bool = False) -> None:
        """Kill the kernel with SIGKILL."""
        if self._forked is not None:
            self._forked.send_signal(signal.SIGKILL)
            return
        await super().kill(restart=restart)

    async def terminate(self, restart: bool = False) -> None:
        """Ask the kernel to exit with SIGTERM."""
        if self._forked is not None:
            self._forked.send_signal(signal.SIGTERM)
            return
        await super().terminate(restart=restart)

    async def cleanup(self, restart: bool = False) -> None:
        """Release the server connection (the server then ends the kernel if it still runs)."""
        if self._forked is not None:
            self._forked.close()
            self._forked = None
        await super().cleanup(restart=restart)

    async def get_provisioner_info(self) -> dict[str, Any]:
        """Return what :meth:`load_provisioner_info` needs to re-attach to the kernel."""
        info = await super().get_provisioner_info()
        info["forked"] = self._forked is not None
        return info

    async def load_provisioner_info(self, provisioner_info: dict[str, Any]) -> None:
        """Re-attach to a forked kernel by pid.

        Without the server connection the exit status cannot be learned: a kernel found gone
        reports :attr:`ForkedKernel.UNKNOWN_EXIT`.
        """
        await super().load_provisioner_info(provisioner_info)
        if provisioner_info.get("forked") and self.pid:
            self._forked = ForkedKernel(int(self.pid), None)
