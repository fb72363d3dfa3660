"""Reading the ``accounts:`` section: provider, connection settings, credentials."""

from __future__ import annotations

import re
from pathlib import Path

from keystate.config.files import FileRefused, FileTooLarge, read_regular
from keystate.config.lifecycle import read_defaults
from keystate.config.nodes import YMap, YNode, YScalar, YSeq
from keystate.config.reader import Reader, did_you_mean
from keystate.config.state import (
    ACCOUNT_COMMON,
    MAX_SECRET_BYTES,
    LoadState,
    check_name,
)
from keystate.contract import (
    AccountConfig,
    ProviderSchema,
    Removal,
    SecretSetting,
    SettingKind,
    SettingSpec,
    SettingValue,
)
from keystate.providers import known_providers, schema_for
from keystate.secrets import Secret

# The stand-in for a credential validate does not resolve (too short to be redacted).
UNRESOLVED = "-"


def read_accounts(state: LoadState, node: YNode, base_dir: Path) -> None:
    reader = state.reader
    accounts = reader.mapping(node, "accounts", allow_null=True)
    if accounts is None:
        return
    for key, value in accounts.entries:
        if not check_name(reader, key, "account"):
            continue
        first = state.account_locs.get(key.raw)
        if first is not None:
            reader.error(key, f"account '{key.raw}' is defined twice: {first} and {key.loc}")
            continue
        state.account_locs[key.raw] = key.loc
        account = _read_account(reader, key, value, base_dir)
        if account is not None:
            state.accounts[key.raw] = account
        if isinstance(value, YMap):
            found = next((v for k, v in value.entries if k.raw == "deliver_to"), None)
            if found is not None:
                state.sinks.by_account[key.raw] = state.sinks.deliver_to(reader, found) or ()
            defaults = next((v for k, v in value.entries if k.raw == "defaults"), None)
            if defaults is not None:
                what = f"account '{key.raw}' defaults"
                state.account_defaults[key.raw] = read_defaults(reader, defaults, what)


def _read_account(
    reader: Reader, key: YScalar, node: YNode, base_dir: Path
) -> AccountConfig | None:
    what = f"account '{key.raw}'"
    body = reader.mapping(node, what)
    if body is None:
        return None
    entries = {k.raw: (k, v) for k, v in body.entries}
    if "provider" not in entries:
        reader.error(key, f"{what} is missing 'provider' (one of: {', '.join(known_providers())})")
        return None
    provider_node = entries["provider"][1]
    provider = reader.string(provider_node, "provider")
    if provider is None:
        return None
    if provider not in known_providers():
        hint = (
            did_you_mean(provider, known_providers()) or f" (known: {', '.join(known_providers())})"
        )
        reader.error(provider_node, f"unknown provider {provider!r}{hint}")
        return None
    schema = schema_for(provider)
    allowed = list(ACCOUNT_COMMON)
    for spec in schema.settings:
        allowed.append(spec.name)
        if spec.kind is SettingKind.SECRET:
            allowed.append(f"{spec.name}_file")
    reader.unknown_fields(body, allowed, what)
    settings = _read_settings(reader, schema, entries, key, base_dir)
    common = _read_common(reader, schema, entries, what)
    if settings is None or common is None:
        return None
    removal, timeouts, attempts, wait = common
    timeout, write_timeout = timeouts
    return AccountConfig(
        name=key.raw,
        provider=provider,
        settings=settings,
        removal=removal,
        timeout=timeout,
        max_attempts=attempts,
        wait_timeout=wait,
        write_timeout=write_timeout,
        location=key.loc,
    )


def _read_common(
    reader: Reader, schema: ProviderSchema, entries: dict[str, tuple[YScalar, YNode]], what: str
) -> tuple[Removal, tuple[float | None, float | None], int | None, float | None] | None:
    ok = True
    removal = Removal.DELETE
    if "removal" in entries:
        node = entries["removal"][1]
        text = reader.string(node, "removal")
        policies = {r.value: r for r in Removal}
        if text is not None and text not in policies:
            reader.error(node, f"removal must be 'delete' or 'disable', not {text!r}")
            ok = False
        elif text is not None and policies[text] not in schema.removal_policies:
            reader.error(node, f"removal: {text} is not supported by {schema.title} keys")
            ok = False
        elif text is not None:
            removal = policies[text]
    timeout = write_timeout = attempts = wait = None
    if "timeout" in entries:
        timeout = reader.number(entries["timeout"][1], "timeout", 0.01, 600)
        ok = ok and timeout is not None
    if "write_timeout" in entries:
        write_timeout = reader.number(entries["write_timeout"][1], "write_timeout", 0.01, 600)
        ok = ok and write_timeout is not None
    if "max_attempts" in entries:
        attempts = reader.integer(entries["max_attempts"][1], "max_attempts", 20)
        if attempts == 0:
            reader.error(entries["max_attempts"][1], "max_attempts must be at least 1")
            attempts = None
        ok = ok and attempts is not None
    if "wait_timeout" in entries:
        wait = reader.number(entries["wait_timeout"][1], "wait_timeout", 0, 3600)
        ok = ok and wait is not None
    return (removal, (timeout, write_timeout), attempts, wait) if ok else None


def _read_settings(
    reader: Reader,
    schema: ProviderSchema,
    entries: dict[str, tuple[YScalar, YNode]],
    account_key: YScalar,
    base_dir: Path,
) -> dict[str, SettingValue] | None:
    values: dict[str, SettingValue] = {}
    ok = True
    for spec in schema.settings:
        file_key = f"{spec.name}_file"
        given = spec.name in entries or (spec.kind is SettingKind.SECRET and file_key in entries)
        if spec.kind is SettingKind.SECRET and spec.name in entries and file_key in entries:
            reader.error(entries[file_key][0], f"give '{spec.name}' or '{file_key}', not both")
            ok = False
            continue
        if not given:
            if spec.default is not None:
                values[spec.name] = spec.default
            elif spec.required or (
                spec.required_unless and not any(u in entries for u in spec.required_unless)
            ):
                unless = " or ".join(f"'{u}'" for u in spec.required_unless)
                hint = f" (or set {unless})" if unless else ""
                reader.error(
                    account_key, f"account '{account_key.raw}' is missing '{spec.name}'{hint}"
                )
                ok = False
            continue
        for other in spec.conflicts:
            if other in entries:
                reader.error(
                    entries[other][0], f"'{other}' and '{spec.name}' cannot be used together"
                )
                ok = False
        value = _read_setting(reader, spec, entries, base_dir)
        if value is None:
            ok = False
        else:
            values[spec.name] = value
    return values if ok else None


def _read_setting(
    reader: Reader, spec: SettingSpec, entries: dict[str, tuple[YScalar, YNode]], base_dir: Path
) -> SettingValue:
    if spec.kind is SettingKind.SECRET:
        return _read_secret(reader, spec, entries, base_dir)
    node = entries[spec.name][1]
    if reader.deferred(node) and isinstance(node, YScalar):
        return str(node.value)  # offline: checked by plan and apply, once resolved
    if spec.kind is SettingKind.URLS:
        if isinstance(node, YSeq) and any(reader.deferred(item) for item in node.items):
            # Offline: the items with unset variables wait for plan; the others are checked.
            checked = [
                str(i.value)
                if isinstance(i, YScalar) and reader.deferred(i)
                else reader.url(i, f"{spec.name} item")
                for i in node.items
            ]
            return None if None in checked else tuple(u for u in checked if u)
        items = reader.strings(node, spec.name)
        if items is None:
            return None
        urls = [reader.url(item, f"{spec.name} item") for _, item in items]
        if not urls:
            reader.error(node, f"{spec.name} must list at least one URL")
            return None
        return None if any(u is None for u in urls) else tuple(u for u in urls if u)
    if spec.kind is SettingKind.URL:
        return reader.url(node, spec.name)
    text = reader.string(node, spec.name)
    if text is None:
        return None
    if spec.kind is SettingKind.PATH:
        path = Path(text).expanduser()
        return path if path.is_absolute() else base_dir / path
    if spec.kind is SettingKind.CHOICE and text not in spec.choices:
        hint = did_you_mean(text, spec.choices) or f" (one of: {', '.join(spec.choices)})"
        reader.error(node, f"{spec.name}: unknown value {text!r}{hint}")
        return None
    if spec.pattern and not re.match(spec.pattern, text):
        reader.error(node, f"{spec.name} {text!r} is malformed")
        return None
    return text


def _read_secret(
    reader: Reader, spec: SettingSpec, entries: dict[str, tuple[YScalar, YNode]], base_dir: Path
) -> SecretSetting | None:
    if spec.name in entries:
        node = entries[spec.name][1]
        if reader.deferred(node):
            return SecretSetting(Secret(UNRESOLVED), "unresolved")
        expansion = reader.expanded(node, spec.name)
        if expansion is None:
            return None
        if not expansion.value.strip():
            source = f"${{{expansion.variables[0]}}}" if expansion.variables else "it"
            reader.error(node, f"{spec.name} is empty (check {source})")
            return None
        if expansion.whole_variable:
            return SecretSetting(Secret(expansion.value.strip()), f"${{{expansion.variables[0]}}}")
        if not expansion.variables:
            reader.warn(
                node,
                f"{spec.name} is written in the configuration file; keep credentials out of it "
                f"with ${{VAR}} or {spec.name}_file",
                rule="literal-credential",
            )
        return SecretSetting(Secret(expansion.value.strip()), "literal")
    node = entries[f"{spec.name}_file"][1]
    text = reader.string(node, f"{spec.name}_file")
    if text is None:
        return None
    path = Path(text).expanduser()
    path = path if path.is_absolute() else base_dir / path
    try:
        content = read_regular(path, MAX_SECRET_BYTES).decode("utf-8").strip()
    except (OSError, FileRefused, UnicodeDecodeError) as exc:
        if isinstance(exc, OSError) and reader.skip_file(node, f"{spec.name}_file"):
            return SecretSetting(Secret(UNRESOLVED), "unresolved")
        if isinstance(exc, FileTooLarge):
            reason = f"larger than {MAX_SECRET_BYTES // 1024} KiB, not a credential"
        elif isinstance(exc, FileRefused):
            reason = str(exc)
        elif isinstance(exc, OSError):
            reason = exc.strerror or str(exc)
        else:
            reason = "not UTF-8 text"
        reader.error(node, f"{spec.name}_file: cannot read {text}: {reason}")
        return None
    if not content:
        reader.error(node, f"{spec.name}_file: {text} is empty")
        return None
    return SecretSetting(Secret(content), f"file:{path}")
