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
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from bench.harness import ROOT, Measured, Run, keystate, python, round_robin, run_child
from bench.world import World, world

RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "performance.md"
LATENCY_MS = 50
# Start-up figures are a tenth of a second: a shared machine's hiccups move a median of
# few runs by tens of percent, and 30 more runs cost a few seconds.
STARTUP_RUNS = 30


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
                "the floor, so a plan at the floor itself would be that much faster than it"
            )
            self.at_most("a: plan / floor", plan_s / floor.seconds, 1.5)
            self.at_least("a: sequential / plan", m["sequential"].seconds / plan_s, 5)
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
            drifted = w.config
            seeded = self.workdir / "apply-seeded"
            seeded.mkdir()
            for file in drifted.glob("*.yaml"):
                # Back to what is live: the drift toggles 'logs' in every key's ACL.
                (seeded / file.name).write_text(_toggle_logs(file.read_text()))
            turn = [0]
            report = self.workdir / "apply-report.json"
            updated: list[int] = []

            def apply(parallelism: int) -> Run:
                config = (drifted, seeded)[turn[0] % 2]
                turn[0] += 1
                cmd = keystate(
                    "apply",
                    *("-c", str(config), "--auto-approve", "--parallelism", str(parallelism)),
                    *("--report", str(report)),
                )
                run = run_child(cmd, w.env)
                results = json.loads(report.read_text())["results"]
                updated.append(
                    sum(r["action"] == "update" and r["outcome"] == "done" for r in results)
                )
                return run

            # Each round applies the drift with both parallelisms, then the round after
            # puts it back: every apply has all the keys to update.
            m = round_robin(
                self.runs,
                {"p1": lambda: apply(1), "p8": lambda: apply(8)},
                counter=(w.reset_counters, w.requests),
            )
            for name, label in (("p1", 1), ("p8", 8)):
                self.rows.append(
                    row(f"b: apply {keys:,} updates, parallelism {label}", w, m[name], None)
                )
            self.at_least("b: parallelism 1 / parallelism 8", m["p1"].seconds / m["p8"].seconds, 6)
            self.check(
                f"b: keys updated and confirmed by every apply (of {len(updated)})",
                min(updated),
                f"== {keys}",
                set(updated) == {keys},
            )

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
            f"({STARTUP_RUNS} for start-up), {LATENCY_MS} ms injected latency, {seconds / 60:.0f} min "
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


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (median)")
    parser.add_argument("--only", default="a,b,c,d,r", help="scenarios to run")
    parser.add_argument("--quick", action="store_true", help="small sizes, for iterating")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="keystate-bench-") as tmp:
        bench = Bench(args.runs, args.quick, Path(tmp))
        scenarios = {
            "a": bench.plan_many_accounts,
            "b": bench.apply_updates,
            "c": bench.plan_growth,
            "d": bench.cold_start,
            "r": bench.report_vs_plan,
        }
        chosen = [name.strip() for name in args.only.split(",")]
        unknown = [name for name in chosen if name not in scenarios]
        if unknown:
            parser.error(f"unknown scenario(s) {', '.join(unknown)} (a, b, c, d, r)")
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
