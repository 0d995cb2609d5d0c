"""Group commit for votes: many signed votes, one durable transaction, then every answer.

A vote is small and a commit is expensive (an fsync on SQLite, a round trip and a WAL flush
on PostgreSQL), so one commit per vote caps ingestion at the disk's sync rate. Instead, the
HTTP handler verifies the signature itself (CPU only, no lock held) and hands the verified
vote to this process's single writer thread, which takes every vote waiting at that moment
(up to ``vote_batch_max``), records them with :func:`voting.service.record_votes` (each vote
decided in order by :func:`voting.rules.decide_vote`, seeing the votes before it, as if
alone; a refused vote writes nothing and gets its own error) and commits once. Only after
the commit returns does any caller get its answer: a 2xx always means the ballot is durable,
and if the commit fails every vote of the batch gets the error and none of them is stored.

With no other vote waiting, a vote is committed at once, alone: batching adds no delay, it
only lets votes that arrive during a commit share the next one. Several API processes each
have their own writer; they serialize on the proposal row lock as single votes did.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from governance.db import session_scope
from governance.errors import ServiceUnavailable
from governance.runtime import Runtime
from governance.signatures import VerifiedMessage
from voting.service import Accepted, preload_weights, record_votes

log = logging.getLogger("voting.writer")

_STOP = object()


@dataclass
class _Pending:
    verified: VerifiedMessage
    future: Future[Accepted] | asyncio.Future[Accepted]
    loop: asyncio.AbstractEventLoop | None  # the event loop of an asyncio future; None for a thread's


Outcome = Accepted | BaseException


class VoteWriter:
    """The process's vote writer (``runtime.vote_writer``, built by the composition root). Its
    thread starts with the first vote, so a process that never takes one runs none, and stops
    with the runtime (:meth:`stop`)."""

    def __init__(self, runtime: Runtime, max_batch: int):
        self.runtime = runtime
        self.max_batch = max_batch
        self.views = runtime.view_cache
        self._queue: queue.SimpleQueue[_Pending | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _put(self, pending: _Pending) -> None:
        # under the lock: a vote is never queued behind the stop marker of a thread that is going
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="vote-writer", daemon=True)
                self._thread.start()
            self._queue.put(pending)

    def submit(self, verified: VerifiedMessage) -> Future[Accepted]:
        """Queue a verified vote from any thread; the future resolves once its batch is committed
        (or raises the vote's own error, or the batch's)."""
        pending = _Pending(verified, Future(), None)
        self._put(pending)
        return pending.future  # type: ignore[return-value]

    def submit_async(self, verified: VerifiedMessage) -> asyncio.Future[Accepted]:
        """:meth:`submit` for a coroutine on the running event loop. The answers of a batch reach
        each loop in one wake-up, where a thread future per vote would cost one each."""
        loop = asyncio.get_running_loop()
        pending = _Pending(verified, loop.create_future(), loop)
        self._put(pending)
        return pending.future  # type: ignore[return-value]

    def stop(self) -> None:
        """Write what was queued, then stop the thread (if one runs); the next vote starts another."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is not None:
                self._queue.put(_STOP)
                thread.join()
            left: list[_Pending] = []
            while True:  # nothing should be left (votes are queued under the lock); never strand one
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, _Pending):
                    left.append(item)
            if left:
                self._settle(left, [ServiceUnavailable("the service is stopping; the vote was not stored",
                                                       code="database_unavailable")] * len(left))

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stopping = True  # write what came before it, then stop
                    break
                batch.append(more)
            try:
                outcomes = self._write(batch)  # type: ignore[arg-type]
                # before anyone is answered: a client reading after its 2xx sees its vote counted
                self.views.invalidate({p.verified.message_json["proposal"] for p in batch})  # type: ignore[union-attr]
                self._settle(batch, outcomes)  # type: ignore[arg-type]
            except BaseException as exc:  # the thread must outlive any one batch: every later vote waits on it
                log.exception("vote writer: a batch of %d failed outside its transaction", len(batch))
                self._settle(batch, [exc] * len(batch))  # type: ignore[arg-type]

    def _write(self, batch: list[_Pending]) -> list[Outcome]:
        try:
            preload_weights(self.runtime, [p.verified for p in batch])  # a chain node answers before any lock
            with session_scope(self.runtime.engine) as session:
                return record_votes(session, self.runtime, [p.verified for p in batch])  # type: ignore[return-value]
        except IntegrityError:
            # Another process stored one of these ballots between our lock and our insert
            # (cannot happen while the proposal row lock holds): decide each vote alone.
            log.warning("vote batch of %d hit a constraint; retrying its votes one by one", len(batch))
            return [self._write_one(pending) for pending in batch]
        except BaseException as exc:  # the commit (or the database) failed: nothing was stored
            if not isinstance(exc, Exception):
                log.exception("vote batch aborted")
            return [exc] * len(batch)

    def _write_one(self, pending: _Pending) -> Outcome:
        try:
            with session_scope(self.runtime.engine) as session:
                return record_votes(session, self.runtime, [pending.verified])[0]
        except BaseException as exc:
            return exc

    @staticmethod
    def _settle(batch: list[_Pending], outcomes: list[Outcome]) -> None:
        """Answer every vote of a committed (or failed) batch."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Accepted], Outcome]]] = {}
        for pending, outcome in zip(batch, outcomes, strict=True):
            if pending.loop is None:
                _resolve(pending.future, outcome)
            else:
                by_loop.setdefault(pending.loop, []).append((pending.future, outcome))  # type: ignore[arg-type]
        for loop, answers in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve_all, answers)
            except RuntimeError:  # the loop is closed: nobody is waiting for these answers
                log.warning("an event loop closed before %d vote answers reached it", len(answers))


def _resolve(future: Future[Accepted] | asyncio.Future[Accepted], outcome: Outcome) -> None:
    if future.done():  # the caller stopped waiting (its request was cancelled), or was answered
        return
    try:
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
    except (InvalidStateError, asyncio.InvalidStateError):  # cancelled between done() and here
        pass


def _resolve_all(answers: list[tuple[asyncio.Future[Accepted], Outcome]]) -> None:
    for future, outcome in answers:
        _resolve(future, outcome)

