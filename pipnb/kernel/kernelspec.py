"""The ``pipnb-fast`` kernelspec: an ordinary ipykernel command whose launches go to the fork server.

The kernelspec's ``argv`` is the normal ``python -m ipykernel_launcher -f {connection_file}`` of
the installing interpreter (plus an in-memory IPython history, see :data:`HISTORY_FILE`), so the
kernel can always start the ordinary way; its metadata names
the ``pipnb-fork-provisioner`` (entry point ``pipnb.kernel.provisioner:ForkServerProvisioner``),
which forks it from the server instead.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

KERNEL_NAME = "pipnb-fast"
DISPLAY_NAME = "Python 3 (pipnb fast)"
PROVISIONER_NAME = "pipnb-fork-provisioner"
HISTORY_FILE = ":memory:"
"""IPython history stays in memory, as nbclient arranges for ``python3``: parallel reports do not
contend for (or leave report code in) ``~/.ipython/.../history.sqlite``."""


def kernel_json(python: str | None = None) -> dict[str, Any]:
    """Return the ``kernel.json`` content of the fast kernel.

    Parameters
    ----------
    python
        Interpreter of the kernel (default ``sys.executable``).

    Returns
    -------
    dict
        ipykernel's own kernelspec with our name, display name and provisioner.

    Example
    -------
    >>> kernel_json("/venv/bin/python")["metadata"]["kernel_provisioner"]
    {'provisioner_name': 'pipnb-fork-provisioner'}
    """
    from ipykernel.kernelspec import get_kernel_dict  # ipykernel (0.1 s)

    spec = get_kernel_dict(extra_arguments=[f"--HistoryManager.hist_file={HISTORY_FILE}"])
    spec["argv"] = [python or sys.executable, *spec["argv"][1:]]
    spec["display_name"] = DISPLAY_NAME
    spec["metadata"] = {**spec.get("metadata", {}), "kernel_provisioner": {"provisioner_name": PROVISIONER_NAME}}
    return spec


def install(*, user: bool = False, prefix: str | Path | None = None) -> Path:
    """Install (or replace) the ``pipnb-fast`` kernelspec.

    Parameters
    ----------
    user
        Install for the current user (``~/.local/share/jupyter``).
    prefix
        Install under ``PREFIX/share/jupyter/kernels``; pass ``sys.prefix`` for the project's
        environment. With neither, install system-wide like ``jupyter kernelspec install``.

    Returns
    -------
    Path
        The installed kernelspec directory.

    Example
    -------
    >>> install(prefix=sys.prefix)  # doctest: +SKIP
    PosixPath('/work/main/.venv/share/jupyter/kernels/pipnb-fast')
    """
    from ipykernel.kernelspec import write_kernel_spec  # ipykernel (0.1 s)
    from jupyter_client.kernelspec import KernelSpecManager  # jupyter_client (90 ms)

    with tempfile.TemporaryDirectory() as tmp:
        source = write_kernel_spec(Path(tmp) / KERNEL_NAME, overrides=kernel_json())
        dest = KernelSpecManager().install_kernel_spec(
            source, KERNEL_NAME, user=user, prefix=str(prefix) if prefix is not None else None
        )
    return Path(dest)
