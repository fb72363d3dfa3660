"""Coveo key fields and connection settings (``shared/providers/coveo-api.md`` §4–§7).

Two decisions shape this schema (see docs/configuration.md, "Coveo key fields"):

* ``privileges``, ``template`` and ``expires_at`` are **create-only**. Coveo's update
  schema has no privileges and no lifetime, and a template is a creation parameter, so
  a change to any of them can only be made by replacing the key (new value).
* Not declaring ``expires_at`` accepts the lifetime Coveo chooses (a system default may
  apply); a key made from a ``template`` takes its privileges from the template, so
  such a key declares none (``override_template_privileges`` adds target ids).
* ``expires_at`` travels as whole days (a date-based Period), so it is compared within
  a day; ``display_name`` defaults to the key's name and is diffed like any field.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Final

from keystate.contract import (
    SANDBOX_SETTING,
    Breadth,
    FieldSpec,
    Kind,
    LintRule,
    ProviderSchema,
    RecordShape,
    Removal,
    Role,
    SettingKind,
    SettingSpec,
)
from keystate.model import FieldValue, KeySpec, Privilege

REGIONS: Final = ("us", "eu", "au", "ca", "hipaa")
# Owners documented by Coveo (D159); newer products may add more, so an owner far from
# all of these is only a warning at validate time — the live catalogue decides at plan.
KNOWN_OWNERS: Final = ("USAGE_ANALYTICS", "COVEO_ML", "PLATFORM", "SEARCH_API")
TYPES: Final = ("CREATE", "VIEW", "EDIT")
_DOMAIN = re.compile(r"^[A-Z][A-Z0-9_]*$")


def _check_privileges(value: FieldValue) -> list[str]:
    problems: list[str] = []
    if not isinstance(value, frozenset):
        return problems
    for item in sorted((p for p in value if isinstance(p, Privilege)), key=Privilege.sort_key):
        if item.owner not in KNOWN_OWNERS:
            close = difflib.get_close_matches(item.owner, KNOWN_OWNERS, n=1, cutoff=0.7)
            if close or item.owner.upper() in KNOWN_OWNERS:
                fix = close[0] if close else item.owner.upper()
                problems.append(f"unknown owner {item.owner!r}; did you mean {fix!r}?")
        if not _DOMAIN.match(item.target_domain):
            problems.append(
                f"target_domain {item.target_domain!r} is not an upper-case identifier "
                "(e.g. EXECUTE_QUERY)"
            )
        if item.type is not None and item.type not in TYPES:
            close = difflib.get_close_matches(item.type.upper(), TYPES, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(f"type {item.type!r} must be CREATE, VIEW or EDIT, or absent{hint}")
        if item.target_id is not None and not item.target_id.strip():
            problems.append("target_id must not be empty (use '*' for every resource)")
    return problems


# What the JSON schema says of one declared privilege, beyond its shape.
PRIVILEGE_JSON_SCHEMA: Final = {
    "properties": {
        "target_domain": {"type": "string", "pattern": "^[A-Z][A-Z0-9_]*$"},
        "type": {"enum": list(TYPES)},
    }
}


def _every_target(value: FieldValue) -> FieldValue:
    """Privileges with ``target_id: "*"`` (every resource) written as no target id.

    Both mean "every resource in the domain" (coveo-api.md §4.7, §6), and whether Coveo
    echoes a privilege sent without ``targetId`` as ``"*"`` is not documented. Were the
    two compared as different, a create-only field would plan a replace — a new key
    value — on every run.
    """
    if not isinstance(value, frozenset):
        return value
    return frozenset(
        Privilege(p.owner, p.target_domain, p.type) if p.target_id == "*" else p
        for p in value
        if isinstance(p, Privilege)
    )


# Addresses Coveo can never see a request come from: it matches the public address of
# the caller (the OAS: "public IP addresses"), so an entry in these ranges never matches.
# Documentation ranges (203.0.113.0/24, 2001:db8::/32, ...) are allowed, for examples.
_NOT_PUBLIC: Final = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "224.0.0.0/4",
        "::/128",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    )
)


def _check_ips(value: FieldValue) -> list[str]:
    problems: list[str] = []
    if isinstance(value, frozenset):
        for item in sorted(str(v) for v in value):
            try:
                network = ipaddress.ip_network(item, strict=False)
            except ValueError:
                problems.append(f"{item!r} is not an IP address or CIDR block")
                continue
            inside = next(
                (n for n in _NOT_PUBLIC if n.version == network.version and network.overlaps(n)),
                None,
            )
            if inside is not None:
                problems.append(
                    f"{item!r} is not a public address ({inside} is private, loopback, "
                    "link-local or multicast): Coveo matches the public address a request "
                    "comes from, so this entry would never match"
                )
    return problems


def _key_rules(fields: Mapping[str, FieldValue]) -> list[tuple[str | None, str]]:
    template = fields.get("template")
    privileges = fields.get("privileges")
    if fields.get("override_template_privileges") and not template:
        return [
            (
                "override_template_privileges",
                "adds target ids to a template's privileges: declare the 'template' too, "
                "or declare the privileges under 'privileges'",
            )
        ]
    if template and privileges is not None:
        return [
            (
                "privileges",
                f"a key made from template {template!r} takes its privileges from the "
                "template; remove 'privileges' (or 'template')",
            )
        ]
    if not template and not privileges:
        return [(None, "declare 'privileges' (or a 'template' that provides them)")]
    return []


IMPERSONATING_TEMPLATES: Final = ("AuthenticatedSearch",)
IDENTITY_TYPES: Final = ("User", "Group", "VirtualGroup", "Unknown")
# Coveo's ImpersonatedUserModel (coveo-api.md §4.3).
IDENTITY: Final = RecordShape(
    fields=("name", "provider", "type"),
    required=("name", "provider"),
    defaults={"type": "User"},
    choices={"type": IDENTITY_TYPES},
)
# Statuses of a key that Coveo is about to disable, or disabled, for inactivity: a key
# declared enabled is kept alive with PUT .../activation/extend (coveo-api.md §7).
LAPSING_STATUSES: Final = ("SOON_TO_BE_DISABLED", "DISABLED_FOR_INACTIVITY")


def _privileges(spec: KeySpec) -> list[Privilege]:
    value = spec.fields.get("privileges")
    if not isinstance(value, frozenset):
        return []
    return sorted((p for p in value if isinstance(p, Privilege)), key=Privilege.sort_key)


def _edit_everything(spec: KeySpec, now: datetime) -> tuple[str, str] | None:
    wide = [str(p) for p in _privileges(spec) if p.type == "EDIT" and p.target_id == "*"]
    if wide:
        return "privileges", f"can EDIT every resource of {', '.join(wide)} (target_id: '*')"
    return None


def _impersonate_without_hub(spec: KeySpec, now: datetime) -> tuple[str, str] | None:
    impersonates = any(p.target_domain == "IMPERSONATE" for p in _privileges(spec))
    impersonates = impersonates or spec.fields.get("template") in IMPERSONATING_TEMPLATES
    if impersonates and not spec.fields.get("search_hub"):
        return "search_hub", "can impersonate users on any search hub; set search_hub:"
    return None


def _unknown_owner(spec: KeySpec, now: datetime) -> tuple[str, str] | None:
    unknown = sorted({p.owner for p in _privileges(spec)} - set(KNOWN_OWNERS))
    if unknown:
        return "privileges", (
            f"uses owner(s) {', '.join(unknown)} that keystate does not know; plan checks "
            "them against the organization"
        )
    return None


# For access reviews: domains that act for others, bypass permissions or run the org.
ADMIN_DOMAINS: Final = frozenset(
    {
        "ADMINISTRATE",
        "IMPERSONATE",
        "VIEW_ALL_CONTENT",
        "ORGANIZATION",
        "GROUP",
        "DELETE_USER_ANALYTICS_DATA",
        "SECURITY_PROVIDER",
        "SAML_IDENTITY_PROVIDER",
    }
)


def _breadth(privilege: object) -> Breadth:
    """ADMIN: an admin-like domain, or EDIT on every resource ('*'); WRITE: EDIT or
    CREATE, or a yes/no privilege that changes things; READ: everything else."""
    if not isinstance(privilege, Privilege):
        return Breadth.READ  # a template's name: its privileges are not listed
    if privilege.target_domain in ADMIN_DOMAINS and privilege.type in (None, "EDIT"):
        return Breadth.ADMIN
    if privilege.type == "EDIT" and privilege.target_id in ("*", None):
        return Breadth.ADMIN
    if privilege.type in ("EDIT", "CREATE") or privilege.target_domain == "AUTHENTICATION_EDITOR":
        return Breadth.WRITE
    return Breadth.READ


SCHEMA: Final = ProviderSchema(
    name="coveo",
    title="Coveo",
    settings=(
        SettingSpec(
            "organization_id",
            SettingKind.TEXT,
            "Coveo organization ID",
            required_unless=("sandbox",),
            pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
        ),
        SettingSpec("region", SettingKind.CHOICE, "us, eu, au, ca or hipaa", choices=REGIONS),
        SettingSpec(
            "token",
            SettingKind.SECRET,
            "Access token allowed to manage API keys (use ${VAR} or token_file)",
            required_unless=("sandbox",),
        ),
        SettingSpec(
            "base_url",
            SettingKind.URL,
            "Override the platform URL, e.g. an emulator: http://127.0.0.1:8200",
            conflicts=("sandbox",),
        ),
        SANDBOX_SETTING,
    ),
    fields=(
        FieldSpec(
            "privileges",
            Kind.PRIVILEGES,
            "Privileges: {owner, target_domain, type?, target_id?} (create-only)",
            default=None,
            create_only=True,
            any_when_unset=True,
            check=_check_privileges,
            role=Role.PERMISSIONS,
            implied_by="template",
            compare_as=_every_target,
            member_json_schema=PRIVILEGE_JSON_SCHEMA,
        ),
        FieldSpec(
            "allowed_ips",
            Kind.STRING_SET,
            "IP addresses or CIDR blocks allowed to use the key (empty: all)",
            default=frozenset(),
            check=_check_ips,
            example="203.0.113.0/24",
            role=Role.RESTRICTIONS,
        ),
        FieldSpec(
            "denied_ips",
            Kind.STRING_SET,
            "IP addresses or CIDR blocks denied (wins over allowed_ips)",
            default=frozenset(),
            check=_check_ips,
            role=Role.RESTRICTIONS,
        ),
        FieldSpec("enabled", Kind.BOOL, "Whether the key is active", default=True),
        FieldSpec(
            "search_hub",
            Kind.TEXT,
            "Search hub enforced on queries made with the key",
            default="",
            role=Role.SCOPE,
        ),
        FieldSpec(
            "template",
            Kind.TEXT,
            "API key template to create the key from, e.g. AuthenticatedSearch (create-only)",
            default="",
            create_only=True,
            role=Role.PERMISSIONS,
        ),
        FieldSpec(
            "display_name",
            Kind.TEXT,
            "The name Coveo shows for the key (default: the key's name in this file)",
            default=None,
            max_length=125,
            defaults_to_key_name=True,
        ),
        FieldSpec(
            "impersonation_allowed_user_ids",
            Kind.RECORDS,
            "Identities the key may impersonate: {name, provider, type?} "
            "(additionalConfiguration.search.impersonationRestrictions.allowedUserIds)",
            default=frozenset(),
            record=IDENTITY,
        ),
        FieldSpec(
            "api_key_query_authentication",
            Kind.RECORDS,
            "Security identities that authenticate the key's queries: {name, provider, type?} "
            "(additionalConfiguration.search.apiKeyQueryAuthentication)",
            default=frozenset(),
            record=IDENTITY,
        ),
        FieldSpec(
            "commerce_catalog_id",
            Kind.TEXT,
            "Commerce catalog forced on queries made with the key",
            default="",
        ),
        FieldSpec(
            "override_template_privileges",
            Kind.PRIVILEGES,
            "Privileges added to the template's, to add target ids (needs 'template')",
            default=frozenset(),
            create_only=True,
            check=_check_privileges,
            role=Role.PERMISSIONS,
            member_json_schema=PRIVILEGE_JSON_SCHEMA,
        ),
        FieldSpec(
            "expires_at",
            Kind.TIMESTAMP,
            "Expiry (RFC 3339), sent as a lifetime in whole days at creation, so compared "
            "within one day (create-only)",
            default=None,
            create_only=True,
            any_when_unset=True,
            # Coveo takes lifetimes in whole days (a date-based Period): the stored expiry
            # is the declared one rounded to the nearest day from the moment of creation.
            tolerance=timedelta(days=1),
            role=Role.EXPIRY,
        ),
    ),
    selector_kinds=("id",),
    removal_policies=(Removal.DELETE, Removal.DISABLE),
    description_max=1000,
    eventually_consistent=False,
    enabled_field="enabled",
    lapsing_statuses=LAPSING_STATUSES,
    renewed_status="ENABLED",
    key_rules=_key_rules,
    key_json_schema={
        "oneOf": [
            {"required": ["privileges"], "not": {"required": ["template"]}},
            {"required": ["template"], "not": {"required": ["privileges"]}},
        ]
    },
    breadth=_breadth,
    reports_last_use=True,
    lint_rules=(
        LintRule(
            "coveo-edit-all-targets", "EDIT privileges on every target ('*').", _edit_everything
        ),
        LintRule(
            "coveo-impersonate-without-search-hub",
            "IMPERSONATE (directly or through a template) without a search hub.",
            _impersonate_without_hub,
        ),
        LintRule(
            "coveo-unknown-owner", "A privilege owner keystate does not know.", _unknown_owner
        ),
    ),
)
