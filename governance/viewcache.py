"""A process's cache of rendered views (a proposal with its live tally), for hot GETs.

A proposal read is a handful of queries and a render: about a millisecond of Python that
competes with vote ingestion for the same core. Frontends poll the same few proposals, so
this process keeps each rendered view until the first of:

- a write in this process that may change it: the vote writer's commit drops the views of
  the proposals in its batch; any other write request, and every scheduler tick run here,
  drops them all (they are rare next to votes and reads);
- the moment the view would change by the clock alone (a pending proposal opens at
  ``starts_at``, voting closes at ``ends_at``), given by the caller;
- ``DAO_VIEW_CACHE_MS`` (default 1000) after it was rendered. This bounds how stale a read
  can be after a write made by *another* process (a second API process, ``dao scheduler``
  run apart, the CLI). 0 turns the cache off.

A render that raced with a write is never stored: :meth:`ViewCache.epoch` is taken before
the database is read, and :meth:`ViewCache.put` stores only if no write was noted since.

While votes stream in, every commit drops the view, and the reads that arrive before the
next render would each render it again (on PostgreSQL, reads at 500/s during ingestion then
queued for seconds). :meth:`ViewCache.fetch` lets them share one render instead, joining it
only if no write was noted since it began, and not if the clock passed a moment that changes
the view while it ran: a reader never gets a view older than a write answered before it came.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")


class ViewCache:
    def __init__(self, ttl_ms: int, max_entries: int = 4096, monotonic: Callable[[], float] = time.monotonic):
        self.ttl = ttl_ms / 1000
        self.max_entries = max_entries
        self._monotonic = monotonic
        self._entries: OrderedDict[str, tuple[Any, float, int | None]] = OrderedDict()
        self._epoch = 0
        self._lock = threading.Lock()
        # renders in progress, per event loop: (loop id, key) -> (epoch and clock time it began
        # at, its future)
        self._flights: dict[tuple[int, str], tuple[int, int, asyncio.Future[Any]]] = {}
        self.hits = self.misses = self.shared = 0

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    def epoch(self) -> int:
        """Take before reading the database; hand to :meth:`put` with what was read."""
        return self._epoch

    def get(self, key: str, now: int) -> Any | None:
        """The cached view, if still fresh at clock time ``now``; else None."""
        entry = self._entries.get(key)
        if entry is not None:
            view, expires, changes_at = entry
            if self._monotonic() < expires and (changes_at is None or now < changes_at):
                self.hits += 1
                return view
        self.misses += 1
        return None

    def put(self, key: str, view: Any, epoch: int, changes_at: int | None) -> None:
        """Keep ``view`` (rendered from a read that began at ``epoch``) until the TTL passes or
        the clock reaches ``changes_at``, unless a write was noted since ``epoch``."""
        if not self.enabled:
            return
        with self._lock:
            if epoch != self._epoch:
                return
            self._entries[key] = (view, self._monotonic() + self.ttl, changes_at)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    async def fetch(self, key: str, now: int, render: Callable[[], Awaitable[T]],
                    changes_at: Callable[[T, int], int | None]) -> T:
        """The view of ``key`` at clock time ``now``: cached, or the result of a render of it
        already running (begun since the last write), or of ``render()``. ``changes_at(view,
        now)`` is the next clock time at which ``view`` would read differently (or None)."""
        view = self.get(key, now)
        if view is not None:
            return view
        loop = asyncio.get_running_loop()
        flight_key = (id(loop), key)
        epoch = self._epoch
        flight = self._flights.get(flight_key)
        if flight is not None and flight[0] == epoch:
            began, shared = flight[1], flight[2]
            try:
                view = await asyncio.shield(shared)
            except asyncio.CancelledError:
                if not shared.cancelled():
                    raise  # this request was cancelled, not the render
            else:
                boundary = changes_at(view, began)  # the view is as of the clock time it began at
                if boundary is None or now < boundary:
                    self.shared += 1
                    return view
            # the render was cancelled, or the clock passed a boundary: render anew
            epoch = self._epoch
        future: asyncio.Future[T] = loop.create_future()
        if self.enabled:
            self._flights[flight_key] = (epoch, now, future)
        try:
            view = await render()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here: nobody may be waiting for it
            raise
        finally:
            if self._flights.get(flight_key, (0, 0, None))[2] is future:
                del self._flights[flight_key]
        future.set_result(view)
        self.put(key, view, epoch, changes_at(view, now))
        return view

    def invalidate(self, keys: Iterable[str] | None = None) -> None:
        """A write committed: drop these keys' views (every view when ``keys`` is None)."""
        with self._lock:
            self._epoch += 1
            if keys is None:
                self._entries.clear()
            else:
                for key in keys:
                    self._entries.pop(key, None)

