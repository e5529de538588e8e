"""The client's half of the fork server's protocol: one request per connection, and status and stop.

The protocol itself (one JSON line per message, descriptors passed with ``SCM_RIGHTS``) is described
in :mod:`pipnb.kernel.forkserver`. :func:`request` is the asynchronous form that a launch uses (it may
pass descriptors and keeps the connection open for the exit status); :func:`request_sync` the blocking
one behind :func:`server_status` and :func:`stop_server`.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipnb.kernel.launcher import ForkServerError, ServerAddress, reap_spawned

REPLY_TIMEOUT = 30.0


class ServerGone(ConnectionError):
    """The server closed the connection before answering (it is exiting); try again."""


async def request(
    path: Path, message: dict[str, Any], fds: Sequence[int] = (), *, timeout: float = REPLY_TIMEOUT
) -> tuple[socket.socket, dict[str, Any], bytes]:
    """Send one request, with ``fds`` attached, and read the server's first reply line.

    Returns
    -------
    sock : socket.socket
        The connection, still open (a launch reads the kernel's exit status on it later).
    reply : dict
        The reply.
    rest : bytes
        Whatever the server sent after the reply line.

    Raises
    ------
    ServerGone
        When the server closed the connection before answering.
    OSError
        When no server listens at ``path``.
    """
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, str(path))
        data = json.dumps(message).encode() + b"\n"
        sent = socket.send_fds(sock, [data], list(fds)) if fds else sock.send(data)
        if sent < len(data):
            await loop.sock_sendall(sock, data[sent:])
        buffer = bytearray()
        async with asyncio.timeout(timeout):
            while b"\n" not in buffer:
                try:
                    chunk = await loop.sock_recv(sock, 1 << 16)
                except ConnectionResetError:
                    chunk = b""
                if not chunk:
                    raise ServerGone(f"fork server at {path} closed the connection")
                buffer += chunk
    except BaseException:
        sock.close()
        raise
    line, rest = bytes(buffer).split(b"\n", 1)
    return sock, json.loads(line), rest


def request_sync(path: Path, message: dict[str, Any], *, timeout: float = REPLY_TIMEOUT) -> dict[str, Any]:
    """Send one request without file descriptors and return the server's reply (blocking).

    Parameters
    ----------
    path
        Server socket.
    message
        Request, e.g. ``{"op": "status"}``.
    timeout
        Seconds to wait for the reply.

    Returns
    -------
    dict
        The reply.

    Raises
    ------
    OSError
        When no server listens at ``path``.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(json.dumps(message).encode() + b"\n")
        buffer = bytearray()
        while b"\n" not in buffer:
            chunk = sock.recv(1 << 16)
            if not chunk:
                raise ServerGone(f"fork server at {path} closed the connection")
            buffer += chunk
    return json.loads(bytes(buffer).split(b"\n", 1)[0])


def server_status(address: ServerAddress) -> dict[str, Any] | None:
    """Return the status of the server at ``address``, or None when none is running.

    Parameters
    ----------
    address
        Server address.

    Returns
    -------
    dict or None
        ``pid``, ``uptime``, ``idle``, ``kernels`` (pids), ``threads``, ``os_threads``,
        ``preloaded``, ``failed``.
    """
    try:
        return request_sync(address.socket, {"op": "status"})
    except OSError:
        return None


def stop_server(address: ServerAddress, *, force: bool = False, wait: float = 10.0) -> bool:
    """Ask the server at ``address`` to exit and wait until it has.

    Parameters
    ----------
    address
        Server address.
    force
        Terminate running kernels too; otherwise a server with kernels refuses.
    wait
        Seconds to wait for the server to exit.

    Returns
    -------
    bool
        True when a server was running and has exited.

    Raises
    ------
    ForkServerError
        When the server refuses (kernels running and not ``force``) or does not exit in time.
    """
    try:
        reply = request_sync(address.socket, {"op": "stop", "force": force})
    except OSError:
        return False
    if not reply.get("ok"):
        raise ForkServerError(f"fork server {reply.get('pid', '')} refused to stop: {reply.get('error')}")
    pid = int(reply["pid"])
    deadline = time.monotonic() + wait
    while pid_running(pid):
        reap_spawned()
        if time.monotonic() > deadline:
            raise ForkServerError(f"fork server {pid} did not exit within {wait:g} s")
        time.sleep(0.02)
    return True


def pid_running(pid: int) -> bool:
    """True while process ``pid`` exists and is not a zombie (also when that cannot be told)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
