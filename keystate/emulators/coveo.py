"""A faithful local emulator of Coveo's API-key endpoints (coveo-api.md §2, §10).

:class:`CoveoEmulator` is an :class:`~keystate.emulators.http.EmulatorApp`, served over
HTTP (``keystate emulator coveo``) or in-process (the sandbox). Under
``/rest/organizations/{organizationId}``: ``/apikeys`` (list with ``?status=``, create
with ``?apiKeyTemplateId=``), ``/apikeys/{id}`` (get, PUT update, delete),
``/apikeys/{id}/activate|disable|activation/extend|duplicate``, the bulk
``/apikeys/delete/bulk`` (POST), ``/apikeys/activate/bulk`` and ``/apikeys/disable/bulk``
(PUT), ``/templates/apikeys[/{id}|/privileges/eligibility]`` and
``/privileges/apikeys?filter=ALL|CUSTOM``.

Choices where the sources disagree or are silent (all in docs/emulators.md):

* 201 for create/duplicate, 204 with an empty body for writes; ``X-Request-ID`` always.
* Values are ``xx`` + a UUID, shown in full only by create/duplicate; reads mask them
  as ``xx*****`` + the last 4 characters. Ids are 26 lowercase base-36 characters.
* Dates are epoch milliseconds. Expired keys stay listed, with status ``EXPIRED``.
* ``PUT`` takes the whole update model (display name, description, IPs, additional
  configuration, edit groups): what it leaves out is reset; privileges, ``enabled`` and
  lifetimes in it are ignored, so a privilege change needs a new key (§9).
* Lifetimes are ``java.time.Period`` values (``P14D``, ``P1Y3M14D``): ``PT…S`` is 400.
* Statuses beyond enabled/disabled/expired (inactivity, exposure) come from the state
  file (``lifecycle``, ``exposure_report``); ``activation/extend`` clears inactivity.
* A custom key (no template) may only hold privileges of the catalogue's custom subset:
  others are 412; an owner/domain/type not in the catalogue at all is 400.
* The organization's token may do anything. An API key used as the bearer needs each
  route's OAS ``x-required-privilege`` (:data:`REQUIRED_PRIVILEGE`; ``EDIT`` on the key
  the path names, or on ``*``), held by the key in the state file; the ``API_KEY``
  routes are refused to every API key (docs: "an API key can't ... view or edit other
  API keys") unless ``allow_api_key_bearer`` is on. A denial is 401 (or 403, see
  ``missing_privilege_status``) naming the privilege.
* A request whose ``Host`` is another region's platform host gets 400 ``INVALID_REQUEST``.
"""

from __future__ import annotations

import copy
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, unquote

from keystate.emulators import _coveo_wire as wire
from keystate.emulators._coveo_state import OrgState, StoredApiKey
from keystate.emulators._coveo_wire import AWS_REGIONS, CoveoError, response
from keystate.emulators._statefile import StateStore
from keystate.emulators.http import EmuRequest, EmuResponse

__all__ = ["REGIONS", "REQUIRED_PRIVILEGE", "ROUTE_NAMES", "CoveoEmulator"]

REGIONS: Final = ("us", "eu", "au", "ca", "hipaa")
ROUTE_NAMES: Final = (
    "list",
    "create",
    "get",
    "update",
    "delete",
    "activate",
    "disable",
    "extend",
    "duplicate",
    "bulk-delete",
    "bulk-activate",
    "bulk-disable",
    "templates",
    "template",
    "eligibility",
    "privileges",
    "unknown",
)
_HOST_REGION: Final = {
    "platform.cloud.coveo.com": "us",
    "platform-eu.cloud.coveo.com": "eu",
    "platform-au.cloud.coveo.com": "au",
    "platform-ca.cloud.coveo.com": "ca",
    "platformhipaa.cloud.coveo.com": "hipaa",
}
# The privilege each route needs: the OAS ``x-required-privilege`` of its operation, as
# (owner, targetDomain, type, targetId); ``{id}`` is the key the path names (each id of
# the body for the bulk routes).
_KEY_VIEW: Final = ("PLATFORM", "API_KEY", "VIEW", "*")
_KEY_CREATE: Final = ("PLATFORM", "API_KEY", "CREATE", "*")
_KEY_EDIT: Final = ("PLATFORM", "API_KEY", "EDIT", "{id}")
REQUIRED_PRIVILEGE: Final[dict[str, tuple[str, str, str, str]]] = {
    "list": _KEY_VIEW,
    "get": _KEY_VIEW,
    "create": _KEY_CREATE,
    "duplicate": _KEY_CREATE,
    "update": _KEY_EDIT,
    "delete": _KEY_EDIT,
    "activate": _KEY_EDIT,
    "disable": _KEY_EDIT,
    "extend": _KEY_EDIT,
    "bulk-delete": _KEY_EDIT,
    "bulk-activate": _KEY_EDIT,
    "bulk-disable": _KEY_EDIT,
    "templates": _KEY_CREATE,
    "template": _KEY_CREATE,
    "eligibility": _KEY_CREATE,
    "privileges": ("PLATFORM", "ORGANIZATION", "VIEW", "*"),
}


def _route(request: EmuRequest) -> tuple[str, str, str]:
    """(route name, organization id, key or template id)."""
    parts = [unquote(p) for p in request.path.split("/")]
    if parts[:3] != ["", "rest", "organizations"] or len(parts) < 5:
        return "unknown", "", ""
    org, rest, method = parts[3], parts[4:], request.method
    table: dict[tuple[str, ...], dict[str, str]] = {
        ("apikeys",): {"GET": "list", "POST": "create"},
        ("apikeys", "delete", "bulk"): {"POST": "bulk-delete"},
        ("apikeys", "activate", "bulk"): {"PUT": "bulk-activate"},
        ("apikeys", "disable", "bulk"): {"PUT": "bulk-disable"},
        ("templates", "apikeys"): {"GET": "templates"},
        ("templates", "apikeys", "privileges", "eligibility"): {"GET": "eligibility"},
        ("privileges", "apikeys"): {"GET": "privileges"},
    }
    fixed = table.get(tuple(rest))
    if fixed is not None:
        return fixed.get(method, "unknown"), org, ""
    if len(rest) >= 2 and rest[0] == "apikeys" and rest[1]:
        tail = tuple(rest[2:])
        by_tail = {
            (): {"GET": "get", "PUT": "update", "DELETE": "delete"},
            ("activate",): {"PUT": "activate"},
            ("disable",): {"PUT": "disable"},
            ("activation", "extend"): {"PUT": "extend"},
            ("duplicate",): {"PUT": "duplicate"},
        }.get(tail, {})
        return by_tail.get(method, "unknown"), org, rest[1]
    if len(rest) == 3 and rest[:2] == ["templates", "apikeys"] and method == "GET":
        return "template", org, rest[2]
    return "unknown", org, ""


class CoveoEmulator:
    """Coveo's API-key endpoints for one organization (see the module docstring)."""

    def __init__(
        self,
        state_path: Path | None = None,
        *,
        organization_id: str | None = None,
        token: str | None = None,
        region: str | None = None,
        propagation_delay_ms: float = 0,
        clock: Callable[[], float] = time.time,
        allow_api_key_bearer: bool = False,
        missing_privilege_status: int = 401,
        default_lifetime: str | None = None,
    ) -> None:
        if region is not None and region not in REGIONS:
            raise ValueError(f"region must be one of {', '.join(REGIONS)}, not {region!r}")
        if missing_privilege_status not in (401, 403):
            raise ValueError("missing_privilege_status must be 401 or 403")
        if default_lifetime:
            wire.period_ms(default_lifetime, int(clock() * 1000), "default_lifetime")
        self._default_lifetime = default_lifetime
        defaults = OrgState(
            organization_id=organization_id or "acme" + secrets.token_hex(4),
            token=token or f"x{secrets.token_hex(16)}",
            region=region or "us",
        )
        overrides = {
            k: v
            for k, v in (("organization_id", organization_id), ("token", token), ("region", region))
            if v
        }
        self._store = StateStore(
            state_path, lambda: copy.deepcopy(defaults), OrgState.from_json, overrides
        )
        self._lock = threading.RLock()
        self._delay_ms = int(propagation_delay_ms)
        self._clock = clock
        self._allow_keys = allow_api_key_bearer
        self._missing_status = missing_privilege_status

    @property
    def organization_id(self) -> str:
        with self._lock:
            return self._store.read().organization_id

    @property
    def token(self) -> str:
        with self._lock:
            return self._store.read().token

    @property
    def region(self) -> str:
        with self._lock:
            return self._store.read().region

    def __repr__(self) -> str:  # never show the token
        return f"<CoveoEmulator organization={self.organization_id!r}>"

    def persist(self) -> None:
        """Write the state file now if it does not exist (see AlgoliaEmulator.persist)."""
        with self._lock:
            self._store.write(lambda _state: None)

    def snapshot(self) -> list[dict[str, Any]]:
        """The primary's stored keys, full values included, deep-copied."""
        with self._lock:
            return [k.to_json() for k in self._store.read().keys.values()]

    # -- EmulatorApp ------------------------------------------------------------------
    def route_name(self, request: EmuRequest) -> str:
        return _route(request)[0]

    def fault_response(self, status: int, retry_after: float | None) -> EmuResponse:
        name = {429: "too-many-requests", 503: "unavailable"}.get(status, "server-error")
        after = None if retry_after is None else f"{retry_after:g}"
        return wire.error(CoveoError(name, status), after)

    def handle(self, request: EmuRequest) -> EmuResponse:
        route, org, ident = _route(request)
        try:
            if route == "unknown":
                raise CoveoError("unknown-uri")
            with self._lock:
                now_ms = int(self._clock() * 1000)
                state = self._store.read()
                self._check_region(request, state)
                self._authorize(request, (route, org, ident), state, now_ms)
                return self._dispatch(route, ident, request, now_ms)
        except CoveoError as exc:
            return wire.error(exc)

    # -- checks -----------------------------------------------------------------------
    def _check_region(self, request: EmuRequest, state: OrgState) -> None:
        host = request.headers.get("host", "").split(":")[0].lower()
        asked = _HOST_REGION.get(host)
        if asked is not None and asked != state.region:
            raise CoveoError(
                "wrong-region",
                org=state.organization_id,
                current=AWS_REGIONS[asked],
                allowed=AWS_REGIONS[state.region],
            )

    def _authorize(
        self, request: EmuRequest, where: tuple[str, str, str], state: OrgState, now_ms: int
    ) -> None:
        """The organization's token may do anything in its organization; an API key used
        as the bearer needs the route's privilege (REQUIRED_PRIVILEGE), and the
        ``API_KEY`` routes only when ``allow_api_key_bearer`` is on."""
        route, org, ident = where
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if token and hmac.compare_digest(token.encode(), state.token.encode()):
            if org != state.organization_id:
                raise CoveoError("other-organization", org=org)
            return
        key = next((k for k in state.visible_all(now_ms) if token and k.value == token), None)
        if key is None or key.expired(now_ms) or not key.enabled:
            raise CoveoError("invalid-token")
        if org != state.organization_id:
            raise CoveoError("other-organization", org=org)
        owner, domain, kind, target = REQUIRED_PRIVILEGE[route]
        if domain == "API_KEY" and not self._allow_keys:
            raise CoveoError("api-key-bearer", self._missing_status)
        targets = [target]
        if target == "{id}":
            targets = _bulk_ids(request.body) if route.startswith("bulk-") else [ident]
        for one in targets:
            if not _holds(key.privileges, owner, domain, kind, one):
                needed = "/".join((owner, domain, kind)) + ("" if one == "*" else f" on {one}")
                raise CoveoError("missing-privilege", self._missing_status, privilege=needed)

    # -- routes -----------------------------------------------------------------------
    def _dispatch(self, route: str, ident: str, request: EmuRequest, now_ms: int) -> EmuResponse:
        query = {k: v[0] for k, v in parse_qs(request.query).items()}
        state = self._store.read()
        if route == "list":
            return self._list(state, query.get("status"), now_ms)
        if route == "get":
            key = self._visible(state, ident, now_ms)
            return response(
                200, wire.render_key(key, state.organization_id, now_ms, full_value=False)
            )
        if route == "privileges":
            return response(200, self._privileges(state, query.get("filter", "ALL")))
        if route == "eligibility":
            return response(200, self._eligibility(state, self._caller(request, state, now_ms)))
        if route in ("templates", "template"):
            return response(200, self._templates(state, route, ident))
        if route == "create":
            body = wire.parse_body(request.body)
            return self._store.write(
                lambda s: self._create(s, body, query.get("apiKeyTemplateId"), now_ms)
            )
        if route == "duplicate":
            body = wire.parse_body(request.body)
            return self._store.write(lambda s: self._duplicate(s, ident, body, now_ms))
        if route.startswith("bulk-"):
            ids = wire.parse_body(request.body, list)
            return self._store.write(lambda s: self._bulk(s, route[5:], ids, now_ms))
        body = wire.parse_body(request.body) if route == "update" else {}
        return self._store.write(lambda s: self._change(s, route, ident, body, now_ms))

    def _visible(self, state: OrgState, ident: str, now_ms: int) -> StoredApiKey:
        key = state.visible(ident, now_ms)
        if key is None:
            raise CoveoError("key-not-found", id=ident)
        return key

    def _list(self, state: OrgState, status: str | None, now_ms: int) -> EmuResponse:
        active = {"ENABLED", "SOON_TO_BE_EXPIRED", "SOON_TO_BE_DISABLED"}
        groups: dict[str, Callable[[StoredApiKey], bool]] = {
            "ACTIVE": lambda k: k.status(now_ms) in active,
            "DEACTIVATED": lambda k: k.status(now_ms) not in active,
            "SOON_TO_BE_EXPIRED": lambda k: k.status(now_ms) == "SOON_TO_BE_EXPIRED",
            "SOON_TO_BE_DISABLED": lambda k: k.status(now_ms) == "SOON_TO_BE_DISABLED",
            "WITH_WARNING": lambda k: (
                k.status(now_ms) in {"SOON_TO_BE_EXPIRED", "SOON_TO_BE_DISABLED"}
                or (k.exposure_report is not None and k.status(now_ms) in active)
            ),
            "ACTIVE_AND_EXPOSED": lambda k: (
                k.exposure_report is not None and k.status(now_ms) in active
            ),
            "ALL_EXPOSED": lambda k: k.exposure_report is not None,
        }
        if status is not None and status not in groups:
            raise CoveoError("bad-body", detail=f"Unknown status filter '{status}'.")
        keys = state.visible_all(now_ms)
        if status is not None:
            keys = [k for k in keys if groups[status](k)]
        org = state.organization_id
        return response(200, [wire.render_key(k, org, now_ms, full_value=False) for k in keys])

    def _privileges(self, state: OrgState, kind: str) -> list[dict[str, Any]]:
        if kind not in ("ALL", "CUSTOM"):
            raise CoveoError("bad-body", detail=f"Unknown privilege filter '{kind}'.")
        out = []
        for item in state.catalogue:
            if kind == "CUSTOM" and not item.get("custom", True):
                continue
            entry = {
                "owner": item["owner"],
                "targetDomain": item["targetDomain"],
                "targetId": "*",
                "level": "GLOBAL",
            }
            if item.get("type"):
                entry["type"] = item["type"]
            out.append(entry)
        return out

    def _templates(self, state: OrgState, route: str, ident: str) -> Any:
        def model(template_id: str, t: dict[str, Any]) -> dict[str, Any]:
            return {
                "id": template_id,
                "enabled": True,
                "allowedIps": [],
                "deniedIps": [],
                "creationType": "MANUAL",
                "creationSource": "API",
                **{k: v for k, v in t.items()},
            }

        if route == "templates":
            return [model(i, t) for i, t in state.templates.items()]
        if ident not in state.templates:
            raise CoveoError("unknown-template", id=ident)
        return model(ident, state.templates[ident])

    def _caller(self, request: EmuRequest, state: OrgState, now_ms: int) -> StoredApiKey | None:
        """The API key making the request, or None for the organization's token."""
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        return next((k for k in state.visible_all(now_ms) if token and k.value == token), None)

    def _eligibility(self, state: OrgState, caller: StoredApiKey | None) -> list[dict[str, Any]]:
        """Whether the caller may generate keys from each template: it must hold every
        privilege the template grants (the organization's token holds all of them)."""
        held = (
            None
            if caller is None
            else {(p["owner"], p["targetDomain"], p.get("type")) for p in caller.privileges}
        )
        out = []
        for template_id, template in state.templates.items():
            missing = [
                p
                for p in template.get("privileges", [])
                if held is not None and (p["owner"], p["targetDomain"], p.get("type")) not in held
            ]
            out.append(
                {"id": template_id, "missingPrivileges": missing, "canGenerate": not missing}
            )
        return out

    # -- writes -----------------------------------------------------------------------
    def _check_privileges(
        self, state: OrgState, privileges: list[dict[str, Any]], custom: bool
    ) -> None:
        catalogue = {
            (c["owner"], c["targetDomain"], c.get("type")): c.get("custom", True)
            for c in state.catalogue
        }
        for p in privileges:
            name = "/".join(x for x in (p["owner"], p["targetDomain"], p.get("type")) if x)
            allowed = catalogue.get((p["owner"], p["targetDomain"], p.get("type")))
            if allowed is None:
                raise CoveoError("unknown-privilege", privilege=name, org=state.organization_id)
            if custom and not allowed:
                raise CoveoError("custom-forbidden", privilege=name)

    def _lifetime(
        self, body: dict[str, Any], template: dict[str, Any] | None, now_ms: int
    ) -> int | None:
        lifetime = body.get("lifetimeDuration")
        ms = wire.period_ms(lifetime, now_ms) if lifetime is not None else None
        cap = template.get("enforcedLifetimePeriod") if template else None
        if cap:
            most = wire.period_ms(cap, now_ms, "enforcedLifetimePeriod")
            if ms is not None and ms > most:
                raise CoveoError("lifetime-too-long", lifetime=str(lifetime), maximum=str(cap))
            ms = ms or most
        if ms is None and template is None and self._default_lifetime:
            ms = wire.period_ms(self._default_lifetime, now_ms, "default_lifetime")
        return ms

    def _create(
        self, state: OrgState, body: dict[str, Any], template_id: str | None, now_ms: int
    ) -> EmuResponse:
        state.settle(now_ms)
        template = None
        if template_id:
            template = state.templates.get(template_id)
            if template is None:
                raise CoveoError("unknown-template", id=template_id)
        name = wire.text(body, "displayName", 125)
        if not name and template is None:
            raise CoveoError("bad-body", detail="'displayName' is required for a custom API key.")
        if template is not None:
            privileges = copy.deepcopy(template["privileges"]) + (
                wire.privileges(body, "overrideTemplatePrivileges") or []
            )
        else:
            privileges = wire.privileges(body, "privileges") or []
        self._check_privileges(state, privileges, custom=template is None)
        lifetime = self._lifetime(body, template, now_ms)
        key = StoredApiKey(
            id=wire.new_id(),
            value=wire.new_value(),
            display_name=name or (template or {}).get("displayName", ""),
            description=wire.text(body, "description", 1000) or "",
            privileges=privileges,
            allowed_ips=_ips_or_template(body, "allowedIps", template),
            denied_ips=_ips_or_template(body, "deniedIps", template),
            additional_configuration=wire.additional_configuration(body) or {},
            enabled=body.get("enabled", True) is not False,
            created_ms=now_ms,
            expiration_ms=now_ms + lifetime if lifetime is not None else None,
            template_id=template_id or None,
            privacy_level=(template or {}).get("privacyLevel", "PRIVATE"),
            rotation_enabled=body.get("rotationEnabled") is True,
        )
        state.keys[key.id] = key
        state.record(key.id, None, now_ms, self._delay_ms)
        return response(201, wire.render_key(key, state.organization_id, now_ms, full_value=True))

    def _duplicate(
        self, state: OrgState, ident: str, body: dict[str, Any], now_ms: int
    ) -> EmuResponse:
        state.settle(now_ms)
        source = state.keys.get(ident)
        if source is None:
            raise CoveoError("key-not-found", id=ident)
        lifetime = self._lifetime(body, None, now_ms)
        key = copy.deepcopy(source)
        key.id, key.value, key.created_ms = wire.new_id(), wire.new_value(), now_ms
        key.display_name = wire.text(body, "displayName", 1000) or source.display_name
        key.description = wire.text(body, "description", 1000) or source.description
        key.expiration_ms = now_ms + lifetime if lifetime is not None else None
        key.enabled, key.disabled_ms, key.activation_ms = True, None, None
        key.lifecycle, key.exposure_report, key.last_used_ms = None, None, None
        state.keys[key.id] = key
        state.record(key.id, None, now_ms, self._delay_ms)
        return response(201, wire.render_key(key, state.organization_id, now_ms, full_value=True))

    def _change(
        self, state: OrgState, route: str, ident: str, body: dict[str, Any], now_ms: int
    ) -> EmuResponse:
        state.settle(now_ms)
        current = state.keys.get(ident)
        if current is None:
            raise CoveoError("key-not-found", id=ident)
        before = copy.deepcopy(current)
        if route == "delete":
            del state.keys[ident]
        elif route == "update":
            _apply_update(current, body)
        elif route == "activate":
            if current.expired(now_ms):
                raise CoveoError("activate-expired", id=ident)
            # Re-activates even a key disabled as exposed (its report stays): which is
            # why keystate never asks for that.
            current.enabled, current.activation_ms, current.lifecycle = True, now_ms, None
        elif route == "disable":
            current.enabled, current.disabled_ms = False, now_ms
            if current.lifecycle != "DISABLED_EXPOSED":
                current.lifecycle = None
        elif route == "extend":
            if current.expired(now_ms):
                raise CoveoError("activate-expired", id=ident)
            if current.lifecycle == "DISABLED_EXPOSED":
                raise CoveoError("extend-exposed", id=ident)
            # The inactivity clock starts again: no longer soon (or) disabled for it.
            current.lifecycle, current.activation_ms = None, now_ms
        state.record(ident, before, now_ms, self._delay_ms)
        return response(204)

    def _bulk(self, state: OrgState, action: str, ids: list[Any], now_ms: int) -> EmuResponse:
        if len(set(map(str, ids))) != len(ids):
            raise CoveoError("bad-body", detail="The ids must be unique.")
        for ident in ids:
            if str(ident) not in state.keys:
                raise CoveoError("bulk-unknown", id=str(ident))
        for ident in ids:
            self._change(state, action, str(ident), {}, now_ms)
        return response(204)


def _holds(
    privileges: list[dict[str, Any]], owner: str, domain: str, kind: str, target: str
) -> bool:
    """Whether a key's privileges include ``owner/domain/kind`` on ``target``: a held
    privilege without a target id, or with ``*``, covers every target."""
    for p in privileges:
        if (p.get("owner"), p.get("targetDomain"), p.get("type")) != (owner, domain, kind):
            continue
        held = p.get("targetId")
        ids = p.get("targetIds")
        if held in (None, "*", target) and not ids:
            return True
        if isinstance(ids, list) and ("*" in ids or target in ids):
            return True
    return False


def _bulk_ids(body: bytes) -> list[str]:
    """The ids a bulk request names (none when the body is unreadable: the route itself
    then answers 400)."""
    try:
        ids = json.loads(body or b"[]")
    except ValueError:
        return []
    return [str(i) for i in ids] if isinstance(ids, list) else []


def _ips_or_template(body: dict[str, Any], name: str, template: dict[str, Any] | None) -> list[str]:
    """A create's IP list; without one, a template's own list (the key inherits it)."""
    values = wire.ips(body, name)
    if values is None and template is not None:
        return list(template.get(name) or [])
    return values or []


def _apply_update(key: StoredApiKey, body: dict[str, Any]) -> None:
    """Coveo's PUT takes the **whole** update model: what the body leaves out is reset
    (no IP lists, no additional configuration, no edit groups), as the official client
    sends the whole key back. Privileges, ``enabled`` and lifetimes in the body are not
    part of the update model and are ignored (§9)."""
    name = wire.text(body, "displayName", 125)
    if not name:
        raise CoveoError("bad-body", detail="'displayName' is required.")
    key.display_name = name
    key.description = wire.text(body, "description", 1000) or ""
    key.allowed_ips = wire.ips(body, "allowedIps") or []
    key.denied_ips = wire.ips(body, "deniedIps") or []
    key.additional_configuration = wire.additional_configuration(body) or {}
    for field_name, attr in (
        ("groupsThatCanEdit", "groups_that_can_edit"),
        ("apiKeysThatCanEdit", "api_keys_that_can_edit"),
    ):
        value = body.get(field_name)
        setattr(key, attr, value if isinstance(value, list) else [])
