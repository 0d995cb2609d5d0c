"""Per-client rate limiting: a token bucket per client address; past it, 429
(:class:`~governance.errors.RateLimited`) with ``Retry-After``.

Litestar's own limiter keeps a list of request times per client (O(limit) per request) and
sends no ``Retry-After``; a token bucket is O(1) and says exactly when to come back. Buckets
live in the process: behind a load balancer with several API processes, each process limits
on its own (set the proxy's limiter for a global one).

The client address is ``scope["client"]``: the socket's peer, unless the server replaced it
with what ``X-Forwarded-For`` says. ``dao serve`` lets uvicorn do that only for requests
from the proxies named in ``DAO_TRUSTED_PROXIES`` (default: none); uvicorn's own default
believes the header from 127.0.0.1, which let any local client, or any client behind a local
proxy, name a new address per request and never be limited.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict

from litestar.types import ASGIApp, Receive, Scope, Send

from governance.errors import RateLimited

EXEMPT_PATHS = ("/health",)
MAX_CLIENTS = 100_000  # oldest buckets are dropped beyond this; a dropped client starts full


class TokenBuckets:
    def __init__(self, per_minute: int, burst: int, now=time.monotonic):
        self.rate = per_minute / 60.0
        self.capacity = float(max(burst, 1))
        self.now = now
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """0 if the request may go ahead, else the seconds until it may."""
        t = self.now()
        with self._lock:
            tokens, last = self._buckets.pop(client, (self.capacity, t))
            tokens = min(self.capacity, tokens + (t - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, t)
                wait = 0.0
            else:
                self._buckets[client] = (tokens, t)
                wait = (1.0 - tokens) / self.rate
            if len(self._buckets) > MAX_CLIENTS:
                self._buckets.popitem(last=False)
        return wait


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, buckets: TokenBuckets):
        self.app = app
        self.buckets = buckets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        wait = self.buckets.take(client)
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        retry = max(1, math.ceil(wait))
        # answered like every error, by the app's one mapping (governance.http)
        raise RateLimited(f"too many requests from {client}; retry in {retry} s", retry_after=retry)


def rate_limit_middleware(per_minute: int, burst: int):
    """A middleware factory for Litestar, or None when limiting is off (per_minute = 0)."""
    if per_minute <= 0:
        return None
    buckets = TokenBuckets(per_minute, burst)

    def factory(app: ASGIApp) -> ASGIApp:
        return RateLimitMiddleware(app, buckets)

    return factory
