"""`make bench`: keystate's plan and apply against emulators with injected latency.

Every figure is measured in this run, side by side with the floor and the reference
peers it is compared with, because these machines are shared and noisy: ratios measured
together are meaningful where absolute times are not. Each measured program runs as its
own process (so startup and peak memory are its own), the programs of a scenario take
turns run after run, and the emulators run in this process.

Usage: python -m bench [--runs N] [--only a,b,c,d,r] [--quick]
"""

from __future__ import annotations

import argparse
import compileall
import json
import math
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.harness import ROOT, Measured, Run, keystate, python, round_robin, run_child
from bench.world import World, world

RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "performance.md"
LATENCY_MS = 50
# Start-up figures are a tenth of a second: a shared machine's hiccups move a median of
# few runs by tens of percent, and 30 more runs cost a few seconds.
STARTUP_RUNS = 30
# Small plans take a fraction of a second: more runs for the same reason.
SMALL_RUNS = 10
SLOW_LATENCY_MS = 100


@dataclass
class Row:
    scenario: str
    keys: int
    accounts: int
    requests: int | None
    seconds: float
    floor: float | None
    rss_mb: float
    runs: int

    @property
    def ratio(self) -> float | None:
        return self.seconds / self.floor if self.floor else None


@dataclass
class Check:
    name: str
    value: float
    target: str
    ok: bool


def row(scenario: str, w: World | None, m: Measured, floor: Measured | None) -> Row:
    return Row(
        scenario=scenario,
        keys=w.keys if w else 0,
        accounts=len(w.accounts) if w else 0,
        requests=m.request_count,
        seconds=m.seconds,
        floor=floor.seconds if floor else None,
        rss_mb=m.rss_mb,
        runs=len(m.runs),
    )


class Bench:
    def __init__(self, runs: int, quick: bool, workdir: Path) -> None:
        self.runs = runs
        self.quick = quick
        self.workdir = workdir
        self.rows: list[Row] = []
        self.checks: list[Check] = []
        self.notes: list[str] = []
        self.complete = False  # every scenario ran
        self.plan_floor_60x200: float | None = None  # measured by (a), checked by (f)
        self.commit = _commit()
        self.created_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

    def check(self, name: str, value: float, target: str, ok: bool) -> None:
        self.checks.append(Check(name, round(value, 3), target, ok))

    def at_least(self, name: str, value: float, bound: float) -> None:
        self.check(name, value, f">= {bound:g}", value >= bound)

    def at_most(self, name: str, value: float, bound: float) -> None:
        self.check(name, value, f"<= {bound:g}", value <= bound)

    def check_plan_finds_drift(self, label: str, w: World) -> None:
        """The measured plan must be right: exactly the drifted keys to update."""
        out = run_child(
            keystate("plan", "-c", str(w.config), "--format", "json"), w.env, ok=(0,), capture=True
        )
        summary = json.loads(out.stdout)["summary"]
        found = summary["update"]
        others = sum(v for k, v in summary.items() if k not in ("update", "unchanged"))
        ok = found == w.drifted and summary["unchanged"] == w.keys - w.drifted and not others
        self.check(
            f"{label}: plan shows the {w.drifted} drifted keys", found, f"== {w.drifted}", ok
        )

    # -- (a) ------------------------------------------------------------------------
    def plan_many_accounts(self) -> None:
        algolia, coveo, keys = (5, 2, 50) if self.quick else (50, 10, 200)
        with world(
            self.workdir,
            algolia=algolia,
            coveo=coveo,
            keys_per_account=keys,
            latency_ms=LATENCY_MS,
            drift=0.1,
        ) as w:
            desc = str(w.describe(self.workdir / "world-a.json"))
            self.check_plan_finds_drift("a", w)
            per_provider: list[dict[str, set[int]]] = []

            def plan() -> Run:
                run = run_child(keystate("plan", "-c", str(w.config)), w.env)
                per_provider.append(w.requests_by_provider())
                return run

            m = round_robin(
                self.runs,
                {
                    "plan": plan,
                    "floor": lambda: run_child(python("bench.floor", desc)),
                    "sequential": lambda: run_child(python("bench.sequential", desc)),
                    "per-key": lambda: run_child(python("bench.perkey", desc)),
                },
                counter=(w.reset_counters, w.requests),
            )
            floor = m["floor"]
            self.rows += [
                row("a: keystate plan", w, m["plan"], floor),
                row("a: floor (httpx + C YAML)", w, floor, floor),
                row("a: sequential official client", w, m["sequential"], floor),
                row("a: per-key GET, 10 in flight", w, m["per-key"], floor),
            ]
            plan_s = m["plan"].seconds
            self.notes.append(
                f"a: the sequential reference takes {m['sequential'].seconds / floor.seconds:.2f}x "
                "the floor here (parsing dominates); its target is set in (g)"
            )
            self.plan_floor_60x200 = plan_s / floor.seconds
            self.at_most("a: plan / floor", plan_s / floor.seconds, 1.5)
            self.at_least("a: per-key / plan", m["per-key"].seconds / plan_s, 20)
            for provider, expected in (("algolia", 1), ("coveo", 2)):
                seen = set().union(*(run[provider] for run in per_provider))
                self.check(
                    f"a: requests per {provider} account, every run",
                    max(seen),
                    f"== {expected} (seen {sorted(seen)})",
                    seen == {expected},
                )

    # -- (r) ------------------------------------------------------------------------
    def report_vs_plan(self) -> None:
        """`keystate report` (HTML) over scenario (a)'s world: the same requests as a plan
        at most, and at most 1.5x its time."""
        algolia, coveo, keys = (5, 2, 50) if self.quick else (50, 10, 200)
        with world(
            self.workdir,
            algolia=algolia,
            coveo=coveo,
            keys_per_account=keys,
            latency_ms=LATENCY_MS,
            drift=0.1,
        ) as w:
            page = self.workdir / "report.html"
            requests: dict[str, list[dict[str, set[int]]]] = {"plan": [], "report": []}

            def counted(name: str, *args: str) -> Callable[[], Run]:
                def go() -> Run:
                    run = run_child(keystate(*args), w.env)
                    requests[name].append(w.requests_by_provider())
                    return run

                return go

            m = round_robin(
                self.runs,
                {
                    "plan": counted("plan", "plan", "-c", str(w.config)),
                    "report": counted("report", "report", "-c", str(w.config), "--out", str(page)),
                },
                counter=(w.reset_counters, w.requests),
            )
            self.rows += [
                row("r: keystate plan", w, m["plan"], m["plan"]),
                row("r: keystate report (html)", w, m["report"], m["plan"]),
            ]
            self.at_most("r: report / plan", m["report"].seconds / m["plan"].seconds, 1.5)
            for provider in ("algolia", "coveo"):
                plan_max = max(set().union(*(r[provider] for r in requests["plan"])))
                seen = set().union(*(r[provider] for r in requests["report"]))
                self.check(
                    f"r: report requests per {provider} account <= plan's",
                    max(seen),
                    f"<= {plan_max} (seen {sorted(seen)})",
                    max(seen) <= plan_max,
                )

    # -- (b) ------------------------------------------------------------------------
    def apply_updates(self) -> None:
        keys = 200 if self.quick else 1000
        with world(
            self.workdir, algolia=1, keys_per_account=keys, latency_ms=LATENCY_MS, drift=1.0, seed=2
        ) as w:
            applier = Applier(w, self.workdir / "b")
            jobs = self.workdir / "apply-floor.json"

            def floor() -> Run:
                jobs.write_text(json.dumps(applier.floor_job()))
                return run_child(python("bench.applyfloor", str(jobs)))

            # Each round applies the drift with both parallelisms, then the round after
            # puts it back: every apply has all the keys to update. The floor re-sends
            # what is live, with the same PUTs.
            m = round_robin(
                self.runs,
                {"p1": lambda: applier.apply(1), "p8": lambda: applier.apply(8), "floor": floor},
                counter=(w.reset_counters, w.requests),
            )
            floor_m = m["floor"]
            for name, label in (("p1", 1), ("p8", 8)):
                self.rows.append(
                    row(f"b: apply {keys:,} updates, parallelism {label}", w, m[name], floor_m)
                )
            self.rows.append(row(f"b: floor, {keys:,} PUTs 8 in flight", w, floor_m, floor_m))
            self.at_least("b: parallelism 1 / parallelism 8", m["p1"].seconds / m["p8"].seconds, 6)
            self.at_most("b: apply parallelism 8 / floor", m["p8"].seconds / floor_m.seconds, 1.3)
            self.check(
                f"b: keys updated and confirmed by every apply (of {len(applier.updated)})",
                min(applier.updated),
                f"== {keys}",
                set(applier.updated) == {keys},
            )
            most = max(m["p8"].requests)
            self.check(
                "b: requests of an apply beyond its writes (plan + confirmations)",
                most - keys,
                "<= 5 (O(accounts))",
                most - keys <= 5,
            )

    # -- (e) ------------------------------------------------------------------------
    def apply_rate_limited(self) -> None:
        keys, rate = (300, 100) if self.quick else (1000, 100)
        with world(
            self.workdir,
            algolia=1,
            keys_per_account=keys,
            latency_ms=LATENCY_MS,
            drift=1.0,
            seed=5,
            rate_limit=rate,
        ) as w:
            applier = Applier(w, self.workdir / "e")
            limited: list[int] = []

            def apply() -> Run:
                w.reset_counters()
                done = applier.apply(8)
                limited.append(w.rate_limited())
                return done

            m = round_robin(self.runs, {"p8": apply})
            ideal = keys / rate
            self.rows.append(
                row(f"e: apply {keys:,} updates, {rate} req/s limit", w, m["p8"], None)
            )
            self.at_most(
                f"e: apply / {ideal:g} s ({keys:,} / {rate} req/s)", m["p8"].seconds / ideal, 1.3
            )
            self.check(
                f"e: keys updated and confirmed by every apply (of {len(applier.updated)})",
                min(applier.updated),
                f"== {keys}",
                set(applier.updated) == {keys},
            )
            self.notes.append(
                f"e: 429s answered per apply: {', '.join(map(str, limited))} (the emulator's "
                f"limit: {rate} req/s, a token bucket holding a second's worth)"
            )

    # -- (f) ------------------------------------------------------------------------
    def small_plans(self) -> None:
        """Where most teams are (1-10 accounts, 10-2,000 keys): fixed costs dominate."""
        for algolia, coveo, keys in ((1, 0, 10), (8, 2, 200)):
            with world(
                self.workdir,
                algolia=algolia,
                coveo=coveo,
                keys_per_account=keys,
                latency_ms=LATENCY_MS,
                drift=0.1,
                seed=6,
            ) as w:
                label = f"{algolia + coveo}x{keys}"
                desc = str(w.describe(self.workdir / f"world-f{label}.json"))
                self.check_plan_finds_drift(f"f {label}", w)
                m = round_robin(
                    max(self.runs, SMALL_RUNS),
                    {
                        "plan": partial(run_child, keystate("plan", "-c", str(w.config)), w.env),
                        "floor": partial(run_child, python("bench.floor", desc)),
                    },
                    counter=(w.reset_counters, w.requests),
                )
                self.rows += [
                    row(f"f: keystate plan, {label} keys", w, m["plan"], m["floor"]),
                    row(f"f: floor, {label} keys", w, m["floor"], m["floor"]),
                ]
                ratio = m["plan"].seconds / m["floor"].seconds
                self.at_most(f"f: plan / floor, {label} keys", ratio, 1.3)
        if self.plan_floor_60x200 is not None:
            self.at_most("f: plan / floor, 60x200 keys (from a)", self.plan_floor_60x200, 1.3)

    # -- (g) ------------------------------------------------------------------------
    def many_small_accounts(self) -> None:
        """The world where the network dominates: 200 accounts x 20 keys at 100 ms."""
        algolia, coveo = (25, 5) if self.quick else (170, 30)
        with world(
            self.workdir,
            algolia=algolia,
            coveo=coveo,
            keys_per_account=20,
            latency_ms=SLOW_LATENCY_MS,
            drift=0.1,
            seed=7,
        ) as w:
            desc = str(w.describe(self.workdir / "world-g.json"))
            self.check_plan_finds_drift("g", w)
            m = round_robin(
                self.runs,
                {
                    "plan": partial(run_child, keystate("plan", "-c", str(w.config)), w.env),
                    "floor": partial(run_child, python("bench.floor", desc)),
                    "sequential": partial(run_child, python("bench.sequential", desc)),
                },
                counter=(w.reset_counters, w.requests),
            )
            floor = m["floor"]
            n = algolia + coveo
            self.rows += [
                row(f"g: keystate plan, {n}x20 at {SLOW_LATENCY_MS} ms", w, m["plan"], floor),
                row(f"g: floor, {n}x20 at {SLOW_LATENCY_MS} ms", w, floor, floor),
                row(f"g: sequential official client, {n}x20", w, m["sequential"], floor),
            ]
            plan_s = m["plan"].seconds
            self.at_least("g: sequential / plan", m["sequential"].seconds / plan_s, 10)
            self.at_most("g: plan / floor", plan_s / floor.seconds, 1.3)

    # -- (c) ------------------------------------------------------------------------
    def plan_growth(self) -> None:
        sizes = (1, 10) if self.quick else (1, 10, 100)
        measured: dict[int, Measured] = {}
        for n_accounts in sizes:
            with world(
                self.workdir,
                algolia=n_accounts,
                keys_per_account=1000,
                latency_ms=LATENCY_MS,
                drift=0.1,
                seed=3,
            ) as w:
                desc = str(w.describe(self.workdir / f"world-c{n_accounts}.json"))
                self.check_plan_finds_drift(f"c {w.keys:,}", w)
                m = round_robin(
                    self.runs,
                    {
                        "plan": partial(run_child, keystate("plan", "-c", str(w.config)), w.env),
                        "floor": partial(run_child, python("bench.floor", desc)),
                    },
                    counter=(w.reset_counters, w.requests),
                )
                measured[w.keys] = m["plan"]
                self.rows += [
                    row(f"c: keystate plan, {w.keys:,} keys", w, m["plan"], m["floor"]),
                    row(f"c: floor, {w.keys:,} keys", w, m["floor"], m["floor"]),
                ]
        big = 100_000 if 100_000 in measured else 10_000
        small = big // 10
        t_ratio = measured[big].seconds / measured[small].seconds
        m_ratio = measured[big].rss_mb / measured[small].rss_mb
        self.at_most(f"c: time {big:,} / {small:,} keys", t_ratio, 10)
        self.at_most(f"c: peak RSS {big:,} / {small:,} keys", m_ratio, 10)
        if big == 100_000:
            self.check(
                "c: peak RSS at 100,000 keys (MB)",
                measured[big].rss_mb,
                "< 150",
                measured[big].rss_mb < 150,
            )

    # -- (d) ------------------------------------------------------------------------
    def cold_start(self) -> None:
        small = self.workdir / "small.yaml"
        small.write_text(SMALL_CONFIG)
        runs = max(self.runs, STARTUP_RUNS)
        m = round_robin(
            runs,
            {
                "base": lambda: run_child([sys.executable, "-c", "import click, yaml"]),
                "help": lambda: run_child(keystate("--help")),
                "validate": lambda: run_child(keystate("validate", "-c", str(small))),
            },
        )
        base = m["base"]
        self.rows += [
            row("d: python -c 'import click, yaml'", None, base, base),
            row("d: keystate --help", None, m["help"], base),
            row("d: keystate validate (small config)", None, m["validate"], base),
        ]
        self.at_most("d: validate / import click+yaml", m["validate"].seconds / base.seconds, 2)
        heavy = help_imports()
        self.check(
            "d: heavy modules imported by --help", len(heavy), f"== 0 {sorted(heavy)}", not heavy
        )

    # -- output ---------------------------------------------------------------------
    def table(self) -> str:
        head = (
            f"{'scenario':<40} {'keys':>8} {'accts':>5} {'requests':>8} {'wall s':>8} "
            f"{'floor s':>8} {'ratio':>6} {'RSS MB':>7} {'runs':>4}"
        )
        lines = [head, "-" * len(head)]
        for r in self.rows:
            floor = f"{r.floor:8.3f}" if r.floor else f"{'':>8}"
            ratio = f"{r.ratio:6.2f}" if r.ratio else f"{'':>6}"
            req = f"{r.requests:8,}" if r.requests is not None else f"{'':>8}"
            lines.append(
                f"{r.scenario:<40} {r.keys:>8,} {r.accounts:>5} {req} {r.seconds:8.3f} "
                f"{floor} {ratio} {r.rss_mb:7.1f} {r.runs:>4}"
            )
        lines += ["", "Targets:"]
        for c in self.checks:
            lines.append(
                f"  [{'PASS' if c.ok else 'FAIL'}] {c.name}: {c.value:g} (target {c.target})"
            )
        if self.notes:
            lines += ["", "Notes:", *(f"  {n}" for n in self.notes)]
        return "\n".join(lines)

    def markdown(self, created_at: str, seconds: float) -> str:
        """The table and the targets as Markdown, for docs/performance.md."""
        lines = [
            f"Measured {created_at} at commit {self.commit} on {_machine()}: "
            f"{self.runs} runs per figure "
            f"({STARTUP_RUNS} for start-up, {SMALL_RUNS} for small plans), {LATENCY_MS} ms injected "
            f"latency ({SLOW_LATENCY_MS} ms in g), {seconds / 60:.0f} min "
            "in all.",
            "",
            "| scenario | keys | accts | requests | wall s | floor s | ratio | RSS MB | runs |",
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for r in self.rows:
            floor = f"{r.floor:.3f}" if r.floor else ""
            ratio = f"{r.ratio:.2f}" if r.ratio else ""
            req = f"{r.requests:,}" if r.requests is not None else ""
            lines.append(
                f"| {r.scenario} | {r.keys:,} | {r.accounts} | {req} | {r.seconds:.3f} "
                f"| {floor} | {ratio} | {r.rss_mb:.1f} | {r.runs} |"
            )
        lines += ["", "| target | measured | wanted | |", "|---|--:|---|---|"]
        for c in self.checks:
            lines.append(
                f"| {c.name} | {c.value:g} | {c.target} | {'met' if c.ok else '**not met**'} |"
            )
        if self.notes:
            lines += ["", *(f"- {n}" for n in self.notes)]
        return "\n".join(lines)

    def publish(self, created_at: str, seconds: float) -> Path:
        """Put the Markdown table between the markers of docs/performance.md."""
        start, end = "<!-- bench:start -->", "<!-- bench:end -->"
        text = DOC.read_text()
        before, found, rest = text.partition(start)
        _, found_end, after = rest.partition(end)
        if not (found and found_end):
            raise SystemExit(f"{DOC}: no {start} ... {end} section to write the table into")
        body = self.markdown(created_at, seconds)
        DOC.write_text(f"{before}{start}\n{body}\n{end}{after}")
        return DOC

    def save(self, seconds: float) -> Path:
        RESULTS.mkdir(parents=True, exist_ok=True)
        document = {
            "created_at": self.created_at,
            "commit": self.commit,
            "machine": {
                "python": platform.python_version(),
                "platform": platform.platform(),
                "cpus": _cpus(),
            },
            "runs": self.runs,
            "quick": self.quick,
            "latency_ms": LATENCY_MS,
            "bench_seconds": round(seconds),
            "rows": [asdict(r) | {"ratio": r.ratio} for r in self.rows],
            "checks": [asdict(c) for c in self.checks],
            "notes": self.notes,
        }
        path = RESULTS / self.results_name
        path.write_text(json.dumps(document, indent=2) + "\n")
        return path

    @property
    def results_name(self) -> str:
        """A quick or partial run never overwrites the full run's results."""
        if self.quick:
            return "latest-quick.json"
        return "latest.json" if self.complete else "latest-partial.json"


SMALL_CONFIG = """\
version: 1
accounts:
  web:
    provider: algolia
    sandbox: web.json
keys:
  web:
    storefront:
      description: Storefront search box
      acl: [search]
      referers: ["https://shop.example.com/*"]
      max_queries_per_ip_per_hour: 1000
      expires_at: 2099-01-01T00:00:00Z
"""

HEAVY_MODULES = ("httpx", "deepdiff", "keystate.emulators")


def help_imports() -> set[str]:
    """The heavy modules `keystate --help` imports (per ``python -X importtime``)."""
    cmd = [sys.executable, "-X", "importtime", "-m", "keystate", "--help"]
    err = run_child_stderr(cmd)
    imported = {line.rsplit("|", 1)[-1].strip() for line in err.splitlines() if "|" in line}
    return {m for m in imported for h in HEAVY_MODULES if m == h or m.startswith(h + ".")}


def run_child_stderr(cmd: list[str]) -> str:
    import subprocess

    done = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    return done.stderr


class Applier:
    """Applies a world's drift, then puts it back, turn by turn: every apply updates every
    key. Each apply writes a --report; ``updated`` counts its done updates."""

    def __init__(self, w: World, workdir: Path) -> None:
        self.world = w
        self.drifted = w.config
        self.seeded = workdir / "seeded"
        self.seeded.mkdir(parents=True)
        for file in self.drifted.glob("*.yaml"):
            # Back to what is live: the drift toggles 'logs' in every key's ACL.
            (self.seeded / file.name).write_text(_toggle_logs(file.read_text()))
        self.report = workdir / "apply-report.json"
        self.turn = 0
        self.updated: list[int] = []

    def apply(self, parallelism: int) -> Run:
        config = (self.drifted, self.seeded)[self.turn % 2]
        self.turn += 1
        cmd = keystate(
            "apply",
            *("-c", str(config), "--auto-approve", "--parallelism", str(parallelism)),
            *("--report", str(self.report)),
        )
        run = run_child(cmd, self.world.env)
        results = json.loads(self.report.read_text())["results"]
        self.updated.append(
            sum(r["action"] == "update" and r["outcome"] == "done" for r in results)
        )
        return run

    def floor_job(self) -> dict[str, object]:
        """The PUTs an apply sends, with what is live now (re-sending it changes nothing)."""
        account = self.world.accounts[0]
        app = account.server.app
        puts = [
            [f"/1/keys/{quote(key['value'], safe='')}", _put_body(key)] for key in app.snapshot()
        ]
        headers = {
            "x-algolia-application-id": account.credentials["application_id"],
            "x-algolia-api-key": account.credentials["api_key"],
        }
        return {"url": account.url, "headers": headers, "puts": puts}


def _put_body(key: dict[str, Any]) -> dict[str, object]:
    """An Algolia update's body (every field: PUT replaces the key)."""
    return {
        "acl": key["acl"],
        "description": key.get("description", ""),
        "indexes": key.get("indexes", []),
        "referers": key.get("referers", []),
        "maxHitsPerQuery": key.get("maxHitsPerQuery", 0),
        "maxQueriesPerIPPerHour": key.get("maxQueriesPerIPPerHour", 0),
        "queryParameters": key.get("queryParameters", ""),
        "validity": max(1, math.ceil(key["expiresAt"] - time.time()))
        if key.get("expiresAt")
        else 0,
    }


def _toggle_logs(text: str) -> str:
    out = []
    for line in text.splitlines(keepends=True):
        if line.startswith("      acl: ["):
            acl = line.strip()[len("acl: [") : -1].split(", ")
            out.append(f"      acl: [{', '.join(sorted(set(acl) ^ {'logs'}))}]\n")
        else:
            out.append(line)
    return "".join(out)


def _commit() -> str:
    """The commit measured, marked when keystate's or the benchmark's code differs from it."""
    import subprocess

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], check=False, capture_output=True, text=True, cwd=ROOT)
        return done.stdout.strip() if done.returncode == 0 else ""

    head = git("rev-parse", "--short=12", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "keystate", "bench", "pyproject.toml")
    return f"{head} (with uncommitted changes)" if dirty else head


def _machine() -> str:
    return f"Python {platform.python_version()}, {_cpus()} CPUs, {platform.system()}"


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


def compile_like_an_install() -> None:
    """Byte-compile keystate and the bench's scripts, as ``pip install`` does for a wheel.

    A checkout installed in editable mode is run from its sources; where
    ``PYTHONDONTWRITEBYTECODE`` is set (as on some CI machines) nothing is ever cached,
    and every measured process would compile each keystate module anew (some 60 ms per
    start), a cost no installed keystate pays. The interpreter still checks each cached
    file against its source, so an edit after this only costs that compile again.
    """
    for package in ("keystate", "bench"):
        compileall.compile_dir(ROOT / package, quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (median)")
    parser.add_argument("--only", default="a,b,c,d,e,f,g,r", help="scenarios to run")
    parser.add_argument("--quick", action="store_true", help="small sizes, for iterating")
    args = parser.parse_args()
    started = time.perf_counter()
    compile_like_an_install()
    with tempfile.TemporaryDirectory(prefix="keystate-bench-") as tmp:
        bench = Bench(args.runs, args.quick, Path(tmp))
        scenarios = {
            "a": bench.plan_many_accounts,
            "b": bench.apply_updates,
            "c": bench.plan_growth,
            "d": bench.cold_start,
            "e": bench.apply_rate_limited,
            "f": bench.small_plans,
            "g": bench.many_small_accounts,
            "r": bench.report_vs_plan,
        }
        chosen = [name.strip() for name in args.only.split(",")]
        unknown = [name for name in chosen if name not in scenarios]
        if unknown:
            parser.error(f"unknown scenario(s) {', '.join(unknown)} ({', '.join(scenarios)})")
        bench.complete = set(chosen) == set(scenarios)
        for name in chosen:
            print(f"running scenario {name}...", file=sys.stderr, flush=True)
            scenarios[name]()
        print(bench.table())
        seconds = time.perf_counter() - started
        written = [bench.save(seconds)]
        if bench.complete and not args.quick:
            written.append(bench.publish(bench.created_at, seconds))
    names = " and ".join(str(p.relative_to(ROOT)) for p in written)
    print(f"\nWritten to {names} in {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
