"""The diff on in-memory keys: identity, set semantics, defaults, tolerance, adoption,
duplicates, protection and removal policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from keystate.contract import AccountConfig, FieldSpec, Kind, ProviderSchema, Removal, Role
from keystate.diff import diff_account
from keystate.errors import PlanError
from keystate.kinds import canonical_query
from keystate.model import Action, KeySpec, LiveKey, Marker, Selector, parse_description
from keystate.plan import Reason
from keystate.providers.algolia.schema import SCHEMA as ALGOLIA
from keystate.secrets import Secret, fingerprint

ACCOUNT = AccountConfig(name="acct", provider="algolia", settings={})
NOW = datetime(2030, 1, 1, tzinfo=UTC)
FAKE = ProviderSchema(
    name="fake",
    title="Fake",
    settings=(),
    fields=(
        FieldSpec("grants", Kind.STRING_SET, "grants", default=frozenset()),
        FieldSpec(
            "expires_at",
            Kind.TIMESTAMP,
            "x",
            create_only=True,
            tolerance=timedelta(seconds=60),
            role=Role.EXPIRY,
        ),
    ),
    selector_kinds=("id",),
    removal_policies=(Removal.DELETE, Removal.DISABLE),
)


def spec(name: str, **fields: object) -> KeySpec:
    description = str(fields.pop("description", ""))
    protect = bool(fields.pop("protect", False))
    adopt = fields.pop("adopt", None)
    values = ALGOLIA.defaults()
    values.update(fields)  # type: ignore[arg-type]
    return KeySpec("acct", name, description, values, protect, adopt)  # type: ignore[arg-type]


def live(value: str, description: str, **fields: object) -> LiveKey:
    values = ALGOLIA.defaults()
    values.update(fields)  # type: ignore[arg-type]
    secret = Secret(value)
    return LiveKey(
        ref=f"fingerprint:{fingerprint(value)[:16]}",
        handle=secret,
        stored_description=description,
        fields=values,
        value=secret,
        fingerprint=fingerprint(value),
    )


def plan(
    desired: list[KeySpec],
    keys: list[LiveKey],
    owner: str | None = "team",
    account: AccountConfig = ACCOUNT,
    schema: ProviderSchema = ALGOLIA,
):  # type: ignore[no-untyped-def]
    return diff_account(account, schema, {s.name: s for s in desired}, keys, owner)


@pytest.mark.parametrize(
    ("stored", "user", "marker"),
    [
        ("Storefront keystate:team/web", "Storefront", Marker("web", "team")),
        ("keystate:web", "", Marker("web")),
        ("a b  keystate:t/w;protect", "a b", Marker("w", "t", protect=True)),
        ("no marker here", "no marker here", None),
        ("keystate:web extra", "keystate:web extra", None),
        ("xkeystate:web", "xkeystate:web", None),
        ("keystate:Web", "keystate:Web", None),
    ],
)
def test_marker_parsing(stored: str, user: str, marker: Marker | None) -> None:
    assert parse_description(stored) == (user, marker)
    if marker is not None:
        assert parse_description(marker.stored_description(user)) == (user, marker)


def test_sets_and_defaults_do_not_show_as_changes() -> None:
    desired = spec("web", acl=frozenset({"search", "browse"}), description="Web")
    current = live("v1", "Web keystate:team/web", acl=frozenset({"browse", "search"}))
    result = plan([desired], [current])
    assert result.changes == () and result.unchanged == 1


def test_expiry_within_tolerance_is_equal_beyond_is_a_change() -> None:
    at = NOW + timedelta(days=30)
    desired = spec("web", acl=frozenset({"search"}), expires_at=at)
    near = live(
        "v1", "keystate:team/web", acl=frozenset({"search"}), expires_at=at + timedelta(seconds=30)
    )
    far = live(
        "v1", "keystate:team/web", acl=frozenset({"search"}), expires_at=at + timedelta(minutes=5)
    )
    assert plan([desired], [near]).changes == ()
    (change,) = plan([desired], [far]).changes
    assert change.action is Action.UPDATE and change.changed_fields == ("expires_at",)


def test_query_parameters_compare_canonically() -> None:
    assert canonical_query("b=2&a=1") == canonical_query("a=1&b=2")
    assert canonical_query("filters=a%3Ab") == canonical_query("filters=a:b")
    assert canonical_query("q=a%26b") != canonical_query("q=a&b")


def test_field_changes_carry_member_detail() -> None:
    desired = spec("web", acl=frozenset({"search", "usage"}), query_parameters="a=1&c=3")
    current = live(
        "v1", "keystate:team/web", acl=frozenset({"search", "logs"}), query_parameters="a=2&b=1"
    )
    (change,) = plan([desired], [current]).changes
    acl = next(f for f in change.fields if f.name == "acl")
    assert acl.members == (("-", '"logs"'), ("+", '"usage"'))
    query = next(f for f in change.fields if f.name == "query_parameters")
    assert set(query.members) == {("~", 'a = "2" -> "1"'), ("-", 'b = "1"'), ("+", 'c = "3"')}


def test_set_members_leave_and_join_never_pair_up() -> None:
    """A set has no positions: a similar-looking member is another member, shown as
    one removed and one added (deepdiff's ignore_order pairing showed '~ a -> b')."""
    desired = spec("web", acl=frozenset({"search", "analytic", "x"}))
    current = live("v1", "keystate:team/web", acl=frozenset({"search", "analytics", "b"}))
    (change,) = plan([desired], [current]).changes
    (acl,) = change.fields
    assert acl.members == (
        ("+", '"analytic"'),
        ("-", '"analytics"'),
        ("-", '"b"'),
        ("+", '"x"'),
    )


def test_live_keys_are_sorted_into_managed_unmanaged_foreign_and_credential() -> None:
    keys = [
        live("m", "keystate:team/web", acl=frozenset({"search"})),
        live("u", "made by hand", acl=frozenset({"search"})),
        live("f", "keystate:other/web2", acl=frozenset({"search"})),
        live("n", "keystate:web3", acl=frozenset({"search"})),  # no owner: another owner
    ]
    admin = LiveKey("fingerprint:x", Secret("admin"), "keystate:team/gone", is_credential=True)
    result = plan([], [*keys, admin])
    assert [(c.action, c.name) for c in result.changes] == [(Action.DELETE, "web")]
    assert [k.stored_description for k in result.unmanaged] == ["made by hand"]
    assert result.foreign == 2 and result.managed == 1


def test_adopt_by_fingerprint_prefix() -> None:
    target = live("legacy-value", "legacy key", acl=frozenset({"search"}))
    desired = spec(
        "legacy",
        acl=frozenset({"search"}),
        adopt=Selector("fingerprint", fingerprint("legacy-value")[:12]),
    )
    result = plan([desired], [target])
    (change,) = result.changes
    assert change.action is Action.ADOPT and change.live is target
    assert change.changed_fields == ("description",)
    assert result.unmanaged == ()


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ([], "matches no live key"),
        (
            [live("managed", "keystate:team/other", acl=frozenset({"search"}))],
            "already managed as 'other'",
        ),
    ],
)
def test_adopt_errors(keys: list[LiveKey], message: str) -> None:
    selector = Selector("fingerprint", fingerprint("managed")[:12])
    with pytest.raises(PlanError, match=message):
        plan([spec("x", acl=frozenset({"search"}), adopt=selector)], keys)


def test_adopting_the_credential_is_refused() -> None:
    admin = LiveKey(
        "fingerprint:x", Secret("admin"), "", fingerprint=fingerprint("admin"), is_credential=True
    )
    selector = Selector("fingerprint", fingerprint("admin")[:12])
    result = plan([spec("x", acl=frozenset({"search"}), adopt=selector)], [admin])
    assert result.changes == ()
    assert "credential keystate runs with" in result.refusals[0]


def test_create_only_change_plans_a_replace_and_protect_refuses_it() -> None:
    at = NOW + timedelta(days=10)
    desired = KeySpec(
        "acct", "k", "", {"grants": frozenset({"a"}), "expires_at": at + timedelta(days=1)}
    )
    current = LiveKey(
        "id:1", "1", "keystate:team/k", {"grants": frozenset({"a"}), "expires_at": at}, id="1"
    )
    result = plan([desired], [current], schema=FAKE)
    (change,) = result.changes
    assert change.action is Action.REPLACE and change.forces_replacement == ("expires_at",)
    protected = LiveKey("id:1", "1", "keystate:team/k;protect", dict(current.fields), id="1")
    desired_p = KeySpec("acct", "k", "", desired.fields, protect=True)
    assert "can only change by replacing" in plan([desired_p], [protected], schema=FAKE).refusals[0]


def test_duplicates_from_an_interrupted_replace_are_cleaned_up() -> None:
    at = NOW + timedelta(days=10)
    desired = KeySpec("acct", "k", "", {"grants": frozenset({"a"}), "expires_at": at})
    old = LiveKey(
        "id:old",
        "old",
        "keystate:team/k",
        {"grants": frozenset({"a"}), "expires_at": at - timedelta(days=3)},
        id="old",
    )
    new = LiveKey("id:new", "new", "keystate:team/k", dict(desired.fields), id="new")
    result = plan([desired], [old, new], schema=FAKE)
    (change,) = result.changes
    assert change.action is Action.DELETE and change.live is old
    assert change.reason is Reason.LEFTOVER_OF_REPLACE


def test_replace_leftover_is_disabled_under_removal_disable() -> None:
    """The old key an interrupted replace left behind goes as the replace would have
    removed it: disabled, then ignored as retired; already disabled, left alone."""
    account = AccountConfig(name="acct", provider="fake", settings={}, removal=Removal.DISABLE)
    at = NOW + timedelta(days=10)
    desired = KeySpec("acct", "k", "", {"grants": frozenset({"a"}), "expires_at": at})
    old_fields = {"grants": frozenset({"a"}), "expires_at": at - timedelta(days=3)}
    old = LiveKey("id:old", "old", "keystate:team/k", old_fields, id="old")
    new = LiveKey("id:new", "new", "keystate:team/k", dict(desired.fields), id="new")
    result = plan([desired], [old, new], account=account, schema=FAKE)
    (change,) = result.changes
    assert change.action is Action.DISABLE and change.live is old
    assert change.reason is Reason.LEFTOVER_OF_REPLACE
    # After the disable: one enabled key, one retired; nothing left to do.
    retired = LiveKey("id:old", "old", "keystate:team/k", old_fields, id="old", enabled=False)
    assert plan([desired], [retired, new], account=account, schema=FAKE).changes == ()
    # Next to a second enabled leftover, a disabled one needs nothing either.
    other = LiveKey("id:o2", "o2", "keystate:team/k", old_fields, id="o2")
    result = plan([desired], [retired, other, new], account=account, schema=FAKE)
    assert [(c.action, c.live.ref) for c in result.changes if c.live] == [(Action.DISABLE, "id:o2")]


def test_other_duplicates_are_an_error() -> None:
    a = live("a1", "keystate:team/web", acl=frozenset({"search"}))
    b = live("a2", "keystate:team/web", acl=frozenset({"search"}))
    with pytest.raises(PlanError, match="2 live keys carry the same marker"):
        plan([spec("web", acl=frozenset({"search"}))], [a, b])


def test_removal_disable_is_idempotent() -> None:
    account = AccountConfig(name="acct", provider="fake", settings={}, removal=Removal.DISABLE)
    enabled = LiveKey("id:1", "1", "keystate:team/k", {}, id="1")
    disabled = LiveKey("id:2", "2", "keystate:team/j", {}, id="2", enabled=False)
    result = plan([], [enabled, disabled], account=account, schema=FAKE)
    assert [(c.action, c.name) for c in result.changes] == [(Action.DISABLE, "k")]


def test_owner_namespacing() -> None:
    ours = live("v", "keystate:web", acl=frozenset({"search"}))
    assert plan([spec("web", acl=frozenset({"search"}))], [ours], owner=None).changes == ()
    result = plan([spec("web", acl=frozenset({"search"}))], [ours], owner="team")
    assert result.changes == () and "another owner's marker" in result.refusals[0]


def test_a_privilege_on_every_target_equals_one_without_a_target() -> None:
    from keystate.kinds import equal
    from keystate.model import Privilege
    from keystate.providers.coveo.schema import SCHEMA as COVEO

    privileges = next(f for f in COVEO.fields if f.name == "privileges")
    bare = Privilege("SEARCH_API", "EXECUTE_QUERY")
    everything = Privilege("SEARCH_API", "EXECUTE_QUERY", None, "*")
    source = Privilege("PLATFORM", "SOURCE", "EDIT", "mysource")
    # Coveo may echo a privilege sent without targetId as "*" (or the reverse): no diff,
    # so no replace (a new key value) on every run.
    assert equal(privileges, frozenset({bare, source}), frozenset({everything, source}))
    assert equal(privileges, frozenset({everything}), frozenset({bare}))
    # A specific target is still a different privilege.
    assert not equal(privileges, frozenset({bare}), frozenset({source}))
    other = Privilege("PLATFORM", "SOURCE", "EDIT", "another")
    assert not equal(privileges, frozenset({source}), frozenset({other}))
