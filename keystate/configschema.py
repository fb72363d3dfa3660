"""The JSON Schema (draft 2020-12) of the configuration, generated from the providers'
declarations so it can never drift from what the loader accepts.

Editors use it for completion and inline errors (``# yaml-language-server: $schema=...``);
CI can run ``check-jsonschema`` with it. It checks structure and types; what only the
loader can know (variables that are not set, dates in the past, the live privilege
catalogue) stays with ``keystate validate``/``plan``.
"""

from __future__ import annotations

from typing import Any

from keystate import lint
from keystate._version import __version__
from keystate.config.secrets import EXEC_TIMEOUT_MAX
from keystate.config.state import ACCOUNT_COMMON, KEY_COMMON
from keystate.contract import (
    FieldSpec,
    Kind,
    ProviderSchema,
    RecordShape,
    SettingKind,
    SettingSpec,
)
from keystate.model import NAME_PATTERN
from keystate.providers import known_providers, schema_for

DRAFT = "https://json-schema.org/draft/2020-12/schema"
_NAME = f"^{NAME_PATTERN}$"
_VARIABLE = r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}$"
# https://anything, or plain http:// to a loopback host only.
_URL = r"^(https://[^/?#]+|http://(localhost|127\.[0-9.]+|\[::1\])(:[0-9]+)?)/?$"
_PLACEHOLDERS = "May use {account}, {name}, {name_upper}, {owner}, {fingerprint}"
_SELECTORS = {"fingerprint": "fingerprint:[0-9a-fA-F]{12,64}", "id": "id:.+"}

JSON = dict[str, Any]

_ADDRESS = f"^{NAME_PATTERN}/{NAME_PATTERN}$"
_DURATION_HELP = "<n>d (days) or <n>h (hours), e.g. 90d"
_LIFECYCLE_DEFS: JSON = {
    "duration": {"type": "string", "pattern": "^[0-9]{1,5}[dh]$", "description": _DURATION_HELP},
    "rotate": {
        "type": "object",
        "description": "Rotate the key when its age reaches `every`; the old key keeps "
        "working for `overlap` after the new value is delivered",
        "required": ["every"],
        "additionalProperties": False,
        "properties": {
            "every": {"$ref": "#/$defs/duration"},
            "overlap": {
                "anyOf": [{"$ref": "#/$defs/duration"}, {"const": "0"}, {"const": 0}],
            },
        },
    },
    "defaults": {
        "type": ["object", "null"],
        "description": "Lifecycle settings for the keys below (a key's own value wins)",
        "additionalProperties": False,
        "properties": {
            "rotate": {"$ref": "#/$defs/rotate"},
            "lifetime": {"$ref": "#/$defs/duration"},
        },
    },
}


def build() -> JSON:
    schemas = [schema_for(name) for name in known_providers()]
    return {
        "$schema": DRAFT,
        "title": "keystate configuration",
        "description": f"keystate {__version__} configuration (version 1)",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "version": {"const": 1},
            "owner": {"type": "string", "pattern": _NAME},
            "defaults": {"$ref": "#/$defs/defaults"},
            "forget": {
                "type": ["array", "null"],
                "description": "Managed keys to release (ACCOUNT/NAME): marker removed, key "
                "left live and unmanaged",
                "items": {"type": "string", "pattern": _ADDRESS},
            },
            "accounts": {
                "type": ["object", "null"],
                "propertyNames": {"pattern": _NAME},
                "additionalProperties": {"$ref": "#/$defs/account"},
            },
            "secrets": _secrets(),
            "keys": {
                "type": ["object", "null"],
                "propertyNames": {"pattern": _NAME},
                "additionalProperties": {
                    "type": ["object", "null"],
                    "propertyNames": {"pattern": _NAME},
                    "additionalProperties": {"$ref": "#/$defs/key"},
                },
            },
        },
        "$defs": {
            "account": {"oneOf": [{"$ref": f"#/$defs/account_{s.name}"} for s in schemas]},
            "key": {"anyOf": [{"$ref": f"#/$defs/key_{s.name}"} for s in schemas]},
            "variable": {"type": "string", "pattern": _VARIABLE},
            "deliver_to": {
                "description": "The secret sink(s) new values of these keys go to",
                "anyOf": [
                    {"type": "string", "pattern": _NAME},
                    {
                        "type": "array",
                        "minItems": 1,
                        "uniqueItems": True,
                        "items": {"type": "string", "pattern": _NAME},
                    },
                ],
            },
            **_LIFECYCLE_DEFS,
            **{f"account_{s.name}": _account(s) for s in schemas},
            **{f"key_{s.name}": _key(s, schemas) for s in schemas},
        },
    }


def _account(schema: ProviderSchema) -> JSON:
    properties: JSON = {
        "provider": {"const": schema.name},
        "removal": {"enum": [r.value for r in schema.removal_policies]},
        "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 600},
        "write_timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 600},
        "max_attempts": {"type": "integer", "minimum": 1, "maximum": 20},
        "wait_timeout": {"type": "number", "minimum": 0, "maximum": 3600},
        "deliver_to": {"$ref": "#/$defs/deliver_to"},
        "defaults": {"$ref": "#/$defs/defaults"},
    }
    assert set(properties) == set(ACCOUNT_COMMON)
    rules: list[JSON] = []
    for spec in schema.settings:
        properties[spec.name] = _setting(spec)
        names = [spec.name]
        if spec.kind is SettingKind.SECRET:
            file_name = f"{spec.name}_file"
            properties[file_name] = {"type": "string", "description": f"File holding {spec.name}"}
            names.append(file_name)
            rules.append({"not": {"required": names}})
        if spec.required or spec.required_unless:
            rules.append({"anyOf": [{"required": [n]} for n in names + list(spec.required_unless)]})
        for other in spec.conflicts:
            rules.append({"not": {"required": [spec.name, other]}})
    out: JSON = {
        "type": "object",
        "title": f"{schema.title} account",
        "required": ["provider"],
        "additionalProperties": False,
        "properties": properties,
    }
    if rules:
        out["allOf"] = rules
    return out


def _secrets() -> JSON:
    """``secrets:`` (docs/secrets.md): named sinks, each exactly one kind."""
    template = {"type": "string", "minLength": 1, "description": _PLACEHOLDERS}
    kinds: dict[str, JSON] = {
        "file": template,
        "exec": {"type": "array", "minItems": 1, "items": template},
        "aws_secrets_manager": {
            "type": "object",
            "additionalProperties": False,
            "required": ["region", "name"],
            "properties": {
                "region": template,
                "name": template,
                "endpoint_url": {"type": "string", "pattern": _URL},
            },
        },
    }
    sink: JSON = {
        "oneOf": [
            {
                "type": "object",
                "additionalProperties": False,
                "required": [kind],
                "properties": {kind: body}
                | (
                    {"timeout": {"type": "number", "minimum": 0.1, "maximum": EXEC_TIMEOUT_MAX}}
                    if kind == "exec"
                    else {}
                ),
            }
            for kind, body in kinds.items()
        ]
    }
    return {
        "type": ["object", "null"],
        "additionalProperties": False,
        "properties": {
            "default": {"type": "string", "pattern": _NAME},
            "rescue_dir": {"type": "string", "minLength": 1},
            "sinks": {
                "type": ["object", "null"],
                "propertyNames": {"pattern": _NAME},
                "additionalProperties": sink,
            },
        },
    }


def _setting(spec: SettingSpec) -> JSON:
    base: JSON = {"description": spec.doc}
    if spec.kind is SettingKind.URLS:
        return base | {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": _URL}}
    if spec.kind is SettingKind.URL:
        return base | {"type": "string", "pattern": _URL}
    if spec.kind is SettingKind.CHOICE:
        return base | {"enum": list(spec.choices)}
    return base | {"type": "string"}


def _key(schema: ProviderSchema, schemas: list[ProviderSchema]) -> JSON:
    rule_ids = lint.all_rule_ids(schemas)
    description: JSON = {"type": ["string", "null"], "not": {"pattern": "keystate:"}}
    if schema.description_max is not None:
        description["maxLength"] = schema.description_max
    properties: JSON = {
        "description": description,
        "protect": {"type": "boolean"},
        "adopt": {
            "type": "string",
            "pattern": "^(" + "|".join(_SELECTORS[k] for k in schema.selector_kinds) + ")$",
        },
        "lint_ignore": {"type": "array", "items": {"enum": rule_ids}},
        "deliver_to": {"$ref": "#/$defs/deliver_to"},
        "rotate": {"$ref": "#/$defs/rotate"},
        "lifetime": {"$ref": "#/$defs/duration"},
        "previously": {"type": "array", "items": {"type": "string", "pattern": _NAME}},
    }
    assert set(properties) == set(KEY_COMMON)
    for spec in schema.fields:
        properties[spec.name] = _field(spec)
    required = [f.name for f in schema.fields if f.required]
    out: JSON = {
        "type": "object",
        "title": f"{schema.title} key",
        "additionalProperties": False,
        "properties": properties,
    }
    if required:
        out["required"] = required
    if schema.key_json_schema:
        out.update(schema.key_json_schema)
    if schema.expiry is not None:
        exclusive = {"not": {"required": ["lifetime", schema.expiry.name]}}
        out["allOf"] = [*out.get("allOf", []), exclusive]
    return out


def _field(spec: FieldSpec) -> JSON:
    base: JSON = {"description": spec.doc + (" (create-only)" if spec.create_only else "")}
    kind = spec.kind
    if kind is Kind.TEXT:
        text: JSON = {"type": "string"}
        if spec.choices:
            text["enum"] = list(spec.choices)
        return base | text
    if kind is Kind.INT:
        number: JSON = {"type": "integer", "minimum": 0}
        if spec.maximum is not None:
            number["maximum"] = spec.maximum
        return base | {"anyOf": [number, {"$ref": "#/$defs/variable"}]}
    if kind is Kind.BOOL:
        return base | {"type": "boolean"}
    if kind is Kind.STRING_SET:
        items: JSON = {"enum": list(spec.choices)} if spec.choices else {"type": "string"}
        if spec.item_pattern:
            items["pattern"] = spec.item_pattern
        array: JSON = {"type": "array", "items": items}
        if spec.non_empty:
            array["minItems"] = 1
        return base | array
    if kind is Kind.TIMESTAMP:
        return base | {"type": "string", "format": "date-time"}
    if kind is Kind.QUERY:
        scalar = {"type": ["string", "number", "boolean"]}
        return base | {
            "anyOf": [
                {"type": "string", "pattern": "^$|="},
                {
                    "type": "object",
                    "additionalProperties": {"anyOf": [scalar, {"type": "array", "items": scalar}]},
                },
            ]
        }
    if kind is Kind.RECORDS and spec.record is not None:
        return base | {"type": "array", "items": _record(spec.record)}
    return base | {"type": "array", "items": _privilege(spec)}


def _record(shape: RecordShape) -> JSON:
    fields: JSON = {}
    for name in shape.fields:
        prop: JSON = {"type": "string", "minLength": 1}
        if name in shape.choices:
            prop = {"enum": list(shape.choices[name])}
        if name in shape.defaults:
            prop["default"] = shape.defaults[name]
        fields[name] = prop
    record: JSON = {"type": "object", "additionalProperties": False, "properties": fields}
    if shape.required:
        record["required"] = list(shape.required)
    return record


def _privilege(spec: FieldSpec) -> JSON:
    properties: JSON = {
        "owner": {"type": "string"},
        "target_domain": {"type": "string"},
        "type": {"type": "string"},
        "target_id": {"type": "string", "minLength": 1},
    }
    extra = dict(spec.member_json_schema or {})
    properties.update(extra.pop("properties", None) or {})  # type: ignore[call-overload]
    item: JSON = {
        "type": "object",
        "required": ["owner", "target_domain"],
        "additionalProperties": False,
        "properties": properties,
    }
    return item | extra
