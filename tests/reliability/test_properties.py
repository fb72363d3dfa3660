"""Property: from any live state, plan -> apply -> plan is empty (DESIGN §1.5).

Hypothesis draws a world — declared keys and the live keys an account already holds:
managed (equal, drifted, protected, disabled, expired), left ``;pending`` by an
interrupted create, duplicated, leftovers of an interrupted replace, unmanaged (some
adopted), foreign (another owner's marker, or a marker without owner) — seeds it into
an emulator and runs the real CLI. An independent oracle, written from the contract
(DESIGN §4–§6 and docs/apply.md), says what must happen:

* unresolvable duplicate markers, or an adoption that would replace: exit 1, nothing
  changed, both keys named;
* a foreign-owner collision or a protected key to remove or replace: exit 3, nothing
  changed;
* otherwise apply exits 0, the managed keys are exactly the declared ones with the
  declared fields, a second plan is empty and a second apply changes nothing.

In every case unmanaged and foreign keys are byte-for-byte unchanged, every new value
is in the secrets sink, and no key value appears in any other output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ._convergence import (
    OWNER,
    Emu,
    Shape,
    converged_to,
    duplicates,
    leaks,
    lost_values,
    profile,
    running,
    stored_description,
    workdir,
)

NAMES = ("k0", "k1", "k2", "k3", "k4", "k5")
EXAMPLES = {"ci": 40, "long": 400}


def _settings() -> settings:
    return settings(
        max_examples=EXAMPLES[profile()],
        deadline=None,
        derandomize=profile() == "ci",
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


@dataclass(frozen=True)
class Live:
    """One live key to seed. ``kind``: managed, pending, unmanaged, foreign, legacy."""

    kind: str
    name: str
    shape: Shape
    protect: bool = False
    expired: bool = False
    enabled: bool = True


@dataclass(frozen=True)
class Want:
    name: str
    shape: Shape
    protect: bool = False
    adopt: int | None = None  # index of an unmanaged Live key


@dataclass(frozen=True)
class World:
    provider: str
    removal: str
    wants: tuple[Want, ...]
    lives: tuple[Live, ...]


def shapes(provider: str) -> st.SearchStrategy[Shape]:
    fixed = 3 if provider == "algolia" else 2
    return st.builds(
        Shape, st.integers(0, fixed - 1), st.integers(0, 2 if provider == "coveo" else 1)
    )


@st.composite
def worlds(draw: Callable[..., Any], provider: str) -> World:
    coveo = provider == "coveo"
    removal = draw(st.sampled_from(["delete", "disable"])) if coveo else "delete"
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=5, unique=True))
    shape = shapes(provider)
    lives: list[Live] = []
    wants: list[Want] = []
    unmanaged = draw(st.lists(shape, max_size=3))
    lives += [Live("unmanaged", "", s) for s in unmanaged]
    adoptable = list(range(len(unmanaged)))
    for name in names:
        declared = draw(st.integers(0, 9)) < 7
        want_shape = draw(shape)
        protect = draw(st.integers(0, 5)) == 0
        kinds = ["none", "managed", "managed", "pending", "dup", "pending+finished", "2pending"]
        if coveo and declared:
            kinds.append("leftover")
        if coveo and removal == "disable":
            kinds.append("retired")
        live = draw(st.sampled_from(kinds))
        if live == "managed":
            same = draw(st.booleans())
            lives.append(
                Live(
                    "managed",
                    name,
                    want_shape if same and declared else draw(shape),
                    protect=draw(st.integers(0, 5)) == 0,
                    expired=draw(st.integers(0, 6)) == 0,
                    enabled=not coveo or draw(st.integers(0, 5)) > 0,
                )
            )
        elif live == "pending":
            lives.append(Live("pending", name, draw(shape)))
        elif live == "dup":
            dup = draw(shape)
            lives += [Live("managed", name, dup), Live("managed", name, dup)]
        elif live == "pending+finished":
            lives += [Live("managed", name, draw(shape)), Live("pending", name, draw(shape))]
        elif live == "2pending":
            lives += [Live("pending", name, draw(shape)), Live("pending", name, draw(shape))]
        elif live == "leftover":
            old = Shape(1 - want_shape.fixed, draw(st.integers(0, 2)))
            lives += [Live("managed", name, old), Live("managed", name, want_shape)]
        elif live == "retired":
            lives += [
                Live("managed", name, draw(shape), enabled=False),
                Live("managed", name, draw(shape), enabled=draw(st.booleans())),
            ]
        if draw(st.integers(0, 3)) == 0:
            kind = draw(st.sampled_from(["foreign", "legacy"]))
            lives.append(Live(kind, name, draw(shape), expired=draw(st.integers(0, 5)) == 0))
        if declared:
            adopt = None
            if live == "none" and adoptable and draw(st.booleans()):
                adopt = adoptable.pop(draw(st.integers(0, len(adoptable) - 1)))
            wants.append(Want(name, want_shape, protect, adopt))
    return World(provider, removal, tuple(wants), tuple(lives))


# -- the oracle ---------------------------------------------------------------------------
def _forced(provider: str, live: Shape, want: Shape) -> bool:
    """Whether turning ``live`` into ``want`` needs a new key."""
    return provider == "coveo" and live.fixed != want.fixed


def _matches(live: Live, want: Want) -> bool:
    return live.shape == want.shape and live.protect == want.protect and live.enabled


def expected_exit(world: World) -> int:
    """0 (converges), 1 (plan error) or 3 (safety refusal), from the contract."""
    wants = {w.name: w for w in world.wants}
    visible = [live for live in world.lives if not (live.expired and world.provider == "algolia")]
    errors = refusals = 0
    groups: dict[str, list[Live]] = {}
    for live in visible:
        if live.kind in ("managed", "pending"):
            groups.setdefault(live.name, []).append(live)
    resolved: dict[str, Live] = {}
    for name, found in groups.items():
        group = found
        enabled = [k for k in group if k.enabled]
        if len(group) > 1 and not enabled and world.removal == "disable" and name not in wants:
            continue  # every copy retired: nothing to do
        if len(group) > 1 and len(enabled) == 1 and world.removal == "disable":
            group = enabled
        pending = [k for k in group if k.kind == "pending"]
        finished = [k for k in group if k.kind != "pending"]
        if len(group) > 1 and pending and len(finished) <= 1:
            group = finished or [pending[-1]]  # the newest pending key is kept
        if len(group) == 1:
            resolved[name] = group[0]
            continue
        want = wants.get(name)
        if want is not None:
            matching = [k for k in group if _matches(k, want)]
            others = [k for k in group if k not in matching]
            if (
                len(matching) == 1
                and others
                and all(_forced(world.provider, k.shape, want.shape) for k in others)
            ):
                resolved[name] = matching[0]
                continue
        errors += 1
    foreign = {live.name for live in visible if live.kind in ("foreign", "legacy")}
    for name, want in wants.items():
        current = resolved.get(name)
        if current is None and name in groups:
            continue  # an unresolved duplicate, counted above
        if current is not None:
            if current.kind == "pending":
                continue  # finished, or replaced (its value may be lost), never refused
            forced = _forced(world.provider, current.shape, want.shape) or current.expired
            if forced and (want.protect or current.protect):
                refusals += 1
        elif want.adopt is not None:
            target = world.lives[want.adopt]
            if _forced(world.provider, target.shape, want.shape):
                errors += 1
        elif name in foreign:
            refusals += 1
    for name, current in resolved.items():
        if name not in wants and current.kind != "pending" and current.protect:
            refusals += 1
    if errors:
        return 1
    return 3 if refusals else 0


# -- running a world ------------------------------------------------------------------------
def seed(emu: Emu, world: World) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Seed every live key; returns (adopt selectors by want name, seeded keys)."""
    seeded = []
    for live in world.lives:
        if live.kind == "unmanaged":
            description = "made by hand"
        elif live.kind == "foreign":
            description = f"theirs keystate:other/{live.name}"
        elif live.kind == "legacy":
            description = f"keystate:{live.name}"
        else:
            description = stored_description(live.name, live.protect, live.kind == "pending")
        seeded.append(emu.seed(description, live.shape, expired=live.expired, enabled=live.enabled))
    selectors = {w.name: emu.selector(seeded[w.adopt]) for w in world.wants if w.adopt is not None}
    return selectors, seeded


def untouchable(emu: Emu, adopted: set[str]) -> dict[str, dict[str, Any]]:
    """Stored keys keystate must never change: unmanaged (not adopted) and foreign."""
    out = {}
    for key in emu.stored():
        from keystate.model import parse_description

        marker = parse_description(str(key.get("description") or ""))[1]
        if (marker is None or marker.owner != OWNER) and emu.ident(key) not in adopted:
            out[emu.ident(key)] = key
    return out


def check_world(emu: Emu, world: World, figures: Any) -> None:
    selectors, _ = seed(emu, world)
    adopted = set()
    for want in world.wants:
        if want.adopt is not None:
            adopted.add(
                next(emu.ident(k) for k in emu.stored() if emu.selector(k) == selectors[want.name])
            )
    before = emu.stored()
    untouched = untouchable(emu, adopted)
    finished_before = {emu.ident(k) for m, k in emu.managed() if not m.pending} | {
        emu.ident(k) for k in before if emu.ident(k) in adopted
    }
    expected = expected_exit(world)
    with workdir() as work:
        keys = {w.name: (w.shape, w.protect, selectors.get(w.name)) for w in world.wants}
        work.write(emu.config(keys, removal=world.removal))
        plan = work.plan(emu, "--format", "json")
        assert plan.exit_code == expected, (expected, plan.output)
        ran, report = work.apply(emu)
        assert not (plan.traceback or ran.traceback), plan.output + ran.output
        assert ran.exit_code == expected, (world, ran.output)
        after = emu.stored()
        values = {str(k["value"]) for k in before + after} | {d["value"] for d in work.delivered()}
        leaked = leaks(work.outputs, values | emu.values())
        figures.add(
            "properties", leaks=len(leaked), tracebacks=int(plan.traceback or ran.traceback)
        )
        assert not leaked, "a key value left the sink"
        for ident, key in untouched.items():
            assert next((k for k in after if emu.ident(k) == ident), None) == key, (
                "an unmanaged or foreign key was changed"
            )
        if expected != 0:
            assert after == before, "a refused apply changed something"
            if expected == 1 and "same marker" in ran.output:
                assert ran.output.count("id:") + ran.output.count("fingerprint:") >= 2
            figures.add("properties", **{f"refused_exit_{expected}": 1, "examples": 1})
            return
        desired = {w.name: w.shape for w in world.wants}
        dups, lost = duplicates(emu), lost_values(emu, work, finished_before)
        figures.add("properties", duplicates=len(dups), lost_values=len(lost))
        assert converged_to(emu, desired, world.removal) == []
        assert dups == {} and lost == []
        for want in world.wants:
            if want.adopt is not None:  # adopted, not rotated
                key = next(k for m, k in emu.managed() if m.name == want.name and emu.enabled(k))
                assert emu.selector(key) == selectors[want.name]
        assert all(r["outcome"] == "done" for r in report["results"]), report
        assert work.plan(emu, "--detailed-exitcode").exit_code == 0
        settled = emu.stored()
        again, second = work.apply(emu)
        assert again.exit_code == 0 and "No changes" in again.output, again.output
        assert second["results"] == [], second  # the report is written even with no changes
        assert emu.stored() == settled, "a second apply changed something"
        leaked = leaks(work.outputs, values | emu.values())
        figures.add("properties", leaks=len(leaked), tracebacks=int(again.traceback))
        assert not leaked
        figures.add("properties", converged=1, examples=1, changes=len(report["results"]))


@pytest.mark.parametrize("provider", ["algolia", "coveo"])
def test_any_live_state_converges_or_refuses_as_documented(provider: str, figures: Any) -> None:
    @_settings()
    @given(world=worlds(provider))
    def prop(world: World) -> None:
        with running(provider) as emu:
            check_world(emu, world, figures)

    prop()
