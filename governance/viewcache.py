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
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any


class ViewCache:
    def __init__(self, ttl_ms: int, max_entries: int = 4096, monotonic: Callable[[], float] = time.monotonic):
        self.ttl = ttl_ms / 1000
        self.max_entries = max_entries
        self._monotonic = monotonic
        self._entries: OrderedDict[str, tuple[Any, float, int | None]] = OrderedDict()
        self._epoch = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

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

    def invalidate(self, keys: Iterable[str] | None = None) -> None:
        """A write committed: drop these keys' views (every view when ``keys`` is None)."""
        with self._lock:
            self._epoch += 1
            if keys is None:
                self._entries.clear()
            else:
                for key in keys:
                    self._entries.pop(key, None)


def view_cache(runtime: Any) -> ViewCache:
    """The runtime's view cache (made on first use)."""
    cache = runtime.extras.get("view_cache")
    if cache is None:
        cache = runtime.extras.setdefault("view_cache", ViewCache(runtime.settings.view_cache_ms))
    return cache
