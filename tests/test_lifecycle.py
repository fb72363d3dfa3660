"""The key lifecycle without a provider (DESIGN §11): the marker grammar, planning of
rotations, retirements, renames and forgets, the mass-deletion rule, ``--only``, and
lifecycle changes through a saved plan and its stale check."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from keystate import planfile
from keystate.apply.stale import bind_live
from keystate.contract import AccountConfig, Removal
from keystate.diff import diff_account
from keystate.errors import PlanError, StalePlanError
from keystate.lifecycle import LifecycleOptions
from keystate.model import Action, KeySpec, LiveKey, Marker, Rotation, parse_description
from keystate.plan import Reason, new_plan
from keystate.providers import schema_for
from keystate.providers.algolia.schema import SCHEMA as ALGOLIA
from keystate.secrets import Secret, fingerprint

ACCOUNT = AccountConfig(name="acct", provider="algolia", settings={})
NOW = datetime(2030, 1, 1, tzinfo=UTC)
RETIRE = datetime(2030, 1, 4, 12, 0, 0, tzinfo=UTC)


def spec(name: str, **kw: object) -> KeySpec:
    fields = ALGOLIA.defaults()
    fields["acl"] = frozenset({"search"})
    return KeySpec("acct", name, "d", fields, **kw)  # type: ignore[arg-type]


def live(value: str, marker: Marker | None, created: datetime = NOW, **kw: object) -> LiveKey:
    fields = ALGOLIA.defaults()
    fields["acl"] = frozenset({"search"})
    secret = Secret(value)
    stored = marker.stored_description("d") if marker else "d"
    return LiveKey(
        ref=f"fingerprint:{fingerprint(value)[:16]}",
        handle=secret,
        stored_description=stored,
        fields=fields,
        value=secret,
        fingerprint=fingerprint(value),
        created_at=created,
        **kw,  # type: ignore[arg-type]
    )


def plan(desired: list[KeySpec], keys: list[LiveKey], account: AccountConfig = ACCOUNT, **kw):  # type: ignore[no-untyped-def]
    forget = kw.pop("forget", frozenset())
    options = LifecycleOptions(now=NOW, **kw)
    return diff_account(account, ALGOLIA, {s.name: s for s in desired}, keys, "t", options, forget)


# -- the marker ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "marker"),
    [
        ("keystate:t/web", Marker("web", "t")),
        ("keystate:web#0a1b2c3d", Marker("web", digest="0a1b2c3d")),
        ("keystate:t/web@retire=2030-01-04T12:00:00Z", Marker("web", "t", retire_at=RETIRE)),
        (
            "keystate:t/web#0a1b2c3d@retire=2030-01-04T12:00:00Z;protect;pending",
            Marker("web", "t", True, True, digest="0a1b2c3d", retire_at=RETIRE),
        ),
        ("keystate:web;protect", Marker("web", protect=True)),
    ],
)
def test_marker_grammar_parses_and_renders_every_part_in_order(text: str, marker: Marker) -> None:
    assert parse_description(f"user text {text}") == ("user text", marker)
    assert marker.render() == text


@pytest.mark.parametrize(
    "text",
    [
        "keystate:web@retire=2030-01-04",  # not seconds and Z
        "keystate:web;protect@retire=2030-01-04T12:00:00Z",  # out of order
        "keystate:web#0A1B2C3D",  # upper-case digest
    ],
)
def test_malformed_lifecycle_parts_are_no_marker(text: str) -> None:
    assert parse_description(text)[1] is None


# -- planning -------------------------------------------------------------------------------


def test_key_older_than_every_is_rotated_with_its_overlap() -> None:
    rotate = Rotation(timedelta(days=90), timedelta(days=7))
    old = live("a" * 32, Marker("web", "t"), created=NOW - timedelta(days=93))
    (change,) = plan([spec("web", rotate=rotate)], [old]).changes
    assert change.action is Action.ROTATE and change.reason is Reason.ROTATION_DUE
    assert change.overlap == timedelta(days=7) and change.live is old
    assert "age 93d >= every 90d" in change.detail
    young = live("a" * 32, Marker("web", "t"), created=NOW - timedelta(days=89))
    assert plan([spec("web", rotate=rotate)], [young]).changes == ()


def test_exposed_key_is_replaced_at_once_and_replace_asks_for_it() -> None:
    key = live("a" * 32, Marker("web", "t"), exposed=True, exposure="found in a public repo")
    (change,) = plan([spec("web")], [key]).changes
    assert (change.action, change.reason, change.overlap) == (
        Action.ROTATE,
        Reason.EXPOSED,
        timedelta(0),
    )
    assert "found in a public repo" in change.detail
    calm = live("a" * 32, Marker("web", "t"))
    (change,) = plan([spec("web")], [calm], replace=frozenset({"acct/web"})).changes
    assert change.reason is Reason.REPLACE_REQUESTED and change.overlap == timedelta(0)
    with pytest.raises(PlanError, match="--replace acct/nope"):
        plan([spec("web")], [calm], replace=frozenset({"acct/nope"}))


def test_retiring_key_is_no_duplicate_never_updated_and_retired_when_due() -> None:
    current = live("a" * 32, Marker("web", "t"))
    retiring = live("b" * 32, Marker("web", "t", retire_at=NOW + timedelta(days=3)))
    retiring = replace(retiring, fields={**retiring.fields, "acl": frozenset({"browse"})})
    diff = plan([spec("web")], [current, retiring])
    assert diff.changes == () and [r.ref for r in diff.retiring] == [retiring.ref]
    due = live("b" * 32, Marker("web", "t", retire_at=NOW - timedelta(seconds=1)))
    (change,) = plan([spec("web")], [current, due]).changes
    assert (change.action, change.reason, change.live) == (Action.RETIRE, Reason.RETIRE_DUE, due)
    # Under `removal: disable`, a retired key that is disabled already is left alone.
    disabling = replace(ACCOUNT, removal=Removal.DISABLE)
    assert len(plan([spec("web")], [current, due], disabling).changes) == 1
    off = replace(due, enabled=False)
    assert plan([spec("web")], [current, off], disabling).changes == ()


def test_rename_keeps_the_key_and_forget_releases_it() -> None:
    key = live("a" * 32, Marker("old", "t"))
    diff = plan([spec("new", previously=("old", "older"))], [key])
    (change,) = diff.changes
    assert (change.action, change.live, change.detail) == (Action.RENAME, key, "old")
    assert any("previously: older matches no managed key" in w for w in diff.warnings)
    (change,) = plan([], [key], forget=frozenset({"old", "gone"})).changes
    assert (change.action, change.live) == (Action.FORGET, key)
    warned = plan([], [key], forget=frozenset({"old", "gone"})).warnings
    assert any("acct/gone: forget: no managed key" in w for w in warned)


def test_mass_deletion_gate_counts_retirements_the_configuration_did_not_schedule() -> None:
    keys = [
        live(f"{i:032x}", Marker(f"k{i}", "t"), created=NOW - timedelta(days=99)) for i in range(4)
    ]
    due = [
        live(f"{i + 9:032x}", Marker(f"k{i}", "t", retire_at=NOW - timedelta(1))) for i in range(4)
    ]
    desired = [spec(f"k{i}") for i in range(4)]
    scheduled = new_plan([plan(desired, keys + due)], "t", [])
    assert {c.action for c in scheduled.changes} == {Action.RETIRE}
    assert scheduled.gate(force=False, max_delete_ratio=0.25, secrets_sink=True) == []
    now = Rotation(timedelta(days=90))  # no overlap: the old keys go in this apply
    rotating = new_plan([plan([replace(s, rotate=now) for s in desired], keys)], "t", [])
    (reason,) = rotating.gate(force=False, max_delete_ratio=0.25, secrets_sink=True)
    assert "removes 4 of 4" in reason
    assert rotating.gate(force=True, max_delete_ratio=0.25, secrets_sink=True) == []
    assert rotating.only_actions(frozenset({Action.RETIRE})).has_changes is False


def test_lifecycle_changes_survive_a_saved_plan_and_its_stale_check(tmp_path: Path) -> None:
    rotated = live("a" * 32, Marker("web", "t"), created=NOW - timedelta(days=99))
    renamed = live("b" * 32, Marker("old", "t"))
    due = live("c" * 32, Marker("web", "t", retire_at=NOW - timedelta(1)))
    desired = [
        spec("web", rotate=Rotation(timedelta(days=90), timedelta(days=7))),
        spec("new", previously=("old",), lifetime=timedelta(days=180)),
    ]
    made = new_plan([plan(desired, [rotated, renamed, due])], "t", [])
    assert {c.action for c in made.changes} == {Action.ROTATE, Action.RENAME, Action.RETIRE}
    path = tmp_path / "plan.json"
    planfile.save(made, path)
    document = planfile.load(path)
    back = planfile.to_plan(document, {"acct": ACCOUNT}, schema_for)
    by_action = {c.action: c for c in back.changes}
    assert by_action[Action.ROTATE].overlap == timedelta(days=7)
    assert by_action[Action.RENAME].desired is not None
    assert by_action[Action.RENAME].desired.lifetime == timedelta(days=180)
    bound = bind_live(back, {"acct": [rotated, renamed, due]})
    assert {c.live.ref for c in bound.changes if c.live} == {rotated.ref, renamed.ref, due.ref}
    # The retiring key lost its retire time meanwhile (someone rewrote it): stale.
    unmarked = live("c" * 32, Marker("web", "t"))
    with pytest.raises(StalePlanError):
        bind_live(back, {"acct": [rotated, renamed, unmarked]})
