"""Bad answers from the providers' APIs: a clear error naming the account, never a crash,
never a wrong plan.

A small fake API on 127.0.0.1 answers keystate's requests with whatever a case says —
malformed JSON, HTML error pages, wrong types, missing fields, huge bodies, dates out of
range — for both providers, and each case runs through the real CLI (``plan``, plus
``import`` and ``privileges`` where they read the same answers). Expected: exit 1, a
one-line ``Error: <account>: ...`` that says what was wrong, no traceback, no credential.

Answers that are odd but legal (an ACL or a privilege owner keystate has never heard of)
must instead give the right plan.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ._inputs import ALGOLIA_ADMIN_KEY, ALGOLIA_APP_ID, COVEO_ORG, COVEO_TOKEN, invoke

if TYPE_CHECKING:
    from .conftest import Figures

SECTION = "bad_api_answers"
MAX_ATTEMPTS = 2  # the accounts' max_attempts
HTML = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
ALGOLIA_KEYS = "/1/keys"
COVEO_KEYS = f"/rest/organizations/{COVEO_ORG}/apikeys"
COVEO_PRIVILEGES = f"/rest/organizations/{COVEO_ORG}/privileges/apikeys"
CATALOGUE = [
    {"owner": "SEARCH_API", "targetDomain": "EXECUTE_QUERY"},
    {"owner": "USAGE_ANALYTICS", "targetDomain": "ANALYTICS_DATA", "type": "EDIT"},
]


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    chunks: int = 1  # the body is sent this many times (huge bodies, made on the fly)
    headers: dict[str, str] = field(default_factory=dict)
    pause: float = 0.0  # seconds between two chunks (an answer that trickles in)


def answer(data: object, status: int = 200) -> Answer:
    return Answer(status, json.dumps(data).encode())


@dataclass
class FakeApi:
    """Answers by path; counts requests; any unknown path is a 404 with a JSON message."""

    routes: dict[str, Answer] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def _handler(api: FakeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet
            return

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length:
                self.rfile.read(length)
            path = self.path.split("?", 1)[0]
            api.requests.append(f"{self.command} {path}")
            reply = api.routes.get(f"{self.command} {path}") or api.routes.get(path)
            if reply is None:
                reply = answer({"message": "no such route in the fake"}, 404)
            try:
                self.send_response(reply.status)
                self.send_header("content-type", reply.content_type)
                self.send_header("content-length", str(len(reply.body) * reply.chunks))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                for _ in range(reply.chunks):
                    self.wfile.write(reply.body)
                    if reply.pause:
                        self.wfile.flush()
                        time.sleep(reply.pause)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815

    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        return  # a client that hangs up mid-answer is part of the game


@pytest.fixture(scope="module")
def api() -> Iterator[FakeApi]:
    fake = FakeApi()
    fake.server = _QuietServer(("127.0.0.1", 0), _handler(fake))
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def config(provider: str, url: str, keys: str = "", timeout: float = 2) -> str:
    if provider == "algolia":
        account = (
            "  algolia-prod:\n    provider: algolia\n"
            "    application_id: ${ALGOLIA_APPLICATION_ID}\n    api_key: ${ALGOLIA_ADMIN_API_KEY}\n"
            f'    hosts: ["{url}"]\n'
        )
    else:
        account = (
            f"  coveo-prod:\n    provider: coveo\n    organization_id: {COVEO_ORG}\n"
            f"    token: ${{COVEO_ACCESS_TOKEN}}\n    base_url: {url}\n"
        )
    body = f"version: 1\naccounts:\n{account}    timeout: {timeout}\n"
    body += f"    max_attempts: {MAX_ATTEMPTS}\n"
    return body + (f"keys:\n  {provider}-prod:\n{keys}" if keys else "")


ENV = {
    "ALGOLIA_APPLICATION_ID": ALGOLIA_APP_ID,
    "ALGOLIA_ADMIN_API_KEY": ALGOLIA_ADMIN_KEY,
    "COVEO_ACCESS_TOKEN": COVEO_TOKEN,
}
LIVE_VALUE = "11112222333344445555666677778888"  # a live key's value, in the answers


def algolia_key(**fields: object) -> dict[str, object]:
    key: dict[str, object] = {
        "value": LIVE_VALUE,
        "acl": ["search"],
        "description": "hand-made",
        "indexes": [],
        "referers": [],
        "maxHitsPerQuery": 0,
        "maxQueriesPerIPPerHour": 0,
        "queryParameters": "",
        "validity": 0,
        "createdAt": 1700000000,
    }
    key.update(fields)
    return {k: v for k, v in key.items() if v is not ...}


def coveo_key(**fields: object) -> dict[str, object]:
    key: dict[str, object] = {
        "id": "k1",
        "value": "xx*****8888",
        "displayName": "hand-made",
        "description": "hand-made",
        "enabled": True,
        "privileges": [{"owner": "SEARCH_API", "targetDomain": "EXECUTE_QUERY"}],
        "allowedIps": [],
        "deniedIps": [],
        "createdDate": 1700000000000,
    }
    key.update(fields)
    return {k: v for k, v in key.items() if v is not ...}


def gzip_bomb() -> Answer:
    """80 MB of spaces, gzip-compressed to about 80 KB (httpx decompresses it)."""
    import zlib

    squeezer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
    block = b" " * (1 << 20)
    body = b"".join(squeezer.compress(block) for _ in range(80)) + squeezer.flush()
    return Answer(body=body, headers={"content-encoding": "gzip"})


CAT = answer(CATALOGUE)  # a good catalogue: `privileges` must then succeed
NO_KEYS = answer([])  # a good, empty listing: `import` must then succeed


def coveo(keys: Answer, catalogue: Answer = CAT) -> dict[str, Answer]:
    return {COVEO_KEYS: keys, COVEO_PRIVILEGES: catalogue}


def alg(keys: Answer) -> dict[str, Answer]:
    return {ALGOLIA_KEYS: keys}


def listing(*keys: dict[str, object]) -> Answer:
    return answer({"keys": list(keys)})


# (id, provider, answers by path, fragment the error must contain)
BAD: list[tuple[str, str, dict[str, Answer], str]] = [
    ("truncated-json", "algolia", alg(Answer(body=b'{"keys": [{"value": "ab')), "expected JSON"),
    ("empty-body", "algolia", alg(Answer(body=b"")), "expected JSON"),
    (
        "html-200",
        "algolia",
        alg(Answer(body=HTML, content_type="text/html")),
        "expected JSON, got text/html",
    ),
    (
        "html-502",
        "algolia",
        alg(Answer(502, HTML, "text/html")),
        "gave up after 2 attempts (Algolia answered 502: non-JSON error body (text/html))",
    ),
    (
        "html-403",
        "algolia",
        alg(Answer(403, HTML, "text/html")),
        "Algolia answered 403: non-JSON error body (text/html)",
    ),
    (
        "error-without-message",
        "algolia",
        alg(answer({"status": 400}, 400)),
        "answered 400: error body without a message",
    ),
    (
        "keys-not-a-list",
        "algolia",
        alg(answer({"keys": {"a": 1}})),
        "no 'keys' list in the response",
    ),
    ("top-level-list", "algolia", alg(answer([])), "no 'keys' list in the response"),
    ("key-not-an-object", "algolia", alg(answer({"keys": ["abc"]})), "a key is not a JSON object"),
    ("key-without-value", "algolia", alg(listing(algolia_key(value=...))), "a key has no 'value'"),
    (
        "third-entry-bad",
        "algolia",
        alg(listing(algolia_key(), algolia_key(value="b" * 32), algolia_key(acl="search"))),
        "list keys (entry 3): unexpected answer from Algolia: 'acl' is not a list of strings",
    ),
    ("value-not-a-string", "algolia", alg(listing(algolia_key(value=123))), "a key has no 'value'"),
    (
        "acl-a-string",
        "algolia",
        alg(listing(algolia_key(acl="search"))),
        "'acl' is not a list of strings",
    ),
    (
        "acl-numbers",
        "algolia",
        alg(listing(algolia_key(acl=[1, 2]))),
        "'acl' is not a list of strings",
    ),
    (
        "hits-a-string",
        "algolia",
        alg(listing(algolia_key(maxHitsPerQuery="50"))),
        "'maxHitsPerQuery' is not a non-negative integer",
    ),
    (
        "validity-negative",
        "algolia",
        alg(listing(algolia_key(validity=-5))),
        "'validity' is not a non-negative integer",
    ),
    (
        "validity-huge",
        "algolia",
        alg(listing(algolia_key(validity=10**20))),
        "'validity' is out of range",
    ),
    (
        "description-object",
        "algolia",
        alg(listing(algolia_key(description={"a": 1}))),
        "'description' is not a string",
    ),
    (
        "query-a-number",
        "algolia",
        alg(listing(algolia_key(queryParameters=5))),
        "'queryParameters' is not a string",
    ),
    (
        "huge-body",
        "algolia",
        alg(Answer(body=b" " * (1 << 20), chunks=80)),
        "Algolia answered with more than 64 MB; refusing to read it",
    ),
    (
        "gzip-bomb",
        "algolia",
        alg(gzip_bomb()),
        "Algolia answered with more than 64 MB; refusing to read it",
    ),
    ("truncated-json", "coveo", coveo(Answer(body=b'[{"id": "k1", "privil')), "expected JSON"),
    (
        "html-200",
        "coveo",
        coveo(Answer(body=HTML, content_type="text/html")),
        "expected JSON, got text/html",
    ),
    (
        "html-502",
        "coveo",
        coveo(Answer(502, HTML, "text/html")),
        "Coveo answered 502: endpoint unreachable (502, text/html)",
    ),
    (
        "waf-block",
        "coveo",
        coveo(Answer(403, HTML, "text/html", headers={"x-coveo-waf-action": "block"})),
        "Coveo answered 403: blocked by Coveo's web application firewall",
    ),
    (
        "error-a-list",
        "coveo",
        coveo(answer(["nope"], 400)),
        "answered 400: error body is not an object",
    ),
    ("keys-an-object", "coveo", coveo(answer({"items": []})), "the answer is not a list of keys"),
    ("key-without-id", "coveo", coveo(answer([coveo_key(id=...)])), "a key without an id"),
    (
        "privilege-owner-number",
        "coveo",
        coveo(answer([coveo_key(privileges=[{"owner": 5, "targetDomain": "X"}])])),
        "key id:k1 has a malformed privilege",
    ),
    (
        "privileges-a-string",
        "coveo",
        coveo(answer([coveo_key(privileges="SEARCH_API")])),
        "key id:k1 has a malformed privilege",
    ),
    (
        "target-ids-a-number",
        "coveo",
        coveo(
            answer(
                [
                    coveo_key(
                        privileges=[{"owner": "PLATFORM", "targetDomain": "SOURCE", "targetIds": 5}]
                    )
                ]
            )
        ),
        "key id:k1 has a malformed privilege",
    ),
    (
        "allowed-ips-a-string",
        "coveo",
        coveo(answer([coveo_key(allowedIps="1.2.3.4")])),
        "key id:k1: 'allowedIps' is not a list of strings",
    ),
    (
        "denied-ips-numbers",
        "coveo",
        coveo(answer([coveo_key(deniedIps=[1234])])),
        "key id:k1: 'deniedIps' is not a list of strings",
    ),
    (
        "enabled-a-string",
        "coveo",
        coveo(answer([coveo_key(enabled="false")])),
        "key id:k1: 'enabled' is not true or false",
    ),
    (
        "expiration-garbage",
        "coveo",
        coveo(answer([coveo_key(expirationDate="soon")])),
        "key id:k1: 'expirationDate' is not a date",
    ),
    (
        "expiration-huge",
        "coveo",
        coveo(answer([coveo_key(expirationDate=10**22)])),
        "key id:k1: 'expirationDate' is not a date",
    ),
    (
        "search-hub-a-list",
        "coveo",
        coveo(
            answer(
                [
                    coveo_key(
                        additionalConfiguration={
                            "search": {"enforcedQueryPipelineConfiguration": {"searchHub": ["a"]}}
                        }
                    )
                ]
            )
        ),
        "key id:k1: 'searchHub' is not a string",
    ),
    (
        "description-a-list",
        "coveo",
        coveo(answer([coveo_key(description=[1])])),
        "key id:k1: 'description' is not a string",
    ),
    (
        "catalogue-not-a-list",
        "coveo",
        coveo(NO_KEYS, answer({"privileges": []})),
        "unexpected answer from Coveo: the answer is not a list",
    ),
    (
        "catalogue-malformed",
        "coveo",
        coveo(NO_KEYS, answer([{"owner": "X"}])),
        "unexpected answer from Coveo: a malformed privilege",
    ),
    (
        "catalogue-html",
        "coveo",
        coveo(NO_KEYS, Answer(body=HTML, content_type="text/html")),
        "expected JSON, got text/html",
    ),
    (
        "huge-body",
        "coveo",
        coveo(Answer(body=b" " * (1 << 20), chunks=80)),
        "Coveo answered with more than 64 MB; refusing to read it",
    ),
    (
        "gzip-bomb",
        "coveo",
        coveo(gzip_bomb()),
        "Coveo answered with more than 64 MB; refusing to read it",
    ),
]


def failing_commands(provider: str, routes: dict[str, Answer]) -> list[str]:
    """The commands that read the bad answer (the others must still work)."""
    if provider == "algolia":
        return ["plan", "import"]  # `privileges` is Algolia's offline ACL list
    out = ["plan"]
    if routes[COVEO_KEYS] is not NO_KEYS:
        out.append("import")
    if routes[COVEO_PRIVILEGES] is not CAT:
        out.append("privileges")
    return out


def run_command(
    command: str, provider: str, path: Path, api: FakeApi
) -> tuple[int, str, str, Counter[str]]:
    """Run ``command``; its exit code, output and the requests it sent, counted."""
    args = ["-vv", command, "-c", str(path)]
    if command != "plan":
        args.insert(2, f"{provider}-prod")
    before = len(api.requests)
    result = invoke(args, ENV)
    return result.exit_code, result.stdout, result.stderr, Counter(api.requests[before:])


@pytest.mark.parametrize(
    ("case_id", "provider", "routes", "fragment"), BAD, ids=[f"{c[1]}-{c[0]}" for c in BAD]
)
def test_bad_answer_is_a_clear_error_naming_the_account(
    case_id: str,
    provider: str,
    routes: dict[str, Answer],
    fragment: str,
    api: FakeApi,
    figures: Figures,
    tmp_path: Path,
) -> None:
    api.routes = routes
    api.requests.clear()
    path = tmp_path / "keystate.yaml"
    path.write_text(config(provider, api.url), encoding="utf-8")
    account = f"{provider}-prod"
    failing = failing_commands(provider, routes)
    for command in ("plan", "import", "privileges"):
        code, stdout, stderr, asked = run_command(command, provider, path, api)
        text = stdout + stderr
        crashed = "Traceback" in text or "Internal error" in text
        leaked = ALGOLIA_ADMIN_KEY in text or COVEO_TOKEN in text or LIVE_VALUE in text
        should_fail = command in failing
        figures.add(
            SECTION,
            answers=int(command == "plan"),
            runs=1,
            tracebacks=int(crashed),
            leaks=int(leaked),
            wrong_results=int((code == 1) != should_fail),
        )
        assert not crashed, text
        assert not leaked, "a credential or key value in the output"
        # A bad answer ends the command within the retry policy: no request is sent more
        # than max_attempts times (no endless retry or paging on a bad answer).
        assert max(asked.values(), default=0) <= MAX_ATTEMPTS, f"{command}: {asked}"
        if not should_fail:
            assert code == 0, f"{command} does not read the bad answer: exit {code}\n{text}"
            continue
        assert code == 1, f"{command}: exit {code}\n{text}"
        errors = [ln for ln in stderr.splitlines() if not ln.startswith(("DEBUG", "INFO"))]
        assert errors and errors[0].startswith("Error: "), stderr
        assert any(f"{account}: " in ln and fragment in ln for ln in errors), stderr
        assert stdout == "", f"{command} printed output from a bad answer:\n{stdout}"
    assert api.requests, "the fake was never asked"
    assert not any(r.split()[0] in ("POST", "PUT", "DELETE") for r in api.requests)


@pytest.mark.parametrize("provider", ["algolia", "coveo"])
def test_answer_that_trickles_in_is_cut_off(
    provider: str, api: FakeApi, figures: Figures, tmp_path: Path
) -> None:
    """A byte every 50 ms never trips the read timeout; the deadline per attempt
    (connect + write + 10 x read = 2.4 s at timeout: 0.2) does, on every attempt."""
    slow = Answer(body=b" ", chunks=10**6, pause=0.05)
    api.routes = alg(slow) if provider == "algolia" else coveo(slow, slow)
    path = tmp_path / "keystate.yaml"
    path.write_text(config(provider, api.url, timeout=0.2), encoding="utf-8")
    api.requests.clear()
    result = invoke(["plan", "-c", str(path)], ENV)
    figures.add(
        SECTION,
        answers=1,
        runs=1,
        tracebacks=int("Traceback" in result.output),
        wrong_results=int(result.exit_code != 1),
    )
    assert result.exit_code == 1, result.output
    assert re.search(
        rf"{provider}-prod: list [a-z ()]+: gave up after 2 attempts \(timed out", result.stderr
    ), result.stderr
    # Each route read twice (max_attempts), each attempt cut off: a run without the
    # deadline would read for 14 hours and end at the test's timeout instead.
    asked = Counter(api.requests)
    assert set(asked.values()) == {MAX_ATTEMPTS}, asked
    assert f"GET {ALGOLIA_KEYS if provider == 'algolia' else COVEO_KEYS}" in asked


# -- odd but legal answers: the right plan ----------------------------------------------

WEB_ALGOLIA = "    web:\n      description: web key\n      acl: [search]\n"
WEB_COVEO = (
    "    web:\n      description: web key\n"
    "      privileges: [{owner: SEARCH_API, target_domain: EXECUTE_QUERY}]\n"
)
NEW_OWNER = {"owner": "NEW_PRODUCT", "targetDomain": "THING", "type": "VIEW"}

# (id, provider, answers, keys YAML, expected {address: action}, expected unmanaged count)
ODD: list[tuple[str, str, dict[str, Answer], str, dict[str, str], int]] = [
    (
        "unknown-acl-on-a-managed-key",
        "algolia",
        alg(listing(algolia_key(description="web key keystate:web", acl=["search", "futureAcl"]))),
        WEB_ALGOLIA,
        {"algolia-prod/web": "update"},
        0,
    ),
    (
        "unknown-acl-on-an-unmanaged-key",
        "algolia",
        alg(listing(algolia_key(acl=["futureAcl", "otherNewAcl"]))),
        "",
        {},
        1,
    ),
    (
        "created-at-out-of-range",
        "algolia",
        alg(listing(algolia_key(description="web key keystate:web", createdAt=1e20))),
        WEB_ALGOLIA,
        {},
        0,
    ),
    (
        "fields-keystate-does-not-know",
        "algolia",
        alg(listing(algolia_key(description="web key keystate:web", newField={"a": [1]}))),
        WEB_ALGOLIA,
        {},
        0,
    ),
    (
        "unknown-owner-on-an-unmanaged-key",
        "coveo",
        coveo(answer([coveo_key(privileges=[NEW_OWNER])]), answer([*CATALOGUE, NEW_OWNER])),
        "",
        {},
        1,
    ),
    (
        "unknown-owner-on-a-managed-key",
        "coveo",
        coveo(
            answer(
                [
                    coveo_key(
                        displayName="web",
                        description="web key keystate:web",
                        privileges=[CATALOGUE[0], NEW_OWNER],
                    )
                ]
            ),
            answer([*CATALOGUE, NEW_OWNER]),
        ),
        WEB_COVEO,
        {"coveo-prod/web": "replace"},  # privileges are create-only on Coveo
        0,
    ),
    (
        "legacy-privilege-shape-and-odd-dates",
        "coveo",
        coveo(
            answer(
                [
                    coveo_key(
                        displayName="web",
                        description="web key keystate:web",
                        privileges=[
                            {
                                "owner": "SEARCH_API",
                                "targetDomain": "EXECUTE_QUERY",
                                "targetIds": [],
                                "global": False,
                            }
                        ],
                        createdDate="yesterday",
                        newField=[{"x": None}],
                    )
                ]
            )
        ),
        WEB_COVEO,
        {},
        0,
    ),
]


@pytest.mark.parametrize(
    ("case_id", "provider", "routes", "keys", "actions", "unmanaged"),
    ODD,
    ids=[f"{c[1]}-{c[0]}" for c in ODD],
)
def test_odd_but_legal_answer_gives_the_right_plan(
    case_id: str,
    provider: str,
    routes: dict[str, Answer],
    keys: str,
    actions: dict[str, str],
    unmanaged: int,
    api: FakeApi,
    figures: Figures,
    tmp_path: Path,
) -> None:
    api.routes = routes
    api.requests.clear()
    path = tmp_path / "keystate.yaml"
    path.write_text(config(provider, api.url, keys), encoding="utf-8")
    result = invoke(["plan", "-c", str(path), "--format", "json"], ENV)
    text = result.stdout + result.stderr
    plan = json.loads(result.stdout) if result.exit_code == 0 else {}
    got = {c["address"]: c["action"] for c in plan.get("changes", [])}
    figures.add(
        SECTION,
        answers=1,
        runs=1,
        tracebacks=int("Traceback" in text or "Internal error" in text),
        leaks=int(LIVE_VALUE in text or ALGOLIA_ADMIN_KEY in text or COVEO_TOKEN in text),
        wrong_plans=int(got != actions),
    )
    assert result.exit_code == 0, text
    assert got == actions
    assert plan["summary"]["unmanaged"] == unmanaged
    assert LIVE_VALUE not in text
    if case_id == "unknown-acl-on-a-managed-key":
        (change,) = plan["changes"]
        assert change["changed_fields"] == ["acl"]
        assert sorted(change["before"]["acl"]) == ["futureAcl", "search"]
        assert change["after"]["acl"] == ["search"]
    if case_id == "unknown-owner-on-a-managed-key":
        (change,) = plan["changes"]
        assert "privileges" in change["changed_fields"]
        assert {"owner": "NEW_PRODUCT", "target_domain": "THING", "type": "VIEW"} in change[
            "before"
        ]["privileges"]
