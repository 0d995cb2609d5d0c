"""Real ``dao`` processes a test (or the benchmark) starts, and what they share: a deployment
whose clock is a file, the environment each process reads its settings from, ``dao serve`` on
a free port, ``dao scheduler``, one ``dao`` command run to its end, and a TCP relay the test
can cut to take a database away."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from governance.bootstrap import bootstrap
from governance.clock import FileClock
from governance.runtime import Runtime
from governance.settings import load_settings
from governance.setup import create_deployment
from tests.support import START, TOKEN

# The settings of a deployment shared by test-started processes: voting opens at once and lasts
# ten minutes, a five-minute timelock, and no rate limit (a test's burst is not abuse).
SETTINGS = {"voting_delay": 0, "voting_period": 600, "timelock": 300, "grace_period": 3600,
            "rate_limit_per_minute": 0, "proposal_threshold": TOKEN, "chain_id": 31337}
UP_DEADLINE = 60  # seconds a process gets to come up (imports, migrations check) or to die
DAO = [sys.executable, "-m", "governance.cli"]
# the servers are local: a proxy named in the environment must not relay their requests
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def deployment(database_url: str, tmp_path: Path, settings: dict[str, Any] = SETTINGS
               ) -> tuple[Runtime, FileClock]:
    """A bootstrapped deployment at ``START`` whose clock, ``tmp_path / "clock"``, child processes
    read through ``DAO_TEST_CLOCK_FILE``."""
    clock = FileClock(tmp_path / "clock")
    clock.set(START)
    rt = bootstrap(load_settings(env={}, database_url=database_url, **settings), clock=clock)
    create_deployment(rt)
    return rt, clock


def dao_env(database_url: str, clock_file: Path, failpoint: str | None = None, **extra: str) -> dict[str, str]:
    """This process's environment with :data:`SETTINGS`, the database and the clock file as
    ``DAO_*`` variables, then ``extra`` (``DAO_NAME="value"``); ``DAO_FAILPOINT`` only if given."""
    env = {**os.environ, "DAO_DATABASE_URL": database_url, "DAO_TEST_CLOCK_FILE": str(clock_file),
           **{f"DAO_{k.upper()}": str(v) for k, v in SETTINGS.items()}, **extra}
    env.pop("DAO_FAILPOINT", None)
    if failpoint:
        env["DAO_FAILPOINT"] = failpoint
    return env


def dao(*args: str, env: Mapping[str, str]) -> subprocess.CompletedProcess:
    """``dao ARGS`` run to its end (two minutes at most), its output captured."""
    return subprocess.run([*DAO, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def start_scheduler(env: Mapping[str, str], log: Path) -> subprocess.Popen:
    """``dao -v scheduler`` running every second, its output in ``log``."""
    with log.open("w") as out:
        return subprocess.Popen([*DAO, "-v", "scheduler"], env={"DAO_SCHEDULER_INTERVAL": "1", **env},
                                stdout=out, stderr=subprocess.STDOUT)


class Server:
    """``dao serve`` as a child process on a free port of 127.0.0.1, up (``/health`` answered
    200) when the constructor returns. Its output is appended to ``log``: a server restarted on
    the same log keeps its predecessor's lines."""

    def __init__(self, env: Mapping[str, str], log: Path, *, scheduler: bool = False, verbose: bool = False):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        args = [*DAO, *(["-v"] if verbose else []), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        if not scheduler:
            args.append("--no-scheduler")
        self._out = log.open("a")
        self.proc = subprocess.Popen(args, env=dict(env), stdout=self._out, stderr=subprocess.STDOUT)
        try:
            self._wait_up()
        except BaseException:
            self.stop()
            raise

    def tail(self) -> str:
        return self.log.read_text()[-3000:]

    def get(self, path: str) -> Any:
        """``GET path``, its JSON body decoded (an error status raises)."""
        with _LOCAL.open(f"{self.base}{path}", timeout=10) as r:
            return json.loads(r.read())

    def _wait_up(self) -> None:
        deadline = time.monotonic() + UP_DEADLINE
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}: {self.tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException), \
                    _LOCAL.open(f"{self.base}/health", timeout=2):
                return  # 200: any other status raises HTTPError, an OSError
            time.sleep(0.05)
        raise RuntimeError(f"the server did not come up in {UP_DEADLINE} s: {self.tail()}")

    def kill(self) -> int:
        """SIGKILL; the exit status."""
        self.proc.send_signal(signal.SIGKILL)
        code = self.proc.wait(timeout=UP_DEADLINE)
        self._out.close()
        return code

    def stop(self) -> None:
        """SIGTERM, and SIGKILL if it has not ended within 20 s."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._out.close()


class TcpProxy:
    """A TCP relay the test can cut: every connection closed and new ones refused, until restored."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = free_port()
        self._lock = threading.Lock()
        self._socks: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            listener.close()
        with self._lock:
            socks, self._socks = self._socks, set()
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    client.close()
                    upstream.close()
                    return
                self._socks |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
