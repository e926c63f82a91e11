"""A small, time-bounded client for supervisord's XML-RPC API over its unix socket."""

from __future__ import annotations

import http.client
import socket
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast


class SupervisorUnavailable(RuntimeError):
    """supervisord is not running or does not answer on its socket."""


@dataclass(frozen=True)
class ProcessInfo:
    """One supervised process: its name, state (RUNNING, STARTING, ...) and PID (0 if none)."""

    name: str
    state: str
    pid: int

    @property
    def running(self) -> bool:
        """True when the process is up."""
        return self.state == "RUNNING" and self.pid > 0


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout_s: float) -> None:
        super().__init__("localhost", timeout=timeout_s)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(str(self._path))
        self.sock = sock


class _UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path: Path, timeout_s: float) -> None:
        super().__init__()
        self._path = path
        self._timeout_s = timeout_s

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        return _UnixConnection(self._path, self._timeout_s)


@dataclass(frozen=True)
class SupervisorClient:
    """Talks to one supervisord through ``socket_path``; every call times out."""

    socket_path: Path
    timeout_s: float = 5.0

    def _call(self, method: str, *args: Any) -> Any:
        transport = _UnixTransport(self.socket_path, self.timeout_s)
        proxy = xmlrpc.client.ServerProxy("http://localhost/RPC2", transport=transport)
        try:
            return getattr(proxy, method)(*args)
        except (OSError, xmlrpc.client.ProtocolError) as exc:
            raise SupervisorUnavailable(
                f"supervisord at {self.socket_path} did not answer {method}: {exc}"
            ) from exc

    def is_up(self) -> bool:
        """True when supervisord answers and reports itself RUNNING."""
        if not self.socket_path.exists():
            return False
        try:
            state = cast(dict[str, Any], self._call("supervisor.getState"))
        except SupervisorUnavailable:
            return False
        return state.get("statename") == "RUNNING"

    def processes(self) -> list[ProcessInfo]:
        """Every supervised process with its state and PID."""
        infos = cast(list[dict[str, Any]], self._call("supervisor.getAllProcessInfo"))
        return [ProcessInfo(i["name"], i["statename"], int(i["pid"])) for i in infos]

    def pid(self) -> int:
        """PID of supervisord itself."""
        return int(self._call("supervisor.getPID"))

    def shutdown(self) -> None:
        """Stop every process, then supervisord."""
        self._call("supervisor.shutdown")
