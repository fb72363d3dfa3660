"""apply (keystate/apply/) against an in-memory provider (tests/fakes.py): phase order,
parallelism, skipped removals, ambiguous creates, the ``;pending`` two-phase create,
replaces, bounded waits and saved-plan staleness — without HTTP, in milliseconds."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from fakes import EPOCH, LAGGING_SCHEMA, NEVER, FakeProvider, Op, RecordingSink, as_provider

from keystate.apply import ApplyOptions, Outcome, Result, apply_plan, bind_live
from keystate.contract import AccountConfig, Removal
from keystate.diff import diff_account
from keystate.errors import StalePlanError
from keystate.model import Action, FieldValue, KeySpec, LiveKey, Selector
from keystate.plan import Plan, Reason, new_plan
from keystate.sinks.delivery import Deliveries
from keystate.sinks.spec import SecretsConfig

OWNER = "team"
SOON = EPOCH + timedelta(days=30)
LATER = EPOCH + timedelta(days=90)
TINY_WAIT = 0.05  # seconds: the bound of every wait on a lagging fake


def fields(*grants: str, expires_at: datetime = SOON) -> dict[str, FieldValue]:
    return {"grants": frozenset(grants), "expires_at": expires_at}


def key(
    name: str,
    *grants: str,
    expires_at: datetime = SOON,
    description: str = "",
    adopt: Selector | None = None,
) -> KeySpec:
    return KeySpec("acct", name, description, fields(*grants, expires_at=expires_at), adopt=adopt)


def marker(name: str, description: str = "", flags: str = "") -> str:
    text = f"keystate:{OWNER}/{name}{flags}"
    return f"{description} {text}" if description else text


def plan_for(fake: FakeProvider, desired: list[KeySpec]) -> Plan:
    diff = diff_account(
        fake.account, fake.schema, {s.name: s for s in desired}, fake.snapshot(), OWNER
    )
    return new_plan([diff], OWNER, [])


def apply(
    fake: FakeProvider,
    plan: Plan,
    parallelism: int = 4,
    wait_timeout: float | None = TINY_WAIT,
) -> tuple[dict[str, Result], RecordingSink]:
    sink = RecordingSink(fake.calls)
    deliveries = Deliveries(SecretsConfig(), OWNER, secrets_out=("memory", sink))
    options = ApplyOptions(
        parallelism=parallelism, wait_timeout=wait_timeout, deliveries=deliveries
    )
    results = asyncio.run(apply_plan(plan, {fake.account.name: as_provider(fake)}, options))
    by_name = {r.address.split("/", 1)[1]: r for r in results}
    assert len(by_name) == len(results), "one result per key"
    return by_name, sink


def undigested(description: str) -> str:
    """A stored description without the drift digest keystate writes into its marker."""
    return re.sub(r"#[0-9a-f]{8}(?=;|$)", "", description)


def outcomes(results: dict[str, Result]) -> dict[str, Outcome]:
    return {name: r.outcome for name, r in results.items()}


DISABLING = AccountConfig(name="acct", provider="fake", settings={}, removal=Removal.DISABLE)


# -- phases and parallelism -----------------------------------------------------------


def test_phases_run_in_order_within_an_account() -> None:
    fake = FakeProvider()
    by_hand = fake.seed("made by hand", fields("read"))
    fake.seed(marker("c"), fields("read"))
    fake.seed(marker("d"), fields("read"))
    fake.seed(marker("e"), fields("read"))
    assert by_hand.id is not None
    desired = [
        key("a1", "read"),
        key("a2", "read"),
        key("b", "read", adopt=Selector("id", by_hand.id)),
        key("c", "read", "write"),
        key("d", "read", expires_at=LATER),
    ]
    plan = plan_for(fake, desired)
    action = {c.name: c.action for c in plan.changes}
    assert action == {
        "a1": Action.CREATE,
        "a2": Action.CREATE,
        "b": Action.ADOPT,
        "c": Action.UPDATE,
        "d": Action.REPLACE,
        "e": Action.DELETE,
    }

    results, _ = apply(fake, plan, parallelism=4)

    assert set(outcomes(results).values()) == {Outcome.DONE}
    phase = {
        Action.CREATE: 0,
        Action.ADOPT: 1,
        Action.UPDATE: 2,
        Action.REPLACE: 3,
        Action.DELETE: 4,
        Action.DISABLE: 4,
    }
    order = [phase[action[name]] for _, name in fake.ops()]
    assert order == sorted(order), fake.ops()
    assert set(order) == {0, 1, 2, 3, 4}
    assert {k.marker.name for k in fake.snapshot() if k.marker} == {"a1", "a2", "b", "c", "d"}


@pytest.mark.parametrize("parallelism", [1, 3])
def test_requests_in_flight_never_exceed_parallelism(parallelism: int) -> None:
    fake = FakeProvider()
    for n in range(6):
        fake.seed(marker(f"old{n}"), fields("read"))
        fake.seed(marker(f"upd{n}"), fields("read"))
    desired = [key(f"new{n}", "read") for n in range(6)]
    desired += [key(f"upd{n}", "read", "write") for n in range(6)]

    results, _ = apply(fake, plan_for(fake, desired), parallelism=parallelism)

    assert len(results) == 18
    assert set(outcomes(results).values()) == {Outcome.DONE}
    # Reached, never exceeded: the bound is what limits the run.
    assert fake.max_in_flight == parallelism


# -- removals wait for new keys ---------------------------------------------------------


def leftover_of_replace(fake: FakeProvider, name: str) -> KeySpec:
    """Two live keys of ``name``: the declared one and the old key a replace left."""
    fake.seed(marker(name), fields("read", expires_at=SOON))
    fake.seed(marker(name), fields("read", expires_at=LATER))
    return key(name, "read", expires_at=LATER)


@pytest.mark.parametrize("failing", ["fresh", "renewed"])
def test_removals_are_skipped_when_a_create_or_replace_failed(failing: str) -> None:
    fake = FakeProvider(failing_creates={failing})
    fake.seed(marker("renewed"), fields("read"))
    fake.seed(marker("retired"), fields("read"))
    desired = [
        key("fresh", "read"),
        key("renewed", "read", expires_at=LATER),
        leftover_of_replace(fake, "twin"),
    ]
    plan = plan_for(fake, desired)
    twin_leftover = next(c for c in plan.changes if c.name == "twin")
    assert twin_leftover.reason is Reason.LEFTOVER_OF_REPLACE

    results, _ = apply(fake, plan)

    assert results[failing].outcome is Outcome.FAILED
    assert results["retired"].outcome is Outcome.SKIPPED
    assert "removals wait until every new key exists" in results["retired"].detail
    # The old key of an earlier replace does not wait: its successor exists.
    assert results["twin"].outcome is Outcome.DONE
    assert [k.fields["expires_at"] for k in fake.named("twin")] == [LATER]
    assert len(fake.named("retired")) == 1
    # A failed replace leaves the old key (and its users) alone.
    assert len(fake.named("renewed")) == 1


def test_removals_go_ahead_when_every_create_succeeded() -> None:
    fake = FakeProvider()
    fake.seed(marker("retired"), fields("read"))

    results, _ = apply(fake, plan_for(fake, [key("fresh", "read")]))

    assert outcomes(results) == {"fresh": Outcome.DONE, "retired": Outcome.DONE}
    assert fake.named("retired") == []


# -- ambiguous creates ----------------------------------------------------------------


def test_ambiguous_create_that_committed_is_found_not_created_twice() -> None:
    fake = FakeProvider(ambiguous_creates={1})

    results, sink = apply(fake, plan_for(fake, [key("web", "read")]))

    (web,) = fake.named("web")
    assert results["web"].outcome is Outcome.DONE and results["web"].ref == web.ref
    assert fake.creates == 1
    assert [(d.name, d.value) for d in sink.items] == [("web", fake.value_of(web))]
    assert web.marker is not None and not web.marker.pending


def test_ambiguous_create_on_a_masked_provider_deletes_the_orphan_and_creates_again() -> None:
    fake = FakeProvider(ambiguous_creates={1}, reveals_values=False)

    results, sink = apply(fake, plan_for(fake, [key("web", "read")]))

    orphan_ref = fake.calls[0].ref
    (web,) = fake.named("web")
    assert web.ref != orphan_ref
    assert fake.ops() == [
        ("create", "web"),
        ("delete", "web"),
        ("create", "web"),
        ("deliver", "web"),
        ("update", "web"),
    ]
    assert [c.ref for c in fake.calls if c.op == "delete"] == [orphan_ref]
    assert results["web"].outcome is Outcome.DONE and results["web"].ref == web.ref
    assert [d.value for d in sink.items] == [fake.value_of(web)]


def test_orphan_still_listed_after_its_delete_is_not_taken_for_a_rival_run() -> None:
    """On a lagging provider the orphan deleted after an ambiguous create may still be
    listed when the next try's key is checked against concurrent runs: it is our own
    removed key, not another apply's, and the new key must stay."""
    fake = FakeProvider(
        schema=LAGGING_SCHEMA,
        ambiguous_creates={1},
        reveals_values=False,
        lag={"delete": NEVER},
    )

    results, sink = apply(fake, plan_for(fake, [key("web", "read")]))

    assert results["web"].outcome is Outcome.DONE, results["web"].detail
    (web,) = fake.named("web")
    assert [d.value for d in sink.items] == [fake.value_of(web)]


def test_a_rival_run_is_found_even_when_the_first_listing_lags_behind_our_create() -> None:
    """Another apply created the same key after our plan was made. Our new key is not
    in the first listing (reads lag): the check must list again until it shows, find
    the older rival and withdraw ours — never two keys of one name."""
    fake = FakeProvider(schema=LAGGING_SCHEMA, lag={"create": 1})
    plan = plan_for(fake, [key("web", "read")])
    rival = fake.seed(marker("web"), fields("read"))  # the other run's, older than ours

    results, sink = apply(fake, plan, wait_timeout=2.0)

    assert results["web"].outcome is Outcome.FAILED
    assert f"another apply created this key at the same time ({rival.ref})" in (
        results["web"].detail
    )
    assert [k.ref for k in fake.named("web")] == [rival.ref]
    assert sink.items == []


# -- the ;pending two-phase create ------------------------------------------------------


def test_a_new_key_is_born_pending_delivered_then_finalised() -> None:
    fake = FakeProvider()

    results, sink = apply(fake, plan_for(fake, [key("web", "read", description="Web")]))

    writes = [(c.op, undigested(c.description)) for c in fake.calls]
    assert writes == [
        ("create", "Web keystate:team/web;pending"),
        ("deliver", ""),
        ("update", "Web keystate:team/web"),
    ]
    (web,) = fake.named("web")
    assert results["web"].outcome is Outcome.DONE
    assert [(d.address, d.id, d.value) for d in sink.items] == [
        ("acct/web", web.id, fake.value_of(web))
    ]


def test_an_interrupted_create_is_finished_value_delivered_before_the_marker() -> None:
    fake = FakeProvider()
    pending = fake.seed(marker("web", flags=";pending"), fields("read"))
    plan = plan_for(fake, [key("web", "read")])
    (change,) = plan.changes
    assert change.reason is Reason.FINISH_CREATE and change.delivers_value

    results, sink = apply(fake, plan)

    assert [(c.op, c.ref, undigested(c.description)) for c in fake.calls] == [
        ("deliver", pending.ref, ""),
        ("update", pending.ref, "keystate:team/web"),
    ]
    assert [d.value for d in sink.items] == [fake.value_of(pending)]
    assert results["web"].outcome is Outcome.DONE


# -- replace ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("account", "removal"),
    [(AccountConfig(name="acct", provider="fake", settings={}), "delete"), (DISABLING, "disable")],
)
def test_replace_delivers_the_new_key_before_removing_the_old(
    account: AccountConfig, removal: Op
) -> None:
    fake = FakeProvider(account=account)
    old = fake.seed(marker("web"), fields("read"))

    results, sink = apply(fake, plan_for(fake, [key("web", "read", expires_at=LATER)]))

    assert results["web"].outcome is Outcome.DONE
    new_ref = results["web"].ref
    assert new_ref is not None and new_ref != old.ref
    assert [(c.op, c.ref) for c in fake.calls] == [
        ("create", new_ref),
        ("deliver", new_ref),
        ("update", new_ref),
        (removal, old.ref),
    ]
    assert [d.id for d in sink.items] == [new_ref.removeprefix("id:")]
    left = {k.ref: k.enabled for k in fake.named("web")}
    assert left == ({new_ref: True} if removal == "delete" else {new_ref: True, old.ref: False})


def test_replacing_an_orphaned_pending_key_deletes_it_even_under_removal_disable() -> None:
    fake = FakeProvider(account=DISABLING, reveals_values=False)
    orphan = fake.seed(marker("web", flags=";pending"), fields("read"))
    plan = plan_for(fake, [key("web", "read")])
    (change,) = plan.changes
    assert change.action is Action.REPLACE and change.reason is Reason.ORPHANED_CREATE

    results, _ = apply(fake, plan)

    assert results["web"].outcome is Outcome.DONE
    assert fake.ops("delete", "disable") == [("delete", "web")]
    assert [k.ref for k in fake.named("web")] == [results["web"].ref]
    assert orphan.ref != results["web"].ref


def test_failed_removal_of_the_old_key_fails_the_replace_after_delivery() -> None:
    fake = FakeProvider(failing_removals={"web"})
    old = fake.seed(marker("web"), fields("read"))

    results, sink = apply(fake, plan_for(fake, [key("web", "read", expires_at=LATER)]))

    assert results["web"].outcome is Outcome.FAILED
    assert f"removing the old key {old.ref} failed" in results["web"].detail
    assert len(sink.items) == 1 and len(fake.named("web")) == 2


def test_a_create_only_field_stored_otherwise_fails_the_create() -> None:
    fake = FakeProvider(stores_instead={"expires_at": SOON})

    results, sink = apply(fake, plan_for(fake, [key("web", "read", expires_at=LATER)]))

    assert results["web"].outcome is Outcome.FAILED
    assert "stored expires_at" in results["web"].detail
    assert len(sink.items) == 1  # the value is delivered all the same


# -- eventual consistency ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "detail"),
    [
        ("create", "created, but not yet visible"),
        ("update", "updated, but not yet visible"),
        ("delete", "deleted, but still visible"),
    ],
)
def test_writes_never_visible_are_unconfirmed_within_the_wait_bound(op: Op, detail: str) -> None:
    fake = FakeProvider(schema=LAGGING_SCHEMA, lag={op: NEVER})
    fake.seed(marker("upd"), fields("read"))
    fake.seed(marker("gone"), fields("read"))
    plan = plan_for(fake, [key("new", "read"), key("upd", "read", "write")])
    subject = {"create": "new", "update": "upd", "delete": "gone"}[op]

    results, sink = apply(fake, plan, wait_timeout=TINY_WAIT)

    assert results[subject].outcome is Outcome.UNCONFIRMED
    assert results[subject].detail.startswith(detail)
    assert f"after {TINY_WAIT:g}s" in results[subject].detail
    others = {n: o for n, o in outcomes(results).items() if n != subject}
    assert set(others.values()) == {Outcome.DONE}
    assert [d.name for d in sink.items] == ["new"]  # delivered once, confirmed or not


def test_writes_that_become_visible_after_a_few_reads_are_done() -> None:
    fake = FakeProvider(schema=LAGGING_SCHEMA, lag={"create": 1, "update": 1, "delete": 1})
    fake.seed(marker("gone"), fields("read"))

    results, _ = apply(fake, plan_for(fake, [key("new", "read")]), wait_timeout=2.0)

    assert outcomes(results) == {"new": Outcome.DONE, "gone": Outcome.DONE}


# -- saved plans: bind_live ---------------------------------------------------------------


def saved_plan() -> tuple[FakeProvider, Plan, dict[str, LiveKey]]:
    fake = FakeProvider()
    by_hand = fake.seed("made by hand", fields("read"))
    keys = {
        "adopted": by_hand,
        "upd": fake.seed(marker("upd"), fields("read")),
        "gone": fake.seed(marker("gone"), fields("read")),
    }
    assert by_hand.id is not None
    desired = [
        key("new", "read"),
        key("upd", "read", "write"),
        key("adopted", "read", adopt=Selector("id", by_hand.id)),
    ]
    return fake, plan_for(fake, desired), keys


def test_bind_live_attaches_the_current_keys_when_nothing_changed() -> None:
    fake, plan, _ = saved_plan()
    live = fake.snapshot()

    bound = bind_live(plan, {"acct": live})

    by_ref = {k.ref: k for k in live}
    for change in bound.changes:
        assert change.live is (by_ref[change.live.ref] if change.live else None)
    (account,) = bound.accounts
    assert account.seen == frozenset(by_ref)


Edit = Callable[[dict[str, LiveKey], list[LiveKey]], list[LiveKey]]


def _changed(keys: dict[str, LiveKey], live: list[LiveKey]) -> list[LiveKey]:
    upd = keys["upd"]
    return [replace(upd, fields=fields("admin")) if k.ref == upd.ref else k for k in live]


def _deleted(keys: dict[str, LiveKey], live: list[LiveKey]) -> list[LiveKey]:
    return [k for k in live if k.ref != keys["gone"].ref]


def _created(keys: dict[str, LiveKey], live: list[LiveKey]) -> list[LiveKey]:
    return [*live, LiveKey("id:other", "other", marker("new"), fields("read"), id="other")]


def _claimed(keys: dict[str, LiveKey], live: list[LiveKey]) -> list[LiveKey]:
    adopted = keys["adopted"]
    claimed = replace(adopted, stored_description=marker("mine", "made by hand"))
    return [claimed if k.ref == adopted.ref else k for k in live]


def _unmarked(keys: dict[str, LiveKey], live: list[LiveKey]) -> list[LiveKey]:
    upd = keys["upd"]
    return [replace(upd, stored_description="") if k.ref == upd.ref else k for k in live]


@pytest.mark.parametrize(
    ("edit", "stale"),
    [
        (_changed, "acct/upd changed"),
        (_deleted, "acct/gone (id:k3) was deleted"),
        (_created, "acct/new was created"),
        (_claimed, "acct/adopted (id:k1) came under management"),
        (_unmarked, "acct/upd (id:k2) lost its ownership marker"),
    ],
)
def test_bind_live_refuses_a_plan_whose_keys_moved(edit: Edit, stale: str) -> None:
    fake, plan, keys = saved_plan()
    live = edit(keys, fake.snapshot())

    with pytest.raises(StalePlanError) as caught:
        bind_live(plan, {"acct": live})

    assert caught.value.reasons == (
        f"plan is stale: {stale} since the plan was made; run plan again",
    )
