"""``--format json``: the versioned review document, one object per key
(docs/report.md, "JSON format"). Consumers must ignore unknown keys."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime

from keystate import kinds
from keystate._version import __version__
from keystate.report.gates import GateResult
from keystate.report.model import KeyRow, Report

FORMAT_VERSION = "1"


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else kinds.format_timestamp(moment)


def key_object(row: KeyRow, now: datetime) -> dict[str, object]:
    return {
        "address": row.address,
        "account": row.account,
        "provider": row.provider,
        "name": row.name,
        "manager": row.manager.value,
        "owner": row.owner,
        "ref": row.ref,
        "id": row.id,
        "fingerprint": row.fingerprint,
        "description": row.description,
        "permissions": [
            {"grant": p.grant, "target": p.target or None, "breadth": p.breadth.value}
            for p in row.permissions
        ],
        "breadth": row.breadth.value if row.breadth else None,
        "scope": {s.field: s.text for s in row.scope},
        "restrictions": {s.field: s.text for s in row.restrictions},
        "created_at": _time(row.created_at),
        "age_days": row.age_days(now),
        "expires": _time(row.expires_at),
        "days_left": row.days_left(now),
        "last_used_at": _time(row.last_used_at),
        "days_unused": row.days_unused(now),
        "status": row.status,
        "active": row.active,
        "exposed": row.exposed,
        "exposure": row.exposure or None,
        "rotation_due": _time(row.rotation_due),
        "lint": [{"rule": f.rule, "message": f.message} for f in row.lint],
        "declared": row.declared,
        "drift": list(row.drift),
    }


def document(report: Report, gates: Sequence[GateResult] = ()) -> dict[str, object]:
    now = report.generated_at
    summary = asdict(report.summary)
    return {
        "format_version": FORMAT_VERSION,
        "keystate_version": __version__,
        "generated_at": _time(now),
        "owner": report.owner,
        "unused_days": report.unused_days,
        "accounts": [{"name": a.name, "provider": a.provider} for a in report.accounts],
        "summary": summary,
        "gates": [{"rule": g.rule, "tripped": g.tripped, "keys": list(g.keys)} for g in gates],
        "keys": [key_object(row, now) for row in report.rows],
    }


def render(report: Report, gates: Sequence[GateResult] = ()) -> str:
    return json.dumps(document(report, gates), indent=2, ensure_ascii=False) + "\n"
