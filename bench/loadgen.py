"""A small HTTP/1.1 load generator on asyncio streams (keep-alive, pre-built requests).

It costs a few tens of microseconds a request, so on this 2-core machine it leaves the
server most of a core. Two modes: closed loop (N connections, each sends its next request
when the previous answer arrived: throughput) and open loop (requests started at a fixed
rate whatever the server does: latency at a given load, without coordinated omission).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)  # seconds, answered requests
    statuses: Counter = field(default_factory=Counter)
    bodies: list[tuple[int, int, bytes]] = field(default_factory=list)  # (request index, status, body)
    errors: int = 0
    elapsed: float = 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(q * len(xs)))]

    def summary(self) -> dict:
        n = len(self.latencies)
        return {"requests": n, "seconds": round(self.elapsed, 3),
                "per_second": round(n / self.elapsed, 1) if self.elapsed else None,
                "p50_ms": round(self.percentile(0.50) * 1000, 2), "p99_ms": round(self.percentile(0.99) * 1000, 2),
                "max_ms": round(max(self.latencies) * 1000, 2) if n else None,
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())}, "errors": self.errors}


def post(path: str, body: bytes, host: str) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def get(path: str, host: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, bytes]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    body = await reader.readexactly(length) if length else b""
    return status, body


@contextlib.contextmanager
def no_gc_pauses():
    """The harness holds tens of thousands of pre-built requests: a full collection in it would
    stall the load and, in the open loop, count as server latency. Collect before, not during
    (nested runs, as reads during votes are, collect once and re-enable at the outer end)."""
    outer = gc.isenabled()
    if outer:
        gc.collect()
        gc.disable()
    try:
        yield
    finally:
        if outer:
            gc.enable()


async def closed_loop(host: str, port: int, requests: Sequence[bytes], connections: int,
                      keep_bodies: bool = False) -> Result:
    """Send every request once over ``connections`` keep-alive connections."""
    result = Result()
    queue = iter(range(len(requests)))

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for i in queue:
                t0 = time.perf_counter()
                try:
                    status, body = await _exchange(reader, writer, requests[i])
                except (ConnectionError, asyncio.IncompleteReadError):
                    result.errors += 1
                    return
                result.latencies.append(time.perf_counter() - t0)
                result.statuses[status] += 1
                if keep_bodies:
                    result.bodies.append((i, status, body))
        finally:
            writer.close()

    with no_gc_pauses():
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        result.elapsed = time.perf_counter() - t0
    return result


async def open_loop(host: str, port: int, request: bytes, rate: float, seconds: float,
                    max_connections: int = 64) -> Result:
    """Start ``rate`` requests a second for ``seconds``; latency counts from the intended start."""
    result = Result()
    pool: asyncio.Queue = asyncio.Queue()
    opened = 0

    async def one(intended: float) -> None:
        nonlocal opened
        if pool.empty() and opened < max_connections:
            opened += 1
            conn = await asyncio.open_connection(host, port)
        else:
            conn = await pool.get()
        try:
            status, _ = await _exchange(*conn, request)
        except (ConnectionError, asyncio.IncompleteReadError):
            result.errors += 1
            return
        result.latencies.append(time.perf_counter() - intended)
        result.statuses[status] += 1
        pool.put_nowait(conn)

    tasks = []
    with no_gc_pauses():
        start = time.perf_counter()
        total = int(rate * seconds)
        for k in range(total):
            intended = start + k / rate
            delay = intended - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(intended)))
        await asyncio.gather(*tasks)
        result.elapsed = time.perf_counter() - start
    while not pool.empty():
        pool.get_nowait()[1].close()
    return result
