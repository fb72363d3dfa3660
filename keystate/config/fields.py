"""Reading a key's provider fields: each :class:`~keystate.contract.Kind` from YAML into
its normal form, with every problem recorded at its ``file:line:column``."""

from __future__ import annotations

from datetime import date, datetime

from keystate.config.nodes import YMap, YNode, YScalar, YSeq
from keystate.config.reader import INVALID, PRIVILEGE_FIELDS, Invalid, Reader, did_you_mean
from keystate.contract import FieldSpec, Kind, RecordShape
from keystate.errors import Problem
from keystate.kinds import canonical_query, encode_query, query_value, to_utc
from keystate.model import FieldValue, Location, Privilege, Record


class FieldReader(Reader):
    """A :class:`Reader` that also reads provider fields."""

    def field(self, spec: FieldSpec, node: YNode) -> FieldValue | Invalid:
        self.members = {}
        value = self._field(spec, node)
        if value is INVALID or spec.check is None:
            return value
        assert not isinstance(value, Invalid)
        if self.members and (spec.name, value) in self._passed:
            return value  # this very set passed the field's check already (checks are pure)
        if not self.members:
            problems = spec.check(value)
            for message in problems:
                self.error(node, f"{spec.name}: {message}")
            return INVALID if problems else value
        # A set: check each member alone, so that each problem names its own line.
        ok = True
        for member, (line, column) in self.members.items():
            one: FieldValue
            if isinstance(member, Privilege):  # noqa: SIM114 (mypy needs one type per set)
                one = frozenset([member])
            elif isinstance(member, Record):
                one = frozenset([member])
            else:
                one = frozenset([str(member)])
            for message in spec.check(one):
                self.error(Location(node.path, line, column), f"{spec.name}: {message}")
                ok = False
        if ok:
            self._passed.add((spec.name, value))
        return value if ok else INVALID

    def _field(self, spec: FieldSpec, node: YNode) -> FieldValue | Invalid:
        kind = spec.kind
        if isinstance(node, YScalar) and node.value is None and not spec.required:
            return spec.default
        if kind is Kind.TEXT:
            text = self.string(node, spec.name)
            if text is not None and spec.max_length is not None and len(text) > spec.max_length:
                self.error(
                    node, f"{spec.name} is {len(text)} characters; at most {spec.max_length}"
                )
                return INVALID
            if text is not None and spec.choices and text not in spec.choices:
                hint = did_you_mean(text, spec.choices) or f" (one of: {', '.join(spec.choices)})"
                self.error(node, f"{spec.name}: unknown value {text!r}{hint}")
                return INVALID
            return INVALID if text is None else text
        if kind is Kind.INT:
            number = self.integer(node, spec.name, spec.maximum)
            return INVALID if number is None else number
        if kind is Kind.BOOL:
            flag = self.boolean(node, spec.name)
            return INVALID if flag is None else flag
        if kind is Kind.STRING_SET:
            return self._string_set(spec, node)
        if kind is Kind.TIMESTAMP:
            return self.timestamp(node, spec.name)
        if kind is Kind.QUERY:
            return self._query(spec, node)
        if kind is Kind.RECORDS:
            return self._records(spec, node)
        return self._privileges(spec, node)

    def _records(self, spec: FieldSpec, node: YNode) -> FieldValue | Invalid:
        shape = spec.record
        assert shape is not None, f"{spec.name}: a RECORDS field needs a RecordShape"
        if isinstance(node, YScalar) and node.value is None:
            return frozenset()
        if not isinstance(node, YSeq):
            self.expect(node, spec.name, "a list of {" + ", ".join(shape.fields) + "}")
            return INVALID
        out: dict[Record, YNode] = {}
        ok = True
        for item in node.items:
            record = self._record(spec, shape, item)
            if record is None:
                ok = False
            elif record in out:
                self.warn(item, f"{spec.name}: {record} is listed twice")
            else:
                out[record] = item
        self.members = {r: (item.line, item.column) for r, item in out.items()}
        return self.shared(frozenset(out)) if ok else INVALID

    def _record(self, spec: FieldSpec, shape: RecordShape, item: YNode) -> Record | None:
        m = self.mapping(item, f"{spec.name} item")
        if m is None:
            return None
        self.unknown_fields(m, shape.fields, f"{spec.name} item")
        values: dict[str, str] = {}
        ok = True
        for key, value in m.entries:
            if key.raw not in shape.fields:
                continue
            text = self.string(value, f"{spec.name}.{key.raw}")
            choices = shape.choices.get(key.raw, ())
            if text is not None and choices and text not in choices:
                hint = did_you_mean(text, choices) or f" (one of: {', '.join(choices)})"
                self.error(value, f"{spec.name}.{key.raw}: unknown value {text!r}{hint}")
                text = None
            if text is None:
                ok = False
            else:
                values[key.raw] = text
        written = {key.raw for key, _ in m.entries}
        missing = [f for f in shape.required if f not in written]
        for name in missing:
            self.error(item, f"{spec.name} item is missing '{name}'")
        if missing or not ok:
            return None
        return Record(shape.normalise(values))

    def _string_set(self, spec: FieldSpec, node: YNode) -> FieldValue | Invalid:
        items = self.strings(node, spec.name)
        if items is None:
            return INVALID
        seen: dict[str, YNode] = {}
        ok = True
        for text, item in items:
            if text in seen:
                self.warn(item, f"{spec.name}: {text!r} is listed twice")
            seen[text] = item
            if spec.choices and text not in spec.choices:
                hint = did_you_mean(text, spec.choices)
                if not hint:
                    hint = f" (valid: {', '.join(spec.choices)})"
                self.error(item, f"{spec.name}: unknown value {text!r}{hint}")
                ok = False
        if spec.non_empty and not seen and ok:
            self.error(node, f"{spec.name} must not be empty")
            return INVALID
        self.members = {text: (item.line, item.column) for text, item in seen.items()}
        return self.shared(frozenset(seen)) if ok else INVALID

    def timestamp(self, node: YNode, what: str) -> datetime | Invalid:
        example = "e.g. 2027-06-30T00:00:00Z"
        value: object = node.value if isinstance(node, YScalar) else None
        if isinstance(node, YScalar) and node.is_str:
            text = self.string(node, what)
            if text is None:
                return INVALID
            try:
                value = datetime.fromisoformat(text.strip())
            except ValueError:
                self.error(node, f"{what}: {text!r} is not an RFC 3339 timestamp ({example})")
                return INVALID
        if isinstance(value, datetime):
            if value.tzinfo is None:
                self.error(node, f"{what} needs a UTC offset: add 'Z' or '+hh:mm' ({example})")
                return INVALID
            try:
                moment = to_utc(value)
            except OverflowError:
                self.error(node, f"{what} is out of range once converted to UTC ({example})")
                return INVALID
            if moment <= self.now:
                self.expired.append(
                    Problem(
                        f"{what} {moment.isoformat().replace('+00:00', 'Z')} is in the past; "
                        "the key would expire at once: extend it or remove the key",
                        node.loc,
                    )
                )
                return INVALID
            return moment
        if isinstance(value, date):
            self.error(node, f"{what} needs a time and offset ({value.isoformat()}T00:00:00Z)")
            return INVALID
        self.expect(node, what, f"an RFC 3339 timestamp ({example})")
        return INVALID

    def _query(self, spec: FieldSpec, node: YNode) -> FieldValue | Invalid:
        if isinstance(node, YMap):
            pairs: list[tuple[str, str]] = []
            for key, value in node.entries:
                plain = self._plain(value, f"{spec.name}.{key.raw}")
                if plain is INVALID:
                    return INVALID
                pairs.append((key.raw, query_value(plain)))
            return encode_query(pairs)
        text = self.string(node, spec.name)
        if text is None:
            return INVALID
        if text and "=" not in text:
            self.error(node, f"{spec.name}: {text!r} is not a query string (name=value&...)")
            return INVALID
        return canonical_query(text)

    def _plain(self, node: YNode, what: str) -> object:
        if isinstance(node, YScalar):
            if node.is_str:
                text = self.string(node, what)
                return INVALID if text is None else text
            if node.value is None or isinstance(node.value, (date, datetime)):
                return node.raw  # as written: a date is no JSON value (in a list, say)
            return node.value
        if isinstance(node, YSeq):
            items = [self._plain(i, what) for i in node.items]
            return INVALID if INVALID in items else items
        self.expect(node, what, "a string, number, boolean or list")
        return INVALID

    def _privileges(self, spec: FieldSpec, node: YNode) -> FieldValue | Invalid:
        if isinstance(node, YScalar) and node.value is None:
            return frozenset()
        if not isinstance(node, YSeq):
            self.expect(node, spec.name, "a list of {owner, target_domain, type?, target_id?}")
            return INVALID
        out: dict[Privilege, YNode] = {}
        ok = True
        for item in node.items:
            privilege = self._privilege(item, spec.name)
            if privilege is None:
                ok = False
            elif privilege in out:
                self.warn(item, f"{spec.name}: {privilege} is listed twice")
            else:
                out[privilege] = item
        if ok and spec.non_empty and not out:
            self.error(node, f"{spec.name} must not be empty")
            return INVALID
        self.members = {p: (item.line, item.column) for p, item in out.items()}
        return self.shared(frozenset(out)) if ok else INVALID

    def _privilege(self, item: YNode, what: str) -> Privilege | None:
        m = self.mapping(item, f"{what} item")
        if m is None:
            return None
        self.unknown_fields(m, PRIVILEGE_FIELDS, f"{what} item")
        values: dict[str, str | None] = {}
        for key, value in m.entries:
            if key.raw in PRIVILEGE_FIELDS:
                values[key.raw] = self.string(value, f"{what}.{key.raw}")
        missing = [f for f in ("owner", "target_domain") if f not in values]
        for name in missing:
            self.error(item, f"{what} item is missing '{name}'")
        owner, domain = values.get("owner"), values.get("target_domain")
        if missing or owner is None or domain is None:
            return None
        return Privilege(owner, domain, values.get("type"), values.get("target_id"))
