"""The benchmark harness: ``./dev bench`` (or ``python -m bench``).

Phases, each printing its figures as it goes:

1. raw signature verification, one core: the bare primitive (secp256k1 recovery, ed25519
   verify) and the full check the server runs (decode the envelope, EIP-712 digest or canonical
   JSON, verify, compare the signer);
2. vote ingestion over real HTTP to one ``dao serve`` process, per database: pre-signed votes
   from distinct holders sent over concurrent keep-alive connections, every one answered 201
   after its transaction committed; votes/s, p50/p99, and the ratio to raw verification;
3. reads: ``GET /v1/proposals/{id}`` (live tally) at a fixed arrival rate, p99; then again
   while every EIP-712 holder changes their vote (the tally moves with every batch);
4. finalizing 1,000,000 ballots: a server with its scheduler finds the closed proposal and
   tallies it; the seconds it reports, the ratio to a bare SQL aggregate over the same table,
   and the server's peak RSS afterwards.

Results go to ``bench/results.json`` and the table in ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import text

from bench import deploy, loadgen
from bench.signer import Signer, vote_body
from governance.clock import FileClock
from governance.db import is_sqlite
from governance.signatures import Envelope, recover_evm_address, solana_public_key, verify_ed25519, verify_envelope
from tests.support.processes import Server

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"eip712_votes_per_s": 1500, "ed25519_votes_per_s": 2000, "ratio_to_raw": 0.3,
           "finalize_1m_s": 10.0, "read_p99_ms": 25.0, "peak_rss_mb": 300}


def say(*parts: object) -> None:
    print(*parts, flush=True)


# ---------------------------------------------------------------- servers

def start_server(url: str, name: str, *, scheduler: bool, **settings: object) -> Server:
    """One ``dao -v serve`` process on a deployment; its output in ``bench/.work/server-NAME.log``
    (the finalize phase reads its log line from there)."""
    log = deploy.WORK / f"server-{name}.log"
    log.unlink(missing_ok=True)
    return Server({**os.environ, **deploy.settings_env(url, **settings)}, log, scheduler=scheduler, verbose=True)


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- phase 1: raw verification

def raw_verification(encoder, proposal: str, now: int, n: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for scheme, make in (("eip712", Signer.evm), ("ed25519", Signer.solana)):
        bodies = [vote_body(make(100_000 + i), encoder, proposal, 1, now) for i in range(n)]
        envelopes = [msgspec.json.decode(b, type=Envelope) for b in bodies]
        if scheme == "eip712":
            digests = [encoder.digest("Vote", e.message) for e in envelopes]
            t0 = time.perf_counter()
            for d, e in zip(digests, envelopes, strict=True):
                recover_evm_address(d, e.signature)
        else:
            from governance.typed_data import canonical_json
            payloads = [canonical_json(encoder.domain, "Vote", e.message) for e in envelopes]
            solana_public_key.cache_clear()
            t0 = time.perf_counter()
            for p, e in zip(payloads, envelopes, strict=True):
                verify_ed25519(p, e.signer, e.signature)
        primitive = n / (time.perf_counter() - t0)
        solana_public_key.cache_clear()  # every signer is new to the server: no loop may find it decoded
        t0 = time.perf_counter()
        for b in bodies:
            verify_envelope(msgspec.json.decode(b, type=Envelope), encoder)
        full = n / (time.perf_counter() - t0)
        out[scheme] = {"primitive_per_s": round(primitive), "envelope_per_s": round(full)}
        say(f"  {scheme:8} primitive {primitive:8.0f}/s   full envelope check {full:8.0f}/s")
    return out


# ---------------------------------------------------------------- phase 2 and 3: ingestion, reads

class Profiler:
    """py-spy attached to the server for one load run (``--profile``): collapsed stacks, and the
    frames that hold the most samples, printed. ``gil`` samples only the thread holding the GIL
    (where the one core goes); ``wall`` samples every thread that py-spy does not see idle, so
    time spent waiting on the database shows too (where a vote's latency goes)."""

    def __init__(self, pid: int, name: str, mode: str = "gil"):
        self.out = deploy.WORK / f"profile-{name}.txt"
        spy = Path(sys.executable).with_name("py-spy")
        self.proc = subprocess.Popen([str(spy), "record", "--pid", str(pid), "--format", "raw", "--threads",
                                      "--rate", "200", *(["--gil"] if mode == "gil" else []), "--output", str(self.out),
                                      "--nonblocking"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)

    def stop(self, top: int = 20) -> dict[str, Any]:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(30)
        threads: dict[str, int] = {}
        inclusive: dict[str, int] = {}
        leaf: dict[str, int] = {}
        total = 0
        for line in self.out.read_text(errors="replace").splitlines():
            stack, _, n = line.rpartition(" ")
            if not n.isdigit() or not stack.startswith("thread"):
                continue  # the tail of a frame name that held a newline
            frames = stack.split(";")
            thread = frames[0].split(": ", 1)[-1] if ": " in frames[0] else frames[0]
            thread = "request threads" if thread.startswith(("AnyIO", "ThreadPool", "asyncio_")) else thread
            count = int(n)
            total += count
            threads[thread] = threads.get(thread, 0) + count
            leaf[frames[-1]] = leaf.get(frames[-1], 0) + count
            for frame in set(frames[1:]):
                inclusive[frame] = inclusive.get(frame, 0) + count

        def ranked(d: dict[str, int], k: int) -> list[tuple[str, float]]:
            return [(f, round(100 * c / total, 1)) for f, c in sorted(d.items(), key=lambda kv: -kv[1])[:k]]

        report = {"threads": ranked(threads, 6), "inclusive": ranked(inclusive, top), "self": ranked(leaf, top)}
        for title, rows in report.items():
            say(f"    {title} (% of {total} samples):")
            for frame, pct in rows:
                say(f"      {pct:5.1f}%  {frame}")
        return report


def ingestion(kind: str, votes: int, connections: int, raw: dict[str, Any] | None,
              read_rate: int, read_seconds: float, profile: str | None = None) -> dict[str, Any]:
    url = deploy.fresh_database(kind, "ingest")
    server = None
    try:
        rt = deploy.deploy(url)
        proposer = Signer.evm(0)
        signers = {"eip712": [Signer.evm(1 + i) for i in range(votes)],
                   "ed25519": [Signer.solana(1 + i) for i in range(votes)]}
        warm = [Signer.evm(900_000 + i) for i in range(200)]
        holders = [(proposer.address, 10**9 * deploy.TOKEN)]
        holders += [(s.address, deploy.TOKEN * (1 + i % 50)) for group in (*signers.values(), warm)
                    for i, s in enumerate(group)]
        deploy.mint(rt, holders)
        pid = deploy.propose(rt, proposer)
        raw = raw or raw_verification(rt.encoder, pid, rt.clock.now(), 2000)
        now = rt.clock.now()
        bodies = {scheme: [loadgen.post("/v1/votes", vote_body(s, rt.encoder, pid, i % 3, now), "bench")
                           for i, s in enumerate(group)] for scheme, group in signers.items()}
        warmup = [loadgen.post("/v1/votes", vote_body(s, rt.encoder, pid, 1, now), "bench") for s in warm]
        # for reads while votes arrive: every EIP-712 holder changes their vote (a newer signed
        # vote replaces the counted one), so the tally moves with every batch
        changes = [loadgen.post("/v1/votes", vote_body(s, rt.encoder, pid, (i + 1) % 3, now + 1), "bench")
                   for i, s in enumerate(signers["eip712"])]
        rt.engine.dispose()

        server = start_server(url, f"ingest-{kind}", scheduler=False)
        out: dict[str, Any] = {}
        asyncio.run(loadgen.closed_loop("127.0.0.1", server.port, warmup, connections))
        for scheme, requests in bodies.items():
            spy = Profiler(server.proc.pid, f"{kind}-{scheme}", profile) if profile else None
            cpu0, own0 = cpu_seconds(server.proc.pid), time.process_time()
            result = asyncio.run(loadgen.closed_loop("127.0.0.1", server.port, requests, connections,
                                                     keep_bodies=True))
            summary = result.summary()
            # cores busy during the run: the server's, and the load generator's (this process)
            summary["server_cores"] = round((cpu_seconds(server.proc.pid) - cpu0) / result.elapsed, 2)
            summary["loadgen_cores"] = round((time.process_time() - own0) / result.elapsed, 2)
            bad = [(i, s, b[:200]) for i, s, b in result.bodies if s != 201]
            if bad:
                say(f"  {scheme}: {len(bad)} votes not accepted, e.g. {bad[:3]}")
            summary["accepted"] = sum(1 for _, s, _ in result.bodies if s == 201)
            accepted_rate = summary["accepted"] / result.elapsed
            summary["accepted_per_s"] = round(accepted_rate, 1)
            summary["ratio_to_raw"] = round(accepted_rate / raw[scheme]["primitive_per_s"], 3)
            out[scheme] = summary
            say(f"  {kind:8} {scheme:8} {accepted_rate:7.0f} votes/s  p50 {summary['p50_ms']:6.1f} ms"
                f"  p99 {summary['p99_ms']:6.1f} ms  ratio to raw {summary['ratio_to_raw']:.2f}"
                f"  ({summary['accepted']}/{len(requests)} accepted; cores busy: server"
                f" {summary['server_cores']:.2f}, load generator {summary['loadgen_cores']:.2f})")
            if spy:
                summary["profile"] = spy.stop()
        tally = server.get(f"/v1/proposals/{pid}")["tally"]
        expected = votes * 2 + len(warm)
        out["ballots_counted"] = tally["ballots"]
        if tally["ballots"] != expected:
            say(f"  !! the live tally counts {tally['ballots']} ballots; {expected} votes were sent")

        request = loadgen.get(f"/v1/proposals/{pid}", "bench")
        reads = asyncio.run(loadgen.open_loop("127.0.0.1", server.port, request, read_rate, read_seconds))
        out["reads"] = reads.summary() | {"rate": read_rate}
        say(f"  {kind:8} reads    {read_rate} req/s offered: p50 {out['reads']['p50_ms']:.1f} ms"
            f"  p99 {out['reads']['p99_ms']:.1f} ms  statuses {out['reads']['statuses']}")
        out["reads_during_votes"] = reads_during_votes(server.port, request, changes, connections, read_rate,
                                                      seconds=0.8 * len(changes) / out["eip712"]["accepted_per_s"])
        tally = server.get(f"/v1/proposals/{pid}")["tally"]
        if tally["ballots"] != expected:
            say(f"  !! after vote changes the live tally counts {tally['ballots']} ballots, not {expected}")
        out["server_peak_rss_mb"] = round(peak_rss_mb(server.proc.pid), 1)
        return {"raw": raw, **out}
    finally:
        if server:
            server.stop()
        deploy.drop_database(url)


def reads_during_votes(port: int, request: bytes, votes: list[bytes], connections: int, rate: int,
                       seconds: float) -> dict[str, Any]:
    """The proposal read at ``rate``/s for ``seconds`` while ``votes`` stream in (closed loop)
    over the same server: each committed batch invalidates the cached view, so reads render."""

    async def both() -> tuple[loadgen.Result, loadgen.Result]:
        writes = asyncio.ensure_future(loadgen.closed_loop("127.0.0.1", port, votes, connections))
        reads = await loadgen.open_loop("127.0.0.1", port, request, rate, seconds)
        return reads, await writes

    reads, writes = asyncio.run(both())
    summary = reads.summary() | {"rate": rate, "votes_per_s": round(writes.statuses[201] / writes.elapsed, 1),
                                 "vote_statuses": {str(k): v for k, v in sorted(writes.statuses.items())}}
    say(f"  reads    {rate} req/s offered while {summary['votes_per_s']:.0f} votes/s arrive: p50 "
        f"{summary['p50_ms']:.1f} ms  p99 {summary['p99_ms']:.1f} ms  statuses {summary['statuses']}")
    return summary


# ---------------------------------------------------------------- phase 4: finalize

def finalize(kind: str, ballots: int, voters: int) -> dict[str, Any]:
    url = deploy.fresh_database(kind, "finalize")
    clock_file = deploy.WORK / f"clock-{kind}"
    start = int(time.time())
    clock_file.write_text(str(start))
    server = None
    try:
        rt = deploy.deploy(url, clock=FileClock(clock_file))
        proposer = Signer.evm(0)
        deploy.mint(rt, [(proposer.address, 10**9 * deploy.TOKEN)])
        pid = deploy.propose(rt, proposer)
        t0 = time.perf_counter()
        expected = deploy.bulk_ballots(rt, pid, ballots, voters, start + 1)
        say(f"  {kind}: {ballots:,} ballots from {voters:,} voters written in {time.perf_counter() - t0:.1f} s")
        # SQLite stores uint256 as text and its integers are 64-bit: the bare aggregate sums floats
        # there (inexact, and cheaper than the exact count it is compared with)
        weight = "total(CAST(weight AS REAL))" if is_sqlite(url) else "sum(weight)"
        with rt.engine.connect() as conn:
            if not is_sqlite(url):
                conn.execute(text("ANALYZE ballot"))
            t0 = time.perf_counter()
            conn.execute(text(f"SELECT choice, count(*), {weight} FROM ballot WHERE proposal_id = :p "
                              "AND NOT superseded GROUP BY choice"), {"p": pid}).all()
            bare = time.perf_counter() - t0
        rt.engine.dispose()
        say(f"  {kind}: bare SQL aggregate over the ballot table {bare:.2f} s")

        server = start_server(url, f"finalize-{kind}", scheduler=True, test_clock_file=clock_file,
                              scheduler_interval=1)
        baseline_rss = peak_rss_mb(server.proc.pid)
        clock_file.write_text(str(start + 3600 + 1))
        t0 = time.perf_counter()
        while True:
            proposal = server.get(f"/v1/proposals/{pid}")
            if proposal.get("result"):
                break
            if time.perf_counter() - t0 > 600:
                raise RuntimeError("finalize did not finish in 10 minutes")
            time.sleep(0.2)
        seen = time.perf_counter() - t0
        found = re.search(rf"proposal {pid} finalized: \w+ with (\d+) voters, counted in ([\d.]+) s",
                          server.log.read_text())
        counted = float(found.group(2)) if found else None
        result = proposal["result"]
        ok = (int(result["for"]) == expected["for"] and int(result["against"]) == expected["against"]
              and int(result["abstain"]) == expected["abstain"] and result["ballots"] == voters)
        rss = peak_rss_mb(server.proc.pid)
        say(f"  {kind}: finalize {counted} s (result visible after {seen:.1f} s), "
            f"{counted / bare if counted else float('nan'):.1f}× the bare aggregate, totals "
            f"{'match' if ok else 'DIFFER'}; server peak RSS {rss:.0f} MB (idle {baseline_rss:.0f} MB)")
        return {"ballots": ballots, "voters": voters, "finalize_s": counted, "result_visible_s": round(seen, 2),
                "bare_aggregate_s": round(bare, 3), "ratio_to_bare": round(counted / bare, 1) if counted else None,
                "totals_match": ok, "server_peak_rss_mb": round(rss, 1), "server_idle_rss_mb": round(baseline_rss, 1)}
    finally:
        if server:
            server.stop()
        deploy.drop_database(url)


# ---------------------------------------------------------------- report

def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) // 1024
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_mb": mem, "python": platform.python_version(),
            "os": platform.platform()}


def table(results: dict[str, Any]) -> str:
    rows = ["| measure | database | figure | target | met |", "|---|---|---|---|---|"]

    def row(name: str, db: str, figure: str, target: str, met: bool | None) -> None:
        rows.append(f"| {name} | {db} | {figure} | {target} | {'—' if met is None else 'yes' if met else 'no'} |")

    raw = results.get("raw", {})
    for scheme, r in raw.items():
        row(f"raw {scheme} verify, 1 core", "—", f"{r['primitive_per_s']:,}/s (full check {r['envelope_per_s']:,}/s)",
            "—", None)
    for kind, r in results.get("ingestion", {}).items():
        for scheme in ("eip712", "ed25519"):
            s = r[scheme]
            target = TARGETS[f"{scheme}_votes_per_s"]
            row(f"{scheme} votes", kind, f"{s['accepted_per_s']:,.0f}/s, p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms",
                f"≥ {target:,}/s", s["accepted_per_s"] >= target)
            row(f"{scheme} ratio to raw", kind, f"{s['ratio_to_raw']:.2f}", "> 0.3", s["ratio_to_raw"] > 0.3)
        reads = r["reads"]
        row(f"GET /v1/proposals/{{id}} at {reads['rate']}/s", kind, f"p99 {reads['p99_ms']} ms (p50 {reads['p50_ms']})",
            "p99 < 25 ms", reads["p99_ms"] < TARGETS["read_p99_ms"])
        busy = r.get("reads_during_votes")
        if busy:
            row(f"the same while {busy['votes_per_s']:,.0f} votes/s arrive", kind,
                f"p99 {busy['p99_ms']} ms (p50 {busy['p50_ms']})", "—", None)
    for kind, r in results.get("finalize", {}).items():
        row(f"finalize {r['ballots']:,} ballots", kind,
            f"{r['finalize_s']} s ({r['ratio_to_bare']}× bare SQL aggregate {r['bare_aggregate_s']} s)",
            "< 10 s" if kind == "sqlite" else "—", r["finalize_s"] < 10 if kind == "sqlite" else None)
        row("server peak RSS after it", kind, f"{r['server_peak_rss_mb']:.0f} MB", "< 300 MB",
            r["server_peak_rss_mb"] < TARGETS["peak_rss_mb"])
    return "\n".join(rows)


def write_report(results: dict[str, Any]) -> None:
    (ROOT / "bench" / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    readme = ROOT / "bench" / "README.md"
    text_ = readme.read_text() if readme.exists() else ""
    begin, end = "<!-- results:begin -->", "<!-- results:end -->"
    m = results["machine"]
    block = (f"{begin}\nMeasured {results['when']} on {m['cpu']}, {m['cores']} cores, {m['memory_mb']:,} MB, "
             f"Python {m['python']} ({m['os']}).\n\n{table(results)}\n{end}")
    if begin in text_:
        text_ = text_[:text_.index(begin)] + block + text_[text_.index(end) + len(end):]
    else:
        text_ += "\n" + block + "\n"
    readme.write_text(text_)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--databases", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    parser.add_argument("--votes", type=int, default=8000, help="votes per scheme in the ingestion run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--ballots", type=int, default=1_000_000, help="ballots in the finalize run")
    parser.add_argument("--finalize-on", default="sqlite,postgres", help="databases for the finalize run")
    parser.add_argument("--read-rate", type=int, default=500)
    parser.add_argument("--read-seconds", type=float, default=10)
    parser.add_argument("--phases", default="ingest,finalize")
    parser.add_argument("--profile", nargs="?", const="gil", choices=("gil", "wall"),
                        help="attach py-spy (pip install py-spy) to the server while votes arrive: "
                             "gil (the default) samples the thread holding the GIL, wall every thread")
    parser.add_argument("--no-report", action="store_true", help="print only; leave results.json and README alone")
    args = parser.parse_args(argv)
    deploy.WORK.mkdir(exist_ok=True)
    results: dict[str, Any] = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(),
                               "targets": TARGETS, "ingestion": {}, "finalize": {}}
    phases = args.phases.split(",")
    say(f"machine: {results['machine']}")
    raw = None
    if "ingest" in phases:
        for kind in args.databases.split(","):
            say(f"vote ingestion and reads on {kind}")
            r = ingestion(kind, args.votes, args.connections, raw, args.read_rate, args.read_seconds, args.profile)
            raw = results["raw"] = r.pop("raw")
            results["ingestion"][kind] = r
    if "finalize" in phases:
        for kind in args.finalize_on.split(","):
            say(f"finalize on {kind}")
            voters = args.ballots * 95 // 100
            results["finalize"][kind] = finalize(kind, args.ballots, voters)
    say(table(results))
    if not args.no_report:
        write_report(results)
    return 0
