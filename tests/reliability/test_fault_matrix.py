"""Fault matrix: every fault kind x every action, alone and mixed, on both providers.

Each scenario seeds an account so that the plan holds one kind of action, then aims the
fault at the requests of that action only (``Knobs.fault_routes``: the route is drawn,
everything else is served cleanly, so the fault hits the action under test and nothing
else). ``apply --report`` runs until it exits 0, at most ``MAX_RUNS`` times. After
every run:

* no duplicate: a name holds two live keys only where the contract allows it and the
  report says so — a replace created the new key but its old key could not be removed
  (the replace reported ``failed`` naming the old key, or the old key's delete reported
  ``failed``/``skipped``), which a later run removes; a run that exits 0 leaves none;
* the report is honest: every change reported ``done`` or ``unconfirmed`` is checked
  against the emulator's stored state (a created/updated/adopted/replaced key has the
  marker and the declared fields, a deleted key is gone, a disabled key is disabled);

and at the end the account holds exactly the declared keys, every new value is in the
secrets sink, no output holds a key value, no run crashed, the fault really hit, and a
last ``plan`` — sent to a fault-free server in front of the same emulator, so that it
checks the state and not the luck of the fault draws — shows no change.

Actions that a provider does not have are not in its matrix: Algolia has no create-only
field, so nothing is replaced there, and its keys cannot be disabled (``removal:
disable`` is Coveo-only). The "propagation" column is the emulator's propagation delay
(reads lag behind writes) instead of an injected fault. The "mixed" rows run every
fault kind at once on every route, with a plan holding every action.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from ._convergence import (
    Emu,
    Shape,
    Workdir,
    converged_to,
    dishonest,
    duplicates,
    knobs,
    leaks,
    lost_values,
    profile,
    rotated,
    running,
    seed_old,
    stored_description,
    unexplained_duplicates,
    with_rotation,
    workdir,
)

KINDS = ("429", "429-no-retry-after", "500", "503", "timeout", "reset", "lost-response")
ACTIONS = {
    "algolia": ("create", "update", "adopt", "delete"),
    "coveo": ("create", "update", "adopt", "replace", "delete", "disable"),
}
ROUTES = {
    ("algolia", "create"): ("add",),
    ("algolia", "update"): ("update",),
    ("algolia", "adopt"): ("update",),
    ("algolia", "delete"): ("delete",),
    ("coveo", "create"): ("create",),
    ("coveo", "update"): ("update",),
    ("coveo", "adopt"): ("update",),
    ("coveo", "replace"): ("create", "delete"),
    ("coveo", "delete"): ("delete",),
    ("coveo", "disable"): ("disable",),
}
MIXED = (
    "429=0.05,429-no-retry-after=0.05,500=0.05,503=0.05,timeout=0.04,reset=0.05,lost-response=0.06"
)
MAX_RUNS = 6
KEYS = 8 if profile() == "long" else 4
SEEDS = (1, 2, 3) if profile() == "long" else (1,)
PROPAGATION_MS = 300


def cases() -> list[Any]:
    out = []
    for provider, actions in ACTIONS.items():
        for action in actions:
            for kind in (*KINDS, "propagation"):
                for seed in SEEDS:
                    out.append(
                        pytest.param(
                            provider, action, kind, seed, id=f"{provider}-{action}-{kind}-{seed}"
                        )
                    )
    return out


def setup(emu: Emu, action: str, names: list[str]) -> tuple[dict[str, Any], str]:
    """Seed the account so that the plan for the returned config holds ``action`` for
    each name; returns (declared keys for Emu.config, removal policy)."""
    keys: dict[str, Any] = {}
    removal = "disable" if action == "disable" else "delete"
    for name in names:
        if action == "create":
            keys[name] = (Shape(0, 0), False, None)
        elif action == "update":
            emu.seed(stored_description(name), Shape(0, 0))
            keys[name] = (Shape(0, 1), False, None)
        elif action == "adopt":
            key = emu.seed(f"hand-made {name}", Shape(0, 0))
            keys[name] = (Shape(0, 1), False, emu.selector(key))
        elif action == "replace":
            emu.seed(stored_description(name), Shape(0, 0))
            keys[name] = (Shape(1, 0), False, None)
        elif action in ("delete", "disable"):
            emu.seed(stored_description(name), Shape(0, 0))
    return keys, removal


def mixed_setup(emu: Emu, removal: str) -> dict[str, Any]:
    """Every action of the provider at once (removals follow ``removal``)."""
    keys: dict[str, Any] = {}
    for i in range(KEYS):
        keys[f"new{i}"] = (Shape(0, 0), False, None)
        emu.seed(stored_description(f"upd{i}"), Shape(0, 0))
        keys[f"upd{i}"] = (Shape(0, 1), False, None)
        adopted = emu.seed(f"hand-made {i}", Shape(0, 0))
        keys[f"adp{i}"] = (Shape(0, 1), False, emu.selector(adopted))
        emu.seed(stored_description(f"old{i}"), Shape(0, 0))
        if emu.provider == "coveo":
            emu.seed(stored_description(f"rep{i}"), Shape(0, 0))
            keys[f"rep{i}"] = (Shape(1, 0), False, None)
    return keys


def converge(emu: Emu, work: Workdir, desired: dict[str, Shape], figures: Any) -> int:
    """Apply until exit 0 (at most MAX_RUNS); every run is checked. Returns runs made."""
    for attempt in range(1, MAX_RUNS + 1):
        ran, report = work.apply(emu)
        figures.add("faults", runs=1, tracebacks=int(ran.traceback))
        assert not ran.traceback, ran.output
        lies = dishonest(emu, report, desired)
        dups = unexplained_duplicates(emu, report, desired)
        left = len(duplicates(emu)) - len(dups)
        figures.add("faults", dishonest_results=len(lies), duplicates=len(dups), old_keys_left=left)
        assert lies == [], lies
        assert dups == {}, dups
        for item in report.get("results", []):
            figures.add("faults", **{f"results_{item['outcome']}": 1})
        if ran.exit_code == 0:
            assert duplicates(emu) == {}, "exit 0 with an old key left"
            return attempt
        assert ran.exit_code == 1, ran.output
    pytest.fail(f"no convergence in {MAX_RUNS} runs:\n{ran.output}")


def finish(
    emu: Emu,
    work: Workdir,
    desired: dict[str, Shape],
    removal: str,
    before: set[str],
    figures: Any,
    delay_ms: float = 0,
) -> None:
    lost = lost_values(emu, work, before)
    leaked = leaks(work.outputs, emu.values() | {d["value"] for d in work.delivered()})
    figures.add("faults", lost_values=len(lost), leaks=len(leaked))
    assert converged_to(emu, desired, removal) == []
    assert lost == [] and leaked == []
    time.sleep(delay_ms / 1000)
    assert work.verify_plan(emu, "--detailed-exitcode").exit_code == 0


@pytest.mark.parametrize(("provider", "action", "kind", "seed"), cases())
def test_fault_alone_on_one_action(
    provider: str, action: str, kind: str, seed: int, figures: Any
) -> None:
    propagation = PROPAGATION_MS if kind == "propagation" else 0
    faults = "" if kind == "propagation" else f"{kind}=0.5"
    knob = knobs(faults, seed=seed, routes=ROUTES[(provider, action)], timeout_hold_s=1.0)
    names = [f"{action}{i}" for i in range(KEYS)]
    with running(provider, knob, propagation_delay_ms=propagation) as emu, workdir() as work:
        keys, removal = setup(emu, action, names)
        time.sleep(propagation / 1000)  # seeded keys visible before the first plan
        before = {emu.ident(k) for k in emu.stored()}
        wait = 5 if propagation else 1.5  # how long a lost create is looked for on Algolia
        work.write(emu.config(keys, removal=removal, wait_timeout=wait, timeout=0.5))
        desired = {name: shape for name, (shape, _, _) in keys.items()}
        runs = converge(emu, work, desired, figures)
        finish(emu, work, desired, removal, before, figures, propagation)
        injected = sum(emu.server.counters.faults.values())
        if kind != "propagation":
            assert injected > 0, "the fault never hit the action under test"
        figures.add("faults", scenarios=1, faults_injected=injected, **{f"converged_in_{runs}": 1})


@pytest.mark.parametrize(
    ("provider", "removal"), [("algolia", "delete"), ("coveo", "delete"), ("coveo", "disable")]
)
def test_mixed_faults_on_every_action(provider: str, removal: str, figures: Any) -> None:
    knob = knobs(MIXED, seed=5, timeout_hold_s=1.0)
    with running(provider, knob, propagation_delay_ms=100) as emu, workdir() as work:
        keys = mixed_setup(emu, removal)
        time.sleep(0.1)
        before = {emu.ident(k) for k in emu.stored()}
        work.write(emu.config(keys, removal=removal, wait_timeout=2, timeout=0.5))
        desired = {name: shape for name, (shape, _, _) in keys.items()}
        runs = converge(emu, work, desired, figures)
        finish(emu, work, desired, removal, before, figures, 100)
        injected = sum(emu.server.counters.faults.values())
        assert injected > 5
        figures.add(
            "faults",
            scenarios=1,
            mixed_scenarios=1,
            faults_injected=injected,
            **{f"converged_in_{runs}": 1},
        )


def test_old_key_a_replace_could_not_remove_is_removed_by_the_next_run() -> None:
    """A replace whose old key cannot be removed leaves two keys, says so, and the next
    run removes the old key even when an unrelated create of that run fails: the old
    key's successor exists, so its removal waits for nothing. Removals that do wait are
    reported ``skipped`` naming the key they would have removed.

    One emulator behind three servers: every delete fails (run 1), every create fails
    (run 2), no fault (run 3)."""
    with running("coveo", knobs("500=1", routes=("delete",))) as emu, workdir() as work:
        old = emu.seed(stored_description("rep0"), Shape(0, 0))
        gone = emu.seed(stored_description("gone0"), Shape(0, 0))
        keys: dict[str, Any] = {"rep0": (Shape(1, 0), False, None)}
        desired = {"rep0": Shape(1, 0)}

        def run(server: Emu) -> dict[str, tuple[str, str | None]]:
            work.write(server.config(keys, wait_timeout=0.3, timeout=0.5))
            ran, report = work.apply(server)
            assert not ran.traceback and ran.exit_code in (0, 1), ran.output
            assert dishonest(emu, report, desired) == []
            assert unexplained_duplicates(emu, report, desired) == {}
            return {
                f"{r['address'].split('/', 1)[1]} {r['action']}": (r["outcome"], r["ref"])
                for r in report["results"]
            }

        first = run(emu)
        assert first["rep0 replace"][0] == "failed"
        assert first["gone0 delete"] == ("skipped", emu.ref(gone))
        assert duplicates(emu) == {"rep0": 2}

        keys["new0"] = (Shape(0, 0), False, None)
        desired["new0"] = Shape(0, 0)
        with emu.served(knobs("500=1", routes=("create",))) as creates_fail:
            second = run(creates_fail)
        assert second["new0 create"][0] == "failed"
        assert second["rep0 delete"] == ("done", emu.ref(old))
        assert second["gone0 delete"] == ("skipped", emu.ref(gone))
        assert duplicates(emu) == {}

        with emu.fault_free() as clean:
            third = run(clean)
            assert {v[0] for v in third.values()} == {"done"}
            assert converged_to(emu, desired) == []
            assert work.verify_plan(clean, "--detailed-exitcode").exit_code == 0


def test_duplicate_check_allows_only_an_old_key_the_report_names() -> None:
    with running("coveo") as emu:
        old = emu.seed(stored_description("rep0"), Shape(0, 0))
        new = emu.seed(stored_description("rep0"), Shape(1, 0))
        desired = {"rep0": Shape(1, 0)}
        failed = {
            "address": "coveo-prod/rep0",
            "action": "replace",
            "outcome": "failed",
            "ref": emu.ref(old),
            "detail": f"new key {emu.ref(new)} created and its value delivered, but removing "
            f"the old key {emu.ref(old)} failed (...); run apply again to finish",
        }
        skipped = {**failed, "action": "delete", "outcome": "skipped", "detail": "skipped"}
        assert unexplained_duplicates(emu, {"results": []}, desired) == {"rep0": 2}
        assert unexplained_duplicates(emu, {"results": [failed]}, desired) == {}
        assert unexplained_duplicates(emu, {"results": [skipped]}, desired) == {}
        assert unexplained_duplicates(emu, {"results": [{**skipped, "ref": None}]}, desired) == {
            "rep0": 2
        }
        # The report names the new key as the one left: the key kept is not the declared one.
        named_new = {**skipped, "ref": emu.ref(new)}
        assert unexplained_duplicates(emu, {"results": [named_new]}, desired) == {"rep0": 2}


def test_verification_plan_does_not_depend_on_fault_draws() -> None:
    """The last plan of a scenario goes through a fault-free server on the same emulator:
    with every request of the faulty server failing, it still reads the true state."""
    with running("algolia", knobs("500=1")) as emu, workdir() as work:
        emu.seed(stored_description("k0"), Shape(0, 0))
        work.write(emu.config(["k0"], timeout=0.5))
        faulty = work.plan(emu, "--detailed-exitcode")
        assert faulty.exit_code == 1 and "gave up after" in faulty.output
        assert work.verify_plan(emu, "--detailed-exitcode").exit_code == 0
        assert emu.server.counters.faults.get("500", 0) >= 5


def test_fault_routes_aim_every_draw_at_the_named_routes() -> None:
    from keystate.emulators.faults import FaultInjector

    injector = FaultInjector(knobs("500=1", routes=("delete",)))
    assert [injector.draw(r) for r in ("list", "add", "update", "get")] == [None] * 4
    assert injector.draw("delete") == "500"
    assert FaultInjector(knobs("500=1")).draw("list") == "500"  # no routes: every route


ROTATION_ROUTES = {"algolia": ("add", "update", "delete"), "coveo": ("create", "update", "delete")}
# Harsher than MIXED: enough that some runs end with failures and the next run finishes.
ROTATION_FAULTS = "500=0.15,503=0.1,timeout=0.1,reset=0.1,lost-response=0.2"


@pytest.mark.parametrize(
    ("provider", "overlap", "seed"),
    [(p, o, seed) for p in ("algolia", "coveo") for o in ("0", "7d") for seed in SEEDS],
)
def test_mixed_faults_during_rotations(
    provider: str, overlap: str, seed: int, figures: Any
) -> None:
    """Every fault kind at once on the routes a rotation uses (create the successor,
    mark or remove the predecessor, finalise the successor); apply until it exits 0:
    0 duplicates, 0 lost values, every predecessor retired exactly once."""
    knob = knobs(ROTATION_FAULTS, seed=seed, routes=ROTATION_ROUTES[provider], timeout_hold_s=1.0)
    with running(provider, knob, propagation_delay_ms=100) as emu, workdir() as work:
        desired = {f"rot{i}": Shape(0, 0) for i in range(2 * KEYS)}
        for name, shape in desired.items():
            seed_old(emu, name, shape)
        time.sleep(0.1)
        before = {emu.ident(k) for k in emu.stored()}
        keys = {n: (shape, False, None) for n, shape in desired.items()}
        work.write(with_rotation(emu.config(keys, wait_timeout=2, timeout=0.5), overlap))
        runs = converge(emu, work, desired, figures)
        lost = lost_values(emu, work, before)
        leaked = leaks(work.outputs, emu.values() | {d["value"] for d in work.delivered()})
        problems = rotated(emu, desired, before, overlap != "0")
        figures.add("faults", rotation_scenarios=1, lost_values=len(lost), leaks=len(leaked))
        assert problems == [] and lost == [] and leaked == [], (problems, lost, leaked)
        time.sleep(0.1)
        assert work.verify_plan(emu, "--detailed-exitcode").exit_code == 0
        assert sum(emu.server.counters.faults.values()) > 0
        figures.add("faults", **{f"converged_in_{runs}": 1})
