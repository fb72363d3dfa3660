"""A Coveo key's JSON -> :class:`~keystate.model.LiveKey` (coveo-api.md §4.1, §4.3–§4.4).

What keystate compares must be read exactly: a value it cannot read is an error, never a
default that would plan a change (or a replacement) nobody asked for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from keystate.errors import ProviderError
from keystate.model import FieldValue, LiveKey, Privilege, Record
from keystate.providers.coveo.schema import IDENTITY, LAPSING_STATUSES
from keystate.providers.coveo.wire import (
    beyond,
    dig,
    exposure_summary,
    millis,
    privilege_from_json,
    template_ips,
    template_privileges,
)
from keystate.secrets import Secret

_API_KEY_SHAPE: Final = re.compile(
    r"^xx[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
)
_DISABLED: Final = ("DISABLED", "DISABLED_EXPOSED")


class KeyReader:
    """Reads the keys of one organization; remembers each key's last JSON, so that an
    update keeps what keystate does not manage."""

    def __init__(self, account: str, token: Secret) -> None:
        self.account = account
        self.token = token
        self.raw: dict[str, dict[str, Any]] = {}
        # The organization's key templates by id, once read (a key made from one).
        self.templates: dict[str, dict[str, Any]] | None = None

    def live(self, item: object, now: datetime, what: str) -> LiveKey:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise self.bad(what, "a key without an id")
        key_id: str = item["id"]
        expires = millis(item.get("expirationDate"))
        if expires is None and item.get("expirationDate") is not None:
            raise self.bad(what, f"key id:{key_id}: 'expirationDate' is not a date")
        if not isinstance(item.get("enabled", True), bool):
            raise self.bad(what, f"key id:{key_id}: 'enabled' is not true or false")
        description = self._text(item, "description", what, key_id)
        status = item.get("status") if isinstance(item.get("status"), str) else None
        report = item.get("exposureReport")
        # A key Coveo disabled for inactivity is still enabled in the sense of the field:
        # it comes back with activation/extend, shown as a status change (plan.STATUS).
        enabled = status not in _DISABLED and (
            item.get("enabled", True) is not False or status in LAPSING_STATUSES
        )
        fields = self._fields(item, what, key_id)
        fields["enabled"] = enabled
        fields["expires_at"] = expires
        self.raw[key_id] = item
        return LiveKey(
            ref=f"id:{key_id}",
            handle=key_id,
            stored_description=description,
            fields=fields,
            id=key_id,
            enabled=enabled,
            expired=status == "EXPIRED" or (expires is not None and expires <= now),
            is_credential=self._is_credential(str(item.get("value") or "")),
            created_at=millis(item.get("createdDate")),
            status=status,
            exposed=isinstance(report, dict) or status == "DISABLED_EXPOSED",
            exposure=exposure_summary(report) if isinstance(report, dict) else "",
            last_used_at=millis(item.get("lastUsedDate")),
            display_name=str(item.get("displayName") or ""),
        )

    def _fields(self, item: Mapping[str, Any], what: str, key_id: str) -> dict[str, FieldValue]:
        """The declarable fields (but ``enabled`` and ``expires_at``)."""
        try:
            privileges = frozenset(
                p for raw in item.get("privileges") or [] for p in privilege_from_json(raw)
            )
        except (ValueError, AttributeError, TypeError):
            raise self.bad(what, f"key id:{key_id} has a malformed privilege") from None
        search = dig(item, "additionalConfiguration", "search")
        hub = dig(search, "enforcedQueryPipelineConfiguration").get("searchHub")
        if hub is not None and not isinstance(hub, str):
            raise self.bad(what, f"key id:{key_id}: 'searchHub' is not a string")
        catalog = dig(item, "additionalConfiguration", "commerce").get("catalogId")
        if catalog is not None and not isinstance(catalog, str):
            raise self.bad(what, f"key id:{key_id}: 'catalogId' is not a string")
        restrictions = dig(search, "impersonationRestrictions") or dig(
            search, "impersonationRestriction"
        )
        template_id = str(item.get("apiKeyTemplateId") or "")
        allowed, denied, override = self._against_template(item, template_id, privileges, what)
        return {
            "privileges": privileges,
            "allowed_ips": allowed,
            "denied_ips": denied,
            "search_hub": hub or "",
            "template": template_id,
            "display_name": self._text(item, "displayName", what, key_id),
            "impersonation_allowed_user_ids": self._identities(
                restrictions.get("allowedUserIds"), what, key_id
            ),
            "api_key_query_authentication": self._identities(
                search.get("apiKeyQueryAuthentication"), what, key_id
            ),
            "commerce_catalog_id": catalog or "",
            "override_template_privileges": override,
        }

    def _against_template(
        self,
        item: Mapping[str, Any],
        template_id: str,
        privileges: frozenset[Privilege],
        what: str,
    ) -> tuple[frozenset[str], frozenset[str], frozenset[Privilege]]:
        """The IP lists and privileges a key declares: a template's own IP lists and
        privileges are the template's, so what the key declares is what differs."""
        key_id = str(item.get("id"))
        allowed = self._strings(item, "allowedIps", what, key_id)
        denied = self._strings(item, "deniedIps", what, key_id)
        template = (self.templates or {}).get(template_id) if template_id else None
        if template is None:
            return allowed, denied, frozenset()
        if allowed == template_ips(template, "allowedIps"):
            allowed = frozenset()
        if denied == template_ips(template, "deniedIps"):
            denied = frozenset()
        return allowed, denied, beyond(privileges, template_privileges(template))

    def _identities(self, raw: object, what: str, key_id: str) -> frozenset[Record]:
        if raw is None:
            return frozenset()
        if not isinstance(raw, list) or not all(
            isinstance(i, dict) and isinstance(i.get("name"), str) for i in raw
        ):
            raise self.bad(what, f"key id:{key_id}: an identity list is not [{{name, ...}}]")
        return frozenset(
            Record(IDENTITY.normalise({k: str(v) for k, v in i.items() if k in IDENTITY.fields}))
            for i in raw
        )

    def _is_credential(self, masked: str) -> bool:
        """Whether a listed key may be the API key keystate runs with. Values are masked
        to their last four characters, so this errs on the safe side: a key that merely
        shares them is left alone too."""
        token = self.token.reveal()
        return (
            bool(_API_KEY_SHAPE.match(token))
            and masked.startswith("xx")
            and masked[-4:] == token[-4:]
        )

    def _text(self, item: Mapping[str, Any], name: str, what: str, key_id: str) -> str:
        raw = item.get(name)
        if raw is not None and not isinstance(raw, str):
            raise self.bad(what, f"key id:{key_id}: '{name}' is not a string")
        return raw or ""

    def _strings(
        self, item: Mapping[str, Any], name: str, what: str, key_id: str
    ) -> frozenset[str]:
        raw = item.get(name)
        if raw is None:
            return frozenset()
        if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
            raise self.bad(what, f"key id:{key_id}: '{name}' is not a list of strings")
        return frozenset(raw)

    def bad(self, what: str, detail: str) -> ProviderError:
        return ProviderError(
            f"{what}: unexpected answer from Coveo: {detail}", account=self.account
        )
