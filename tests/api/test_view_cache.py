"""`GET /v1/proposals/{id}` is served from a per-process cache of rendered views
(governance.viewcache). A reader must still never see a view older than a write this process
made before answering, nor one the clock has moved past.

To tell a cached view from a fresh one, the tests change a proposal's title in the database
behind the API's back (no API writes titles): a GET that still shows the old title was
served from the cache.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import update

from governance.db import session_scope
from governance.viewcache import ViewCache
from proposals.models import Proposal
from tests.support import Gov, Wallet, cancel_message


def _retitle_behind_the_api(runtime, pid: str, title: str) -> None:
    with session_scope(runtime.engine) as session:
        session.execute(update(Proposal).where(Proposal.id == pid).values(title=title))


def _proposal(gov: Gov) -> tuple[Wallet, str]:
    alice = Wallet.evm()
    gov.buy(alice, 50)
    pid = gov.proposal(alice, "PriceChange", price=120_000)
    return alice, pid


def test_a_repeated_read_is_served_from_the_cache(gov, runtime) -> None:
    _, pid = _proposal(gov)
    first = gov.get(pid)
    _retitle_behind_the_api(runtime, pid, "changed behind the API")
    assert gov.get(pid)["title"] == first["title"]  # from memory
    assert runtime.view_cache.hits >= 1
    # the same id in upper case is the same proposal and the same cached view
    assert gov.get("0x" + pid[2:].upper())["title"] == first["title"]


def test_an_accepted_vote_is_in_the_next_read(gov, runtime) -> None:
    alice, pid = _proposal(gov)
    gov.advance(runtime.settings.voting_delay)
    before = gov.get(pid)
    assert before["tally"]["for"] == "0"
    r = gov.vote(alice, pid, 1)
    assert r.status_code == 201, r.text
    after = gov.get(pid)
    assert after["tally"]["for"] == str(50 * 10**18)
    assert after["tally"]["ballots"] == 1


def test_a_refused_vote_leaves_the_cached_view_correct(gov, runtime) -> None:
    _, pid = _proposal(gov)
    gov.advance(runtime.settings.voting_delay)
    gov.get(pid)
    r = gov.vote(Wallet.solana(), pid, 1)  # no voting power
    assert r.status_code == 403
    assert gov.get(pid)["tally"]["ballots"] == 0


def test_any_write_request_drops_every_cached_view(gov, runtime) -> None:
    _, pid = _proposal(gov)
    gov.get(pid)
    _retitle_behind_the_api(runtime, pid, "seen after a write")
    gov.buy(Wallet.evm(), 1)  # an unrelated write
    assert gov.get(pid)["title"] == "seen after a write"


def test_a_cancel_is_in_the_next_read(gov, runtime) -> None:
    alice, pid = _proposal(gov)
    assert gov.get(pid)["state"] == "pending"
    r = gov.client.post(f"/v1/proposals/{pid}/cancel",
                        json=alice.sign(gov.domain, "Cancel", cancel_message(alice.address, pid, gov.now)))
    assert r.status_code == 200, r.text
    assert gov.get(pid)["state"] == "canceled"


def test_a_scheduler_tick_drops_every_cached_view(gov, runtime) -> None:
    alice, pid = _proposal(gov)
    gov.advance(runtime.settings.voting_delay)
    assert gov.vote(alice, pid, 1).status_code == 201
    gov.advance(runtime.settings.voting_period)
    assert gov.get(pid)["state"] == "active"  # closed by the clock, not yet tallied
    assert gov.tick()["finalize"] == 1
    view = gov.get(pid)
    assert view["state"] == "queued"
    assert view["result"]["outcome"] == "succeeded"

    _retitle_behind_the_api(runtime, pid, "after an idle tick")
    gov.tick()  # nothing to do, and still the cache is dropped (a job may write without counting)
    assert gov.get(pid)["title"] == "after an idle tick"


def test_a_view_is_not_served_past_the_moment_the_clock_changes_it(gov, runtime) -> None:
    _, pid = _proposal(gov)
    pending = gov.get(pid)
    assert pending["state"] == "pending" and not pending["voting_open"]
    gov.advance(runtime.settings.voting_delay - 1)
    assert not gov.get(pid)["voting_open"]  # one second early: still the cached view
    gov.advance(1)  # starts_at
    opened = gov.get(pid)
    assert opened["state"] == "active" and opened["voting_open"]
    gov.advance(runtime.settings.voting_period - 1)
    assert gov.get(pid)["voting_open"]
    gov.advance(1)  # ends_at
    assert not gov.get(pid)["voting_open"]


def test_unknown_proposals_are_not_cached(gov, runtime) -> None:
    missing = "0x" + "cd" * 32
    assert gov.client.get(f"/v1/proposals/{missing}").status_code == 404
    assert gov.client.get(f"/v1/proposals/{missing}").status_code == 404
    assert runtime.view_cache.hits == 0


@pytest.mark.parametrize("settings_overrides", [{"view_cache_ms": 0}])
def test_a_ttl_of_zero_turns_the_cache_off(gov, runtime, settings_overrides) -> None:
    _, pid = _proposal(gov)
    gov.get(pid)
    _retitle_behind_the_api(runtime, pid, "no cache")
    assert gov.get(pid)["title"] == "no cache"
    assert runtime.view_cache.hits == 0


# ViewCache on its own: TTL, races with writes, size bound


class _Monotonic:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_view_expires_after_the_ttl() -> None:
    mono = _Monotonic()
    cache = ViewCache(ttl_ms=1000, monotonic=mono)
    cache.put("p", "view", cache.epoch(), changes_at=None)
    mono.t += 0.999
    assert cache.get("p", now=0) == "view"
    mono.t += 0.001
    assert cache.get("p", now=0) is None


def test_a_render_that_raced_a_write_is_not_stored() -> None:
    cache = ViewCache(ttl_ms=1000)
    epoch = cache.epoch()  # a reader starts rendering
    cache.invalidate({"other"})  # a write commits meanwhile (any write bumps the epoch)
    cache.put("p", "stale view", epoch, changes_at=None)
    assert cache.get("p", now=0) is None
    cache.put("p", "fresh view", cache.epoch(), changes_at=None)
    assert cache.get("p", now=0) == "fresh view"


def test_invalidating_some_keys_keeps_the_others() -> None:
    cache = ViewCache(ttl_ms=1000)
    cache.put("a", 1, cache.epoch(), changes_at=None)
    cache.put("b", 2, cache.epoch(), changes_at=None)
    cache.invalidate({"a"})
    assert cache.get("a", now=0) is None
    assert cache.get("b", now=0) == 2


def test_the_cache_keeps_at_most_max_entries_dropping_the_oldest() -> None:
    cache = ViewCache(ttl_ms=1000, max_entries=3)
    for key in "abcd":
        cache.put(key, key, cache.epoch(), changes_at=None)
    assert cache.get("a", now=0) is None
    assert [cache.get(k, now=0) for k in "bcd"] == ["b", "c", "d"]


def test_a_negative_ttl_is_refused() -> None:
    from governance.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="DAO_VIEW_CACHE_MS"):
        load_settings(env={"DAO_VIEW_CACHE_MS": "-1"})


# ViewCache.fetch: concurrent misses share one render, unless a write or the clock intervenes


class _Renders:
    """A render the test releases by hand, counting how many began."""

    def __init__(self) -> None:
        self.began = 0
        self.gates: list[asyncio.Future] = []

    def __call__(self, value: object):
        async def render() -> object:
            self.began += 1
            gate = asyncio.get_running_loop().create_future()
            self.gates.append(gate)
            await gate
            if isinstance(value, BaseException):
                raise value
            return value
        return render

    def release(self, i: int) -> None:
        self.gates[i].set_result(None)


async def _until(condition) -> None:
    for _ in range(100):  # a few turns of the loop: the tasks only wait on each other
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


async def _started(awaitable) -> asyncio.Future:
    """The awaitable as a task that has had one turn of the loop (it is waiting on its render)."""
    task = asyncio.ensure_future(awaitable)
    await asyncio.sleep(0)
    return task


def _run(scenario) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 10))  # a render nobody releases fails, never hangs


def _no_boundary(view: object, now: int) -> int | None:
    return None


def test_concurrent_misses_share_one_render() -> None:
    async def scenario() -> None:
        cache, renders = ViewCache(ttl_ms=1000), _Renders()
        first = await _started(cache.fetch("p", 0, renders("v1"), _no_boundary))
        others = [asyncio.ensure_future(cache.fetch("p", 0, renders("other"), _no_boundary)) for _ in range(5)]
        await asyncio.sleep(0)  # all five are waiting
        renders.release(0)
        assert await first == "v1"
        assert await asyncio.gather(*others) == ["v1"] * 5
        assert renders.began == 1 and cache.shared == 5

    _run(scenario)


def test_a_miss_after_a_write_does_not_join_a_render_begun_before_it() -> None:
    async def scenario() -> None:
        cache, renders = ViewCache(ttl_ms=1000), _Renders()
        before = await _started(cache.fetch("p", 0, renders("old"), _no_boundary))
        cache.invalidate({"p"})  # a vote committed and was answered
        after = await _started(cache.fetch("p", 0, renders("new"), _no_boundary))
        renders.release(0)
        renders.release(1)
        assert await before == "old" and await after == "new"
        assert renders.began == 2
        assert cache.get("p", 0) == "new"  # the older render, begun before the write, was not stored

    _run(scenario)


def test_a_miss_past_a_clock_boundary_renders_anew() -> None:
    async def scenario() -> None:
        cache, renders = ViewCache(ttl_ms=1000), _Renders()

        def opens_at_100(view: object, now: int) -> int | None:
            return 100 if now < 100 else None

        early = await _started(cache.fetch("p", 99, renders("pending"), opens_at_100))
        late = await _started(cache.fetch("p", 100, renders("active"), opens_at_100))
        renders.release(0)
        await _until(lambda: renders.began == 2)  # the late reader saw "pending" was stale
        renders.release(1)
        assert await early == "pending" and await late == "active"
        assert renders.began == 2

    _run(scenario)


def test_a_failed_render_fails_its_waiters_and_is_not_stored() -> None:
    async def scenario() -> None:
        cache, renders = ViewCache(ttl_ms=1000), _Renders()
        leader = await _started(cache.fetch("p", 0, renders(LookupError("gone")), _no_boundary))
        waiter = await _started(cache.fetch("p", 0, renders("unused"), _no_boundary))
        renders.release(0)
        for task in (leader, waiter):
            with pytest.raises(LookupError):
                await task
        assert cache.get("p", 0) is None and renders.began == 1

    _run(scenario)


def test_a_waiter_renders_itself_when_the_leading_request_is_cancelled() -> None:
    async def scenario() -> None:
        cache, renders = ViewCache(ttl_ms=1000), _Renders()
        leader = await _started(cache.fetch("p", 0, renders("never"), _no_boundary))
        waiter = await _started(cache.fetch("p", 0, renders("own"), _no_boundary))
        leader.cancel()  # the first client went away
        await _until(lambda: renders.began == 2)
        renders.release(1)
        assert await waiter == "own"
        assert leader.cancelled() and renders.began == 2

    _run(scenario)
