"""Shared machinery of the convergence half of the reliability suite.

* :class:`Emu` — one provider emulator on 127.0.0.1 (Algolia or Coveo, served by
  :class:`support.Servers` on a :class:`support.FakeClock` that follows real time),
  seeded and observed through the emulator app directly (the other side of the wire),
  never through keystate. Keys are described by a small :class:`Shape` per provider, so a test
  can say "this key should look like shape 2" and check it against stored JSON.
* :func:`cli` — runs ``keystate`` in-process, counting tracebacks.
* Checks that every reliability test shares: markers (duplicates, pending keys), the
  secrets sink, leaks of key values into any output, and the honesty of ``--report``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from support import FakeClock, Servers
from support import knobs as support_knobs

from keystate.cli import cli as keystate_cli
from keystate.emulators.algolia import AlgoliaEmulator
from keystate.emulators.coveo import CoveoEmulator
from keystate.emulators.faults import Knobs
from keystate.emulators.http import EmuRequest, RunningServer
from keystate.model import Marker, parse_description

OWNER = "ops"
EXPIRES = datetime(2031, 1, 1, tzinfo=UTC)
APP_ID = "RELIABLE01"
ADMIN_KEY = "re0000000000000000000000000000re"
ORG = "reliability"
TOKEN = "xreliabilitytoken000000000000000"
PROVIDERS = ("algolia", "coveo")
ACCOUNT = {"algolia": "algolia-prod", "coveo": "coveo-prod"}
ENV = {
    "algolia": {"ALGOLIA_APPLICATION_ID": APP_ID, "ALGOLIA_ADMIN_API_KEY": ADMIN_KEY},
    "coveo": {"COVEO_ACCESS_TOKEN": TOKEN},
}
ALGOLIA_ACLS: tuple[tuple[str, ...], ...] = (("search",), ("browse",), ("analytics", "search"))
ALGOLIA_REFERERS: tuple[tuple[str, ...], ...] = (
    ("https://shop.example.com/*",),
    ("https://blog.example.com/*", "https://shop.example.com/*"),
)
COVEO_PRIVILEGES: tuple[tuple[tuple[str, str, str | None], ...], ...] = (
    (("SEARCH_API", "EXECUTE_QUERY", None),),
    (("SEARCH_API", "EXECUTE_QUERY", None), ("USAGE_ANALYTICS", "ANALYTICS_DATA", "EDIT")),
)
COVEO_IPS: tuple[tuple[str, ...], ...] = (("203.0.113.0/24",), ("198.51.100.0/24",), ())


@dataclass(frozen=True)
class Shape:
    """A key's provider fields, by variant numbers.

    Algolia: ``fixed`` picks the ACLs, ``free`` the referers (both updatable in place).
    Coveo: ``fixed`` picks the privileges (create-only: a change replaces the key),
    ``free`` the allowed IPs (updatable).
    """

    fixed: int = 0
    free: int = 0


def stored_description(name: str, protect: bool = False, pending: bool = False) -> str:
    return Marker(name, OWNER, protect, pending).stored_description(f"key {name}")


@dataclass
class Emu:
    """One running emulator and direct access to its stored keys."""

    provider: str
    app: Any
    server: RunningServer
    clock: FakeClock  # real time, moved back to seed expired keys
    state_path: Path | None = None

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def account(self) -> str:
        return ACCOUNT[self.provider]

    @property
    def env(self) -> dict[str, str]:
        return ENV[self.provider]

    @contextmanager
    def served(self, knob: Knobs) -> Iterator[Emu]:
        """This emulator (same stored keys, same propagation delay) behind one more
        server with its own fault knobs, while the others keep serving."""
        with Servers() as servers:
            yield replace(self, server=servers.start(self.app, knob))

    def fault_free(self) -> AbstractContextManager[Emu]:
        """This emulator behind a server that injects no fault: for checks that must not
        depend on fault draws."""
        return self.served(Knobs())

    # -- observing ---------------------------------------------------------------------
    def stored(self) -> list[dict[str, Any]]:
        return list(self.app.snapshot())

    def ident(self, key: Mapping[str, Any]) -> str:
        return str(key["value"] if self.provider == "algolia" else key["id"])

    def ref(self, key: Mapping[str, Any]) -> str:
        """The ref keystate prints for a stored key."""
        if self.provider == "algolia":
            return "fingerprint:" + hashlib.sha256(str(key["value"]).encode()).hexdigest()[:16]
        return f"id:{key['id']}"

    def selector(self, key: Mapping[str, Any]) -> str:
        if self.provider == "algolia":
            return "fingerprint:" + hashlib.sha256(str(key["value"]).encode()).hexdigest()[:16]
        return f"id:{key['id']}"

    def values(self) -> set[str]:
        return {str(k["value"]) for k in self.stored()} | {ADMIN_KEY, TOKEN}

    def enabled(self, key: Mapping[str, Any]) -> bool:
        return self.provider == "algolia" or key.get("enabled") is not False

    def shape_of(self, key: Mapping[str, Any]) -> Shape | None:
        """The Shape a stored key has, or None if it matches no shape."""
        if self.provider == "algolia":
            acl = tuple(sorted(key.get("acl") or []))
            ref = tuple(sorted(key.get("referers") or []))
            expires = key.get("expiresAt")
            if expires is None or abs(float(expires) - EXPIRES.timestamp()) > 60:
                return None
            fixed = next((i for i, a in enumerate(ALGOLIA_ACLS) if tuple(sorted(a)) == acl), None)
            free = next(
                (i for i, r in enumerate(ALGOLIA_REFERERS) if tuple(sorted(r)) == ref), None
            )
        else:
            privs = {(p["owner"], p["targetDomain"], p.get("type")) for p in key["privileges"]}
            ips = tuple(sorted(key.get("allowed_ips") or []))
            fixed = next((i for i, p in enumerate(COVEO_PRIVILEGES) if set(p) == privs), None)
            free = next((i for i, r in enumerate(COVEO_IPS) if tuple(sorted(r)) == ips), None)
        if fixed is None or free is None:
            return None
        return Shape(fixed, free)

    def managed(self) -> list[tuple[Marker, dict[str, Any]]]:
        """Every stored key carrying this suite's owner's marker."""
        out = []
        for key in self.stored():
            marker = parse_description(str(key.get("description") or ""))[1]
            if marker is not None and marker.owner == OWNER:
                out.append((marker, key))
        return out

    # -- seeding (through the emulator app, as an admin would by hand) -------------------
    def _call(self, method: str, path: str, body: Any = None) -> Any:
        raw = json.dumps(body).encode() if body is not None else b""
        if self.provider == "algolia":
            headers = {"x-algolia-application-id": APP_ID, "x-algolia-api-key": ADMIN_KEY}
        else:
            headers = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
            path = f"/rest/organizations/{ORG}{path}"
        reply = self.app.handle(EmuRequest(method, path, "", headers, raw))
        assert 200 <= reply.status < 300, reply.body
        return json.loads(reply.body) if reply.body else None

    def seed(
        self, description: str, shape: Shape, *, expired: bool = False, enabled: bool = True
    ) -> dict[str, Any]:
        """Create a key by hand; returns its stored JSON."""
        # An expired key is created in the past, long enough ago to have expired:
        # Algolia's 60-second validity, or Coveo's shortest lifetime (whole days).
        back = (600.0 if self.provider == "algolia" else 2 * 86400.0) if expired else 0.0
        self.clock.advance(-back)
        try:
            if self.provider == "algolia":
                validity = 60 if expired else int(EXPIRES.timestamp() - self.clock())
                body = {
                    "acl": list(ALGOLIA_ACLS[shape.fixed]),
                    "referers": list(ALGOLIA_REFERERS[shape.free]),
                    "description": description,
                    "validity": validity,
                }
                ident = self._call("POST", "/1/keys", body)["key"]
            else:
                # A key keystate made shows its name (display_name's default); any
                # other key, a name of its own.
                marker = parse_description(description)[1]
                body = {
                    "displayName": marker.name if marker else "seeded",
                    "description": description,
                    "privileges": [
                        {"owner": o, "targetDomain": d, **({"type": t} if t else {})}
                        for o, d, t in COVEO_PRIVILEGES[shape.fixed]
                    ],
                    "allowedIps": list(COVEO_IPS[shape.free]),
                }
                if expired:
                    body["lifetimeDuration"] = "P1D"
                ident = self._call("POST", "/apikeys", body)["id"]
                if not enabled:
                    self._call("PUT", f"/apikeys/{ident}/disable")
        finally:
            self.clock.advance(back)
        if expired and self.provider == "algolia":
            return {"value": ident, "description": description, "expired": True}
        return next(k for k in self.stored() if self.ident(k) == ident)

    # -- configuration ----------------------------------------------------------------
    def account_yaml(self, removal: str = "delete", wait_timeout: float = 5, timeout: float = 1):
        if self.provider == "algolia":
            conn = (
                "    application_id: ${ALGOLIA_APPLICATION_ID}\n"
                "    api_key: ${ALGOLIA_ADMIN_API_KEY}\n"
                f'    hosts: ["{self.url}"]\n'
            )
        else:
            conn = (
                f"    organization_id: {ORG}\n    token: ${{COVEO_ACCESS_TOKEN}}\n"
                f"    base_url: {self.url}\n"
            )
            if removal != "delete":
                conn += f"    removal: {removal}\n"
        return (
            f"  {self.account}:\n    provider: {self.provider}\n{conn}"
            f"    timeout: {timeout}\n    wait_timeout: {wait_timeout}\n"
        )

    def key_yaml(
        self, name: str, shape: Shape, *, protect: bool = False, adopt: str | None = None
    ) -> str:
        out = f"    {name}:\n      description: key {name}\n"
        if self.provider == "algolia":
            out += f"      acl: [{', '.join(ALGOLIA_ACLS[shape.fixed])}]\n"
            out += f"      referers: {json.dumps(list(ALGOLIA_REFERERS[shape.free]))}\n"
            out += "      expires_at: 2031-01-01T00:00:00Z\n"
        else:
            out += "      privileges:\n"
            for o, d, t in COVEO_PRIVILEGES[shape.fixed]:
                kind = f", type: {t}" if t else ""
                out += f"        - {{owner: {o}, target_domain: {d}{kind}}}\n"
            out += f"      allowed_ips: {json.dumps(list(COVEO_IPS[shape.free]))}\n"
        if protect:
            out += "      protect: true\n"
        if adopt:
            out += f"      adopt: {adopt}\n"
        return out

    def config(
        self,
        keys: Mapping[str, tuple[Shape, bool, str | None]] | Iterable[str],
        removal: str = "delete",
        wait_timeout: float = 5,
        timeout: float = 1,
    ) -> str:
        """A whole configuration: ``keys`` maps name -> (shape, protect, adopt selector),
        or is a list of names (shape 0)."""
        if not isinstance(keys, Mapping):
            keys = {n: (Shape(), False, None) for n in keys}
        body = "".join(
            self.key_yaml(n, shape, protect=p, adopt=a) for n, (shape, p, a) in sorted(keys.items())
        )
        head = f"version: 1\nowner: {OWNER}\naccounts:\n"
        head += self.account_yaml(removal, wait_timeout, timeout)
        return head + f"keys:\n  {self.account}:\n" + (body or "    {}\n")


def knobs(faults: str = "", seed: int = 1, **kw: Any) -> Knobs:
    """:func:`support.knobs` with this suite's defaults: 429s ask for a 0.2 s wait,
    timeouts hold the connection 1.5 s."""
    return support_knobs(faults, seed, **{"retry_after": 0.2, "timeout_hold_s": 1.5, **kw})


@contextmanager
def running(
    provider: str,
    knob: Knobs | None = None,
    propagation_delay_ms: float = 0,
    state_path: Path | None = None,
) -> Iterator[Emu]:
    """A fresh emulator of ``provider``, served until the block ends."""
    clock = FakeClock(real=True)
    app: Any
    if provider == "algolia":
        app = AlgoliaEmulator(
            state_path,
            app_id=APP_ID,
            admin_key=ADMIN_KEY,
            propagation_delay_ms=propagation_delay_ms,
            clock=clock,
        )
    else:
        app = CoveoEmulator(
            state_path,
            organization_id=ORG,
            token=TOKEN,
            propagation_delay_ms=propagation_delay_ms,
            clock=clock,
        )
    with Servers() as servers:
        yield Emu(provider, app, servers.start(app, knob), clock, state_path)


# -- running keystate -------------------------------------------------------------------
@dataclass
class Ran:
    args: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str
    traceback: bool

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def cli(*args: str, env: Mapping[str, str]) -> Ran:
    """Run keystate in-process; an uncaught exception counts as a traceback."""
    runner = CliRunner()
    merged = {"NO_COLOR": "1", "GITHUB_ACTIONS": None, **env}
    result = runner.invoke(keystate_cli, list(args), env=merged, catch_exceptions=True)
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    text = result.stdout + result.stderr
    return Ran(args, result.exit_code, result.stdout, result.stderr, crashed or "Traceback" in text)


@dataclass
class Workdir:
    """A configuration file, a secrets sink and reports in a temporary directory."""

    root: Path
    runs: int = 0
    outputs: list[str] = field(default_factory=list)

    @property
    def config(self) -> Path:
        return self.root / "keystate.yaml"

    @property
    def sink(self) -> Path:
        return self.root / "secrets.jsonl"

    def write(self, text: str) -> Path:
        self.config.write_text(text, encoding="utf-8")
        return self.config

    def report_path(self) -> Path:
        self.runs += 1
        return self.root / f"report-{self.runs}.json"

    def apply(self, emu: Emu, *extra: str, force: bool = True) -> tuple[Ran, dict[str, Any]]:
        """``-vv apply --auto-approve`` (debug logs included in the leak scan) with a sink
        and a report; returns the run and its report."""
        report = self.report_path()
        args = ["-vv", "apply", "-c", str(self.config), "--auto-approve"]
        args += ["--secrets-out", str(self.sink), "--report", str(report), *extra]
        if force:
            args.append("--force")
        ran = cli(*args, env=emu.env)
        self.outputs.append(ran.output)
        document: dict[str, Any] = {}
        if report.exists():
            text = report.read_text(encoding="utf-8")
            self.outputs.append(text)
            document = json.loads(text)
        return ran, document

    def plan(self, emu: Emu, *extra: str) -> Ran:
        ran = cli("plan", "-c", str(self.config), *extra, env=emu.env)
        self.outputs.append(ran.output)
        return ran

    def verify_plan(self, emu: Emu, *extra: str) -> Ran:
        """``plan`` of the same configuration through a fault-free server on the same
        emulator: a verification that the injected faults cannot fail."""
        with emu.fault_free() as clean:
            path = self.root / "verify.yaml"
            path.write_text(self.config.read_text(encoding="utf-8").replace(emu.url, clean.url))
            ran = cli("plan", "-c", str(path), *extra, env=emu.env)
        self.outputs.append(ran.output)
        return ran

    def delivered(self) -> list[dict[str, Any]]:
        if not self.sink.exists():
            return []
        return [json.loads(line) for line in self.sink.read_text().splitlines() if line]


@contextmanager
def workdir() -> Iterator[Workdir]:
    with tempfile.TemporaryDirectory(prefix="keystate-rel-") as root:
        yield Workdir(Path(root))


# -- checks -----------------------------------------------------------------------------
def leaks(texts: Iterable[str], values: Iterable[str]) -> list[str]:
    """Fingerprints of the key values found in any of ``texts``."""
    found = []
    body = "\n".join(texts)
    for value in set(values):
        if len(value) >= 8 and value in body:
            found.append(hashlib.sha256(value.encode()).hexdigest()[:12])
    return found


def duplicates(emu: Emu) -> dict[str, int]:
    """Names held by more than one enabled, finished key of this owner."""
    counts: Counter[str] = Counter(
        m.name for m, k in emu.managed() if not m.pending and m.retire_at is None and emu.enabled(k)
    )
    return {n: c for n, c in counts.items() if c > 1}


def unexplained_duplicates(
    emu: Emu, report: Mapping[str, Any], desired: Mapping[str, Shape]
) -> dict[str, int]:
    """Duplicates (as :func:`duplicates`) that the run's report does not account for.

    What the contract allows between two runs (DESIGN §5–6): a replace creates the new
    key first, then removes the old one; when the removal fails, both keys live until
    the next apply removes the old one. So a name may hold two keys after a run only if
    exactly one of them is the declared key, and the report names every other one as an
    old key whose removal did not happen: a ``failed`` replace saying "removing the old
    key <ref> failed", or a delete/disable of <ref> reported ``failed`` or ``skipped``.
    Anything else — an extra key no result names — is a duplicate.
    """
    left: dict[str, set[str]] = {}
    for item in report.get("results", []):
        name = item["address"].split("/", 1)[1]
        if item["action"] == "replace" and item["outcome"] == "failed":
            old = re.search(r"removing the old key (\S+) failed", item["detail"])
            if old is not None:
                left.setdefault(name, set()).add(old.group(1))
        elif item["action"] in ("delete", "disable") and item["outcome"] in ("failed", "skipped"):
            left.setdefault(name, set()).add(str(item["ref"]))
    out = {}
    for name, count in duplicates(emu).items():
        keys = [
            k
            for m, k in emu.managed()
            if m.name == name and not m.pending and m.retire_at is None and emu.enabled(k)
        ]
        rest = [k for k in keys if emu.ref(k) not in left.get(name, set())]
        if len(rest) != 1 or name not in desired or emu.shape_of(rest[0]) != desired[name]:
            out[name] = count
    return out


def lost_values(emu: Emu, work: Workdir, before: Iterable[str] = ()) -> list[str]:
    """Managed keys created since ``before`` (idents) whose value is not in the sink."""
    known = set(before)
    delivered = {d["value"]: d["name"] for d in work.delivered()}
    lost = []
    for marker, key in emu.managed():
        if emu.ident(key) in known:
            continue
        if delivered.get(str(key["value"])) != marker.name:
            lost.append(f"{marker.name} ({emu.ref(key)})")
    return lost


def dishonest(emu: Emu, report: Mapping[str, Any], desired: Mapping[str, Shape]) -> list[str]:
    """Results reported ``done`` or ``unconfirmed`` that the emulator's state denies.

    ``desired`` maps each declared name to its Shape; checked right after the run.
    """
    stored = {emu.ref(k): k for k in emu.stored()}
    problems = []
    for item in report.get("results", []):
        if item["outcome"] not in ("done", "unconfirmed"):
            continue
        name = item["address"].split("/", 1)[1]
        action, ref = item["action"], item["ref"]
        key = stored.get(ref)
        what = f"{item['address']} {action} {item['outcome']}"
        if action in ("create", "update", "adopt", "replace", "rotate"):
            if key is None:
                problems.append(f"{what}: no key {ref}")
                continue
            marker = parse_description(str(key.get("description") or ""))[1]
            if marker is None or marker.name != name or marker.pending:
                problems.append(f"{what}: {ref} has marker {marker}")
            if emu.shape_of(key) != desired.get(name) or not emu.enabled(key):
                problems.append(f"{what}: {ref} does not have the declared fields")
            old = re.match(r"replaced (\S+)", item["detail"]) if action == "replace" else None
            gone = stored.get(old.group(1)) if old else None
            if gone is not None and emu.enabled(gone):
                problems.append(f"{what}: the old key {old.group(1) if old else ''} is still live")
        elif action == "delete" and key is not None:
            problems.append(f"{what}: {ref} still exists")
        elif action == "disable" and (key is None or emu.enabled(key)):
            problems.append(f"{what}: {ref} is not disabled")
    return problems


def converged_to(emu: Emu, desired: Mapping[str, Shape], removal: str = "delete") -> list[str]:
    """What differs between the emulator's managed keys and ``desired``."""
    problems = []
    by_name: dict[str, list[dict[str, Any]]] = {}
    for marker, key in emu.managed():
        if marker.pending:
            problems.append(f"{marker.name}: pending key {emu.ref(key)} left")
            continue
        if marker.retire_at is not None:
            continue  # the old key of a rotation, in its overlap (see ``rotated``)
        by_name.setdefault(marker.name, []).append(key)
    for name, keys in sorted(by_name.items()):
        enabled = [k for k in keys if emu.enabled(k)]
        if name not in desired:
            if removal == "delete" or enabled:
                problems.append(f"{name}: undeclared, still {len(enabled)} enabled key(s)")
            continue
        if len(enabled) != 1 or (removal == "delete" and len(keys) != 1):
            problems.append(f"{name}: {len(keys)} keys ({len(enabled)} enabled)")
        elif emu.shape_of(enabled[0]) != desired[name]:
            problems.append(f"{name}: fields differ ({emu.shape_of(enabled[0])})")
    problems += [f"{n}: missing" for n in desired if n not in by_name]
    return problems


ROTATE_EVERY_DAYS = 90


def seed_old(emu: Emu, name: str, shape: Shape, days: int = ROTATE_EVERY_DAYS + 10) -> None:
    """A managed key created ``days`` ago (the emulator's clock set back while it is made),
    so that a rotation every ROTATE_EVERY_DAYS is due."""
    emu.clock.advance(-days * 86400.0)
    try:
        emu.seed(stored_description(name), shape)
    finally:
        emu.clock.advance(days * 86400.0)


def with_rotation(config: str, overlap: str) -> str:
    """Every key of a configuration rotated every ROTATE_EVERY_DAYS with this overlap."""
    return config.replace(
        "      description: key ",
        f"      rotate: {{every: {ROTATE_EVERY_DAYS}d, overlap: {overlap}}}\n"
        "      description: key ",
    )


def rotated(
    emu: Emu, desired: Mapping[str, Shape], before: Iterable[str], overlap: bool
) -> list[str]:
    """What differs from a finished rotation of every declared key: one successor per
    name (made since ``before``, with the declared fields); each predecessor retired
    exactly once — gone (overlap 0) or still there with one retire time (an overlap)."""
    old = set(before)
    problems = []
    current: dict[str, list[str]] = {}
    retiring: dict[str, list[str]] = {}
    for marker, key in emu.managed():
        ident = emu.ident(key)
        if marker.pending:
            problems.append(f"{marker.name}: pending key {emu.ref(key)} left")
        elif marker.retire_at is not None:
            retiring.setdefault(marker.name, []).append(ident)
            if ident not in old:
                problems.append(f"{marker.name}: a successor {emu.ref(key)} is retiring")
        elif emu.enabled(key):
            current.setdefault(marker.name, []).append(ident)
            if ident in old:
                problems.append(f"{marker.name}: the predecessor {emu.ref(key)} was not retired")
            elif emu.shape_of(key) != desired.get(marker.name):
                problems.append(f"{marker.name}: the successor has other fields")
    for name in desired:
        if len(current.get(name, [])) != 1:
            problems.append(f"{name}: {len(current.get(name, []))} current keys")
        expected = 1 if overlap else 0
        if len(retiring.get(name, [])) != expected:
            problems.append(f"{name}: {len(retiring.get(name, []))} retiring keys")
    return problems


def profile() -> str:
    return os.environ.get("KEYSTATE_RELIABILITY_PROFILE", "ci")


def seeds(ci: int, long: int) -> Sequence[int]:
    return range(1, 1 + (long if profile() == "long" else ci))
