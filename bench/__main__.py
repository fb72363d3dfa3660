"""`make bench`: keystate's plan and apply against emulators with injected latency.

Every figure is measured in this run, side by side with the floor and the reference
peers it is compared with, because these machines are shared and noisy: ratios measured
together are meaningful where absolute times are not. Each measured program runs as its
own process (so startup and peak memory are its own); the emulators run in this one.

Usage: python -m bench [--runs N] [--only a,b,c,d] [--quick]
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
from pathlib import Path

from bench.harness import ROOT, keystate, median_of, python, run_child
from bench.world import World, algolia_world

RESULTS = ROOT / "bench" / "results"


@dataclass
class Row:
    scenario: str
    keys: int
    accounts: int
    requests: int | None
    seconds: float
    floor: float | None
    rss_mb: float

    @property
    def ratio(self) -> float | None:
        return self.seconds / self.floor if self.floor else None


@dataclass
class Check:
    name: str
    value: float
    target: str
    ok: bool


class Bench:
    def __init__(self, runs: int, quick: bool, workdir: Path) -> None:
        self.runs = runs
        self.quick = quick
        self.workdir = workdir
        self.rows: list[Row] = []
        self.checks: list[Check] = []

    def check(self, name: str, value: float, target: str, ok: bool) -> None:
        self.checks.append(Check(name, round(value, 3), target, ok))

    def measure(
        self,
        world: World,
        cmd: list[str],
        runs: int | None = None,
        before: Callable[[], None] | None = None,
    ) -> tuple[float, float]:
        return median_of(runs or self.runs, lambda: run_child(cmd, world.env), before)

    def requests_of(self, world: World, cmd: list[str]) -> int:
        world.reset_counters()
        run_child(cmd, world.env)
        return world.requests()

    # -- (a) ------------------------------------------------------------------------
    def plan_many_accounts(self) -> None:
        accounts, keys = (10, 50) if self.quick else (50, 200)
        with algolia_world(self.workdir, accounts, keys, latency_ms=50, drift=0.1) as world:
            desc = world.describe(self.workdir / "world-a.json")
            plan = keystate("plan", "-c", str(world.config))
            requests = self.requests_of(world, plan)
            seconds, rss = self.measure(world, plan)
            floor, floor_rss = self.measure(world, python("bench.floor", str(desc)))
            seq, seq_rss = self.measure(world, python("bench.sequential", str(desc)))
            per_key, pk_rss = self.measure(world, python("bench.perkey", str(desc)), runs=1)
            total = accounts * keys
            self.rows += [
                Row("a: keystate plan", total, accounts, requests, seconds, floor, rss),
                Row(
                    "a: floor (httpx + C YAML)", total, accounts, accounts, floor, floor, floor_rss
                ),
                Row(
                    "a: sequential official client", total, accounts, accounts, seq, floor, seq_rss
                ),
                Row(
                    "a: per-key refresh, 10 in flight",
                    total,
                    accounts,
                    total,
                    per_key,
                    floor,
                    pk_rss,
                ),
            ]
            self.check("a: plan / floor", seconds / floor, "<= 1.5", seconds / floor <= 1.5)
            self.check("a: sequential / plan", seq / seconds, ">= 5", seq / seconds >= 5)
            self.check("a: per-key / plan", per_key / seconds, ">= 20", per_key / seconds >= 20)
            self.check(
                "a: requests per Algolia account", requests / accounts, "== 1", requests == accounts
            )

    # -- (b) ------------------------------------------------------------------------
    def apply_updates(self) -> None:
        keys = 200 if self.quick else 1000
        with algolia_world(self.workdir, 1, keys, latency_ms=50, drift=0.0, seed=2) as world:
            seeded = world.config
            drifted = self.workdir / "apply-drifted.yaml"
            drifted.write_text(seeded.read_text().replace("acl: [", "acl: [logs, "))
            configs = [drifted, seeded]
            turn = [0]

            def apply(parallelism: int) -> list[str]:
                config = configs[turn[0] % 2]
                turn[0] += 1
                return keystate(
                    "apply", "-c", str(config), "--auto-approve", "--parallelism", str(parallelism)
                )

            times = {}
            for parallelism in (1, 8):
                runs = 3 if parallelism == 1 and self.quick else self.runs
                seconds, rss = median_of(runs, lambda p=parallelism: run_child(apply(p), world.env))
                times[parallelism] = seconds
                self.rows.append(
                    Row(
                        f"b: apply {keys} updates, parallelism {parallelism}",
                        keys,
                        1,
                        2 * keys,
                        seconds,
                        None,
                        rss,
                    )
                )
            self.check(
                "b: parallelism 1 / parallelism 8",
                times[1] / times[8],
                ">= 6",
                times[1] / times[8] >= 6,
            )

    # -- (c) ------------------------------------------------------------------------
    def plan_growth(self) -> None:
        sizes = (1, 10) if self.quick else (1, 10, 100)
        measured: dict[int, tuple[float, float]] = {}
        for n_accounts in sizes:
            with algolia_world(
                self.workdir, n_accounts, 1000, latency_ms=50, drift=0.1, seed=3
            ) as world:
                desc = world.describe(self.workdir / f"world-c{n_accounts}.json")
                plan = keystate("plan", "-c", str(world.config))
                requests = self.requests_of(world, plan)
                seconds, rss = self.measure(world, plan)
                floor, _ = self.measure(world, python("bench.floor", str(desc)))
                keys = n_accounts * 1000
                measured[keys] = (seconds, rss)
                self.rows.append(
                    Row(f"c: plan {keys:,} keys", keys, n_accounts, requests, seconds, floor, rss)
                )
        if 100_000 in measured:
            (t10, m10), (t100, m100) = measured[10_000], measured[100_000]
            self.check("c: time 100k / 10k", t100 / t10, "<= 10 (linear)", t100 / t10 <= 10)
            self.check("c: peak RSS 100k / 10k", m100 / m10, "<= 10 (linear)", m100 / m10 <= 10)
            self.check("c: peak RSS at 100k keys (MB)", m100, "< 150", m100 < 150)

    # -- (d) ------------------------------------------------------------------------
    def cold_start(self) -> None:
        small = self.workdir / "small.yaml"
        small.write_text(
            "version: 1\naccounts:\n  a:\n    provider: algolia\n    sandbox: s.json\n"
            "keys:\n  a:\n    web:\n      acl: [search]\n      referers: ['https://x/*']\n"
            "      expires_at: 2099-01-01T00:00:00Z\n"
        )
        runs = max(self.runs, 10)
        base, base_rss = median_of(
            runs, lambda: run_child([sys.executable, "-c", "import click, yaml"])
        )
        helptime, help_rss = median_of(runs, lambda: run_child(keystate("--help")))
        validate, val_rss = median_of(
            runs, lambda: run_child(keystate("validate", "-c", str(small)))
        )
        self.rows += [
            Row("d: python -c 'import click, yaml'", 0, 0, 0, base, base, base_rss),
            Row("d: keystate --help", 0, 0, 0, helptime, base, help_rss),
            Row("d: keystate validate (small)", 1, 1, 0, validate, base, val_rss),
        ]
        self.check("d: validate / import click+yaml", validate / base, "<= 2", validate / base <= 2)

    # -- output ---------------------------------------------------------------------
    def table(self) -> str:
        head = f"{'scenario':<40} {'keys':>8} {'accts':>5} {'requests':>8} {'wall s':>8} {'floor s':>8} {'ratio':>6} {'RSS MB':>7}"
        lines = [head, "-" * len(head)]
        for r in self.rows:
            floor = f"{r.floor:8.3f}" if r.floor else f"{'':>8}"
            ratio = f"{r.ratio:6.2f}" if r.ratio else f"{'':>6}"
            req = f"{r.requests:8d}" if r.requests is not None else f"{'':>8}"
            lines.append(
                f"{r.scenario:<40} {r.keys:>8,} {r.accounts:>5} {req} {r.seconds:8.3f} {floor} {ratio} {r.rss_mb:7.1f}"
            )
        lines += ["", "Targets:"]
        for c in self.checks:
            lines.append(
                f"  [{'PASS' if c.ok else 'FAIL'}] {c.name}: {c.value} (target {c.target})"
            )
        return "\n".join(lines)

    def save(self) -> Path:
        RESULTS.mkdir(parents=True, exist_ok=True)
        document = {
            "created_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "machine": {"python": platform.python_version(), "platform": platform.platform()},
            "runs": self.runs,
            "quick": self.quick,
            "rows": [asdict(r) | {"ratio": r.ratio} for r in self.rows],
            "checks": [asdict(c) for c in self.checks],
        }
        path = RESULTS / ("latest-quick.json" if self.quick else "latest.json")
        path.write_text(json.dumps(document, indent=2) + "\n")
        return path


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (median)")
    parser.add_argument("--only", default="a,b,c,d", help="scenarios to run")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="keystate-bench-") as tmp:
        bench = Bench(args.runs, args.quick, Path(tmp))
        scenarios = {
            "a": bench.plan_many_accounts,
            "b": bench.apply_updates,
            "c": bench.plan_growth,
            "d": bench.cold_start,
        }
        for name in args.only.split(","):
            print(f"running scenario {name}...", file=sys.stderr, flush=True)
            scenarios[name.strip()]()
        print(bench.table())
        path = bench.save()
    print(f"\nWritten to {path.relative_to(ROOT)} in {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
