"""Security checks (issue 5, point 6).

* Plain ``http://`` only for loopback hosts; redirects are never followed.
* TLS verification always on: both providers' clients verify, nothing in the product or
  the configuration can turn it off, and a server with an untrusted certificate never
  receives a request (even with SSL_CERT_FILE pointing at its certificate).
* No credential in argv in the docs and examples.
* The secrets file is 0600 whatever the umask; an existing file others can read is made
  0600 (with a warning) before anything is written; a symlink or a FIFO is refused.
* ``-vv`` (and ``-vvv``) logs carry request lines with key paths redacted and no header.
* The canary: every command, every output format, both providers, at ``-vv``; stdout,
  stderr and every file written (but the secrets sink) are scanned for every key value
  and credential. Reprs and the last-resort "Internal error" path too.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from support import Servers, knobs

from keystate import planfile
from keystate.config import load_config
from keystate.contract import ConnectOptions
from keystate.emulators.algolia import AlgoliaEmulator
from keystate.errors import ConfigError
from keystate.providers import connect
from keystate.secrets import SecretsSink

from ._inputs import (
    ALGOLIA_ADMIN_KEY,
    ALGOLIA_APP_ID,
    COVEO_ORG,
    COVEO_TOKEN,
    Emulators,
    emulators,
    invoke,
)

if TYPE_CHECKING:
    from .conftest import Figures

ROOT = Path(__file__).resolve().parents[2]
SECTION = "security"
ENV = {
    "ALGOLIA_APPLICATION_ID": ALGOLIA_APP_ID,
    "ALGOLIA_ADMIN_API_KEY": ALGOLIA_ADMIN_KEY,
    "COVEO_ACCESS_TOKEN": COVEO_TOKEN,
}


def algolia_account(url: str, extra: str = "") -> str:
    return (
        "  algolia-prod:\n    provider: algolia\n"
        "    application_id: ${ALGOLIA_APPLICATION_ID}\n    api_key: ${ALGOLIA_ADMIN_API_KEY}\n"
        f'    hosts: ["{url}"]\n    timeout: 2\n    max_attempts: 2\n    wait_timeout: 5\n{extra}'
    )


def coveo_account(url: str, extra: str = "") -> str:
    return (
        f"  coveo-prod:\n    provider: coveo\n    organization_id: {COVEO_ORG}\n"
        f"    token: ${{COVEO_ACCESS_TOKEN}}\n    base_url: {url}\n"
        f"    timeout: 2\n    max_attempts: 2\n{extra}"
    )


# -- plain http only for loopback ---------------------------------------------------------

LOOPBACK = [
    "http://127.0.0.1:8100",
    "http://127.9.8.7",
    "http://[::1]:8100",
    "http://localhost:8100",
    "http://LOCALHOST",
    "https://search.example.com",
    "https://10.0.0.1:8443",
]
REMOTE = [
    "http://example.com",
    "http://10.0.0.1",
    "http://0.0.0.0:8100",
    "http://[::]:8100",
    "http://[::ffff:10.0.0.1]",
    "http://localhost.example.com",
    "http://127.0.0.1.nip.io",
    "http://2130706433",
    "http://0x7f.1",
    "http://169.254.169.254",
]


def _load(tmp: Path, text: str) -> ConfigError | None:
    path = tmp / "keystate.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_config(path, env=ENV)
    except ConfigError as exc:
        return exc
    return None


@pytest.mark.parametrize("provider", ["algolia", "coveo"])
@pytest.mark.parametrize("url", LOOPBACK + REMOTE)
def test_plain_http_only_for_loopback(
    provider: str, url: str, tmp_path: Path, figures: Figures
) -> None:
    account = algolia_account(url) if provider == "algolia" else coveo_account(url)
    error = _load(tmp_path, f"version: 1\naccounts:\n{account}")
    figures.add(SECTION, url_checks=1, url_wrong=int((error is None) != (url in LOOPBACK)))
    if url in LOOPBACK:
        assert error is None, error and [str(p) for p in error.problems]
        return
    assert error is not None, f"{url} was accepted"
    (problem,) = error.problems
    assert "plain http:// is only allowed for loopback hosts" in problem.message
    assert problem.location is not None and problem.location.line == 7


def test_the_provider_defaults_are_https() -> None:
    import random

    from keystate.providers.algolia.api import default_hosts
    from keystate.providers.coveo.wire import platform_url

    pool = default_hosts("APP", random.Random(1))
    assert all(h.url.startswith("https://") for h in [*pool.read, *pool.write])
    for region in ("us", "eu", "au", "ca", "hipaa"):
        assert platform_url(region).startswith("https://")


class _Quiet(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        return


def _serve(handler: type[BaseHTTPRequestHandler]) -> _Quiet:
    server = _Quiet(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_redirects_are_not_followed(tmp_path: Path) -> None:
    """A redirect must not carry the admin key to another host, loopback or not."""
    seen: dict[str, list[str]] = {"target": [], "redirector": []}

    class Target(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen["target"].append(self.headers.get("x-algolia-api-key", ""))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    target = _serve(Target)

    class Redirector(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen["redirector"].append(self.path)
            self.send_response(307)
            self.send_header("location", f"http://127.0.0.1:{target.server_address[1]}/1/keys")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    redirector = _serve(Redirector)
    try:
        url = f"http://127.0.0.1:{redirector.server_address[1]}"
        path = tmp_path / "keystate.yaml"
        path.write_text(f"version: 1\naccounts:\n{algolia_account(url)}", encoding="utf-8")
        result = invoke(["plan", "-c", str(path)], ENV)
    finally:
        target.shutdown()
        redirector.shutdown()
    assert result.exit_code == 1, result.output
    assert "Algolia answered 307" in result.stderr
    assert seen["redirector"] and not seen["target"]
    assert "Traceback" not in result.stderr


# -- TLS verification ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def untrusted_tls(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, Path, list[str]]]:
    """An HTTPS server on 127.0.0.1 with a self-signed certificate for 127.0.0.1 (valid in
    every way but trust); yields its URL, its certificate and the requests it received."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    received: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            received.append(self.path)
            body = b'{"keys": []}'
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = _Quiet(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # The certificate is fine in itself: a client that trusts it gets an answer.
    trusting = ssl.create_default_context(cafile=str(cert))
    with httpx.Client(verify=trusting) as client:
        assert client.get(f"https://127.0.0.1:{server.server_address[1]}/1/keys").status_code == 200
    received.clear()
    yield f"https://127.0.0.1:{server.server_address[1]}", cert, received
    server.shutdown()


@pytest.mark.parametrize("provider", ["algolia", "coveo"])
def test_untrusted_certificate_is_refused(
    provider: str,
    untrusted_tls: tuple[str, Path, list[str]],
    tmp_path: Path,
    figures: Figures,
) -> None:
    url, cert, received = untrusted_tls
    account = algolia_account(url) if provider == "algolia" else coveo_account(url)
    path = tmp_path / "keystate.yaml"
    path.write_text(f"version: 1\naccounts:\n{account}", encoding="utf-8")
    # Not even the environment can make keystate trust it.
    env = {**ENV, "SSL_CERT_FILE": str(cert), "SSL_CERT_DIR": str(cert.parent)}
    result = invoke(["-vv", "plan", "-c", str(path)], env)
    figures.add(SECTION, tls_refusals=int(result.exit_code == 1 and not received))
    assert result.exit_code == 1, result.output
    assert "the TLS certificate of 127.0.0.1 could not be verified" in result.stderr
    assert "keystate always verifies TLS" in result.stderr
    assert received == [], "a request (and its credential) reached an untrusted server"
    assert "Traceback" not in result.output


@pytest.mark.parametrize("provider", ["algolia", "coveo"])
def test_provider_clients_verify_tls(provider: str, tmp_path: Path) -> None:
    account = (
        algolia_account("https://a.example.com")
        if provider == "algolia"
        else coveo_account("https://c.example.com")
    )
    path = tmp_path / "keystate.yaml"
    path.write_text(f"version: 1\naccounts:\n{account}", encoding="utf-8")
    config = load_config(path, env=ENV)
    provider_obj = connect(config.accounts[f"{provider}-prod"], ConnectOptions())
    client = provider_obj.http.client  # type: ignore[attr-defined]
    context = client._transport._pool._ssl_context
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert client._trust_env is False  # no proxy or CA bundle from the environment
    assert client.follow_redirects is False
    import asyncio

    asyncio.run(provider_obj.aclose())


def test_nothing_can_turn_tls_verification_off(tmp_path: Path) -> None:
    """No switch in the configuration, and no code path in the product."""
    for option in ("verify: false", "insecure: true", "tls_verify: false", "ca_bundle: /x"):
        account = algolia_account("https://a.example.com", f"    {option}\n")
        error = _load(tmp_path, f"version: 1\naccounts:\n{account}")
        assert error is not None, option
        assert f"unknown field '{option.split(':')[0]}'" in error.problems[0].message
    schema = json.loads(invoke(["schema"], {}).stdout)
    assert not re.search(r"verify|insecure|tls|cert", json.dumps(schema), re.IGNORECASE)
    off = re.compile(r"verify\s*=\s*False|CERT_NONE|check_hostname\s*=\s*False|_create_unverified")
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "keystate").rglob("*.py")
        if off.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []
    assert off.search("httpx.AsyncClient(verify=False)")  # the pattern does find it


# -- credentials never in argv in docs and examples ---------------------------------------

ARGV_SECRET = re.compile(r"(?<![\w-])--(admin-key|token|api-key|password|secret)\b")
HEADER_SECRET = re.compile(r"(?i)(-H|--header)\s+['\"]?(x-algolia-api-key|authorization)\b")
COMMAND = re.compile(r"(^\s*\$ |\bkeystate\s|\bcurl\s|python3? -m keystate)")
YAML_SECRET = re.compile(r"^\s*(api_key|token)\s*:\s*(?!\$\{)(?!\s*$)\S")
WORKFLOW_SECRET = re.compile(
    r"^\s*[A-Z_]*(API_KEY|TOKEN|SECRET|PASSWORD)[A-Z_]*\s*:\s*"
    r"(?!\$\{\{\s*(secrets\.|github\.token\b))\S"
)


def command_lines(path: Path) -> list[tuple[int, str]]:
    """The lines of a doc or example that a reader would run (or paste into a config)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".md":
        return list(enumerate(text.splitlines(), 1))
    out: list[tuple[int, str]] = []
    fenced = False
    for n, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            out.append((n, line))
    return out


def argv_credentials(path: Path) -> list[str]:
    found = []
    for n, line in command_lines(path):
        where = f"{path.name}:{n}: {line.strip()}"
        in_argv = COMMAND.search(line) and (ARGV_SECRET.search(line) or HEADER_SECRET.search(line))
        in_config = path.suffix in (".yaml", ".yml", ".md") and YAML_SECRET.search(line)
        in_workflow = path.suffix == ".yml" and WORKFLOW_SECRET.search(line)
        if in_argv or in_config or in_workflow:
            found.append(where)
    return found


def test_the_scanner_finds_credentials_in_argv(tmp_path: Path) -> None:
    bad = tmp_path / "bad.md"
    bad.write_text(
        "```sh\nkeystate emulator algolia --admin-key 0123abcd\n"
        'curl -H "X-Algolia-API-Key: $KEY" https://x\n```\n'
        "```yaml\n    api_key: 0123abcd\n```\n",
        encoding="utf-8",
    )
    workflow = tmp_path / "w.yml"
    workflow.write_text("env:\n  ALGOLIA_ADMIN_API_KEY: 0123abcd\n", encoding="utf-8")
    assert len(argv_credentials(bad)) == 3
    assert len(argv_credentials(workflow)) == 1


def test_docs_and_examples_keep_credentials_out_of_argv(figures: Figures) -> None:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    files += [
        p
        for p in sorted((ROOT / "examples").rglob("*"))
        if p.suffix in (".sh", ".yml", ".yaml", ".md")
    ]
    assert len(files) >= 10
    found = [hit for path in files for hit in argv_credentials(path)]
    figures.add(SECTION, argv_files_scanned=len(files), argv_findings=len(found))
    assert found == []


# -- the secrets file ---------------------------------------------------------------------


def _config_with_one_new_key(tmp: Path, url: str, name: str = "web") -> Path:
    path = tmp / "keystate.yaml"
    path.write_text(
        f"version: 1\naccounts:\n{algolia_account(url)}keys:\n  algolia-prod:\n"
        f"    {name}: {{acl: [search]}}\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def algolia_emulator(serve: Servers) -> tuple[AlgoliaEmulator, str]:
    emulator = AlgoliaEmulator(app_id=ALGOLIA_APP_ID, admin_key=ALGOLIA_ADMIN_KEY)
    return emulator, serve(emulator).url


@pytest.fixture
def algolia_url(algolia_emulator: tuple[AlgoliaEmulator, str]) -> str:
    return algolia_emulator[1]


def _with_umask(mask: int, args: list[str]) -> object:
    old = os.umask(mask)
    try:
        return invoke(args, ENV)
    finally:
        os.umask(old)


def test_secrets_file_is_0600_even_with_a_permissive_umask(
    algolia_url: str, tmp_path: Path
) -> None:
    config = _config_with_one_new_key(tmp_path, algolia_url)
    sink = tmp_path / "new-keys.jsonl"
    result = _with_umask(
        0o000, ["apply", "-c", str(config), "--auto-approve", "--secrets-out", str(sink)]
    )
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert sink.stat().st_mode & 0o777 == 0o600
    assert json.loads(sink.read_text())["name"] == "web"
    # and the report and plan files, which hold no secret, follow the umask as usual
    report = tmp_path / "report.json"
    _with_umask(0o022, ["apply", "-c", str(config), "--auto-approve", "--report", str(report)])
    assert report.stat().st_mode & 0o777 == 0o644


def test_world_readable_secrets_file_is_made_private_before_writing(
    algolia_url: str, tmp_path: Path
) -> None:
    config = _config_with_one_new_key(tmp_path, algolia_url)
    sink = tmp_path / "new-keys.jsonl"
    sink.write_text("")
    sink.chmod(0o644)
    result = invoke(["apply", "-c", str(config), "--auto-approve", "--secrets-out", str(sink)], ENV)
    assert result.exit_code == 0, result.output
    assert sink.stat().st_mode & 0o777 == 0o600
    assert (
        f"Warning: --secrets-out {sink} was readable by others (mode 0644); it is now 0600"
        in result.stderr
    )
    assert len(sink.read_text().splitlines()) == 1


def test_secrets_file_unit_modes(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        fresh = SecretsSink.open(str(tmp_path / "a.jsonl"))
        fresh.close()
        assert fresh.repaired_mode is None
        assert (tmp_path / "a.jsonl").stat().st_mode & 0o777 == 0o600
        (tmp_path / "b.jsonl").write_text("")
        (tmp_path / "b.jsonl").chmod(0o640)
        repaired = SecretsSink.open(str(tmp_path / "b.jsonl"))
        repaired.close()
        assert repaired.repaired_mode == 0o640
        assert (tmp_path / "b.jsonl").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


@pytest.mark.parametrize("kind", ["symlink", "fifo", "directory"])
def test_secrets_destination_that_is_not_a_plain_file_is_refused(
    kind: str, algolia_emulator: tuple[AlgoliaEmulator, str], tmp_path: Path
) -> None:
    emulator, url = algolia_emulator
    config = _config_with_one_new_key(tmp_path, url)
    sink = tmp_path / "new-keys.jsonl"
    elsewhere = tmp_path / "elsewhere.txt"
    if kind == "symlink":
        elsewhere.write_text("")
        sink.symlink_to(elsewhere)
        reason = "is a symbolic link; give the real path"
    elif kind == "fifo":
        os.mkfifo(sink)
        reason = "No such device or address"  # opened without blocking: no reader
    else:
        sink.mkdir()
        reason = "Is a directory"
    result = invoke(["apply", "-c", str(config), "--auto-approve", "--secrets-out", str(sink)], ENV)
    assert result.exit_code == 1, result.output
    assert f"Error: --secrets-out {sink}: {reason}" in result.stderr
    assert "Traceback" not in result.output
    assert emulator.snapshot() == [], "a key was created without a place for its value"
    if kind == "symlink":
        assert elsewhere.read_text() == ""


# -- logs and the canary over every command ------------------------------------------------


@pytest.fixture
def emus() -> Iterator[Emulators]:
    with emulators() as running:
        yield running


def both(emus: Emulators, algolia_keys: str, coveo_keys: str, owner: str = "") -> str:
    head = f"version: 1\n{owner}accounts:\n"
    return (
        head
        + algolia_account(emus.algolia_server.url)
        + coveo_account(emus.coveo_server.url, "    removal: disable\n")
        + f"keys:\n  algolia-prod:\n{algolia_keys}  coveo-prod:\n{coveo_keys}"
    )


def algolia_keys(names: list[str], acl: str = "search") -> str:
    return "".join(
        f"    {n}:\n      description: canary {n}\n      acl: [{acl}]\n"
        "      referers: ['https://shop.example.com/*']\n      expires_at: 2031-01-01T00:00:00Z\n"
        for n in names
    )


SEARCH = "{owner: SEARCH_API, target_domain: EXECUTE_QUERY}"
ANALYTICS = "{owner: USAGE_ANALYTICS, target_domain: ANALYTICS_DATA, type: VIEW}"


def coveo_keys(names: list[str], ip: str = "203.0.113.0/24", privilege: str = SEARCH) -> str:
    return "".join(
        f"    {n}:\n      description: canary {n}\n      privileges: [{privilege}]\n"
        f'      allowed_ips: ["{ip}"]\n      search_hub: web\n'
        "      expires_at: 2031-01-01T00:00:00Z\n"
        for n in names
    )


class Canary:
    """Runs commands at -vv and keeps everything they printed; knows every secret."""

    def __init__(self, emus: Emulators, tmp: Path) -> None:
        self.emus = emus
        self.tmp = tmp
        self.outputs: dict[str, str] = {}
        self.secrets: set[str] = {ALGOLIA_ADMIN_KEY, COVEO_TOKEN}
        self.sinks: set[Path] = set()
        self.runs = 0

    def run(
        self, name: str, *args: str, env: dict[str, str] | None = None, sink_stdout: bool = False
    ) -> int:
        result = invoke(["-vv", *args], env or ENV)
        self.runs += 1
        if sink_stdout:  # standard output *is* the secrets sink for this run
            self.secrets |= {json.loads(line)["value"] for line in result.stdout.splitlines()}
        else:
            self.outputs[f"{name}: stdout"] = result.stdout
        self.outputs[f"{name}: stderr"] = result.stderr
        self.learn()
        return result.exit_code

    def learn(self) -> None:
        """Every key value either emulator holds (kept after deletion: it must never show)."""
        for key in (*self.emus.algolia.snapshot(), *self.emus.coveo.snapshot()):
            self.secrets.add(str(key["value"]))
        for sink in self.sinks:
            if sink.exists():
                self.secrets |= {json.loads(ln)["value"] for ln in sink.read_text().splitlines()}

    def files(self) -> dict[str, str]:
        out = {}
        for path in sorted(self.tmp.rglob("*")):
            if path.is_file() and path not in self.sinks:
                out[f"file {path.name}"] = path.read_text(encoding="utf-8", errors="replace")
        return out

    def leaks(self) -> list[str]:
        texts = {**self.outputs, **self.files()}
        return [
            f"{where} holds a secret of {len(secret)} characters"
            for where, text in texts.items()
            for secret in self.secrets
            if secret in text
        ]


def add_unmanaged(emus: Emulators) -> None:
    """A key in each account that keystate does not own (its value must never show)."""
    from keystate.emulators.http import EmuRequest

    algolia = {"x-algolia-application-id": ALGOLIA_APP_ID, "x-algolia-api-key": ALGOLIA_ADMIN_KEY}
    body = json.dumps({"acl": ["search"], "description": "hand-made"}).encode()
    assert emus.algolia.handle(EmuRequest("POST", "/1/keys", "", algolia, body)).status == 200
    coveo = {"authorization": f"Bearer {COVEO_TOKEN}", "content-type": "application/json"}
    body = json.dumps(
        {
            "displayName": "hand-made",
            "description": "hand-made",
            "privileges": [{"owner": "SEARCH_API", "targetDomain": "EXECUTE_QUERY"}],
        }
    ).encode()
    path = f"/rest/organizations/{COVEO_ORG}/apikeys"
    assert emus.coveo.handle(EmuRequest("POST", path, "", coveo, body)).status < 300


def test_every_command_and_format_leaks_nothing(
    emus: Emulators, tmp_path: Path, figures: Figures, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = Canary(emus, tmp_path)
    add_unmanaged(emus)
    canary.learn()
    config = tmp_path / "keystate.yaml"
    sink = tmp_path / "new-keys.jsonl"
    canary.sinks.add(sink)
    c = ("-c", str(config))

    def write(algolia: str, coveo: str) -> None:
        config.write_text(both(emus, algolia, coveo), encoding="utf-8")

    write(algolia_keys(["a", "b", "c"]), coveo_keys(["a", "b", "c"]))
    assert canary.run("validate", "validate", *c) == 0
    canary.run("validate --strict", "validate", "--strict", *c)
    assert canary.run("schema", "schema") == 0
    assert canary.run("version", "--version") == 0
    for fmt in ("text", "json", "markdown"):
        assert canary.run(f"plan {fmt}", "plan", *c, "--format", fmt, "--show-unmanaged") == 0
    assert canary.run("plan --detailed-exitcode", "plan", *c, "--detailed-exitcode") == 2
    report = tmp_path / "report-1.json"
    apply = ("apply", *c, "--auto-approve", "--show-unmanaged")
    assert canary.run("apply", *apply, "--secrets-out", str(sink), "--report", str(report)) == 0
    assert len(sink.read_text().splitlines()) == 6

    # One more key each, delivered on standard output.
    write(algolia_keys(["a", "b", "c", "d"]), coveo_keys(["a", "b", "c", "d"]))
    assert canary.run("apply to stdout", *apply, "--secrets-out", "-", sink_stdout=True) == 0

    # Updates, a delete, a disable and a replacement, through a saved plan.
    write(
        algolia_keys(["a", "b", "c"], acl="browse"),
        coveo_keys(["a", "b"], ip="198.51.100.0/24") + coveo_keys(["c"], privilege=ANALYTICS),
    )
    planfile = tmp_path / "plan.json"
    assert canary.run("plan --out", "plan", *c, "--out", str(planfile)) == 0
    for fmt in ("text", "json", "markdown"):
        assert canary.run(f"show {fmt}", "show", str(planfile), "--format", fmt) == 0
    report = tmp_path / "report-2.json"
    code = canary.run(
        "apply PLANFILE",
        "apply",
        str(planfile),
        "--secrets-out",
        str(sink),
        "--report",
        str(report),
    )
    assert code == 0
    plan = json.loads(planfile.read_text())
    assert {c["action"] for c in plan["changes"]} == {"update", "delete", "disable", "replace"}

    # -vvv too: the HTTP library's own debug lines.
    write(
        algolia_keys(["a", "b", "c"]),
        coveo_keys(["a", "b"]) + coveo_keys(["c"], privilege=ANALYTICS),
    )
    assert canary.run("apply -vvv", "-v", *apply, "--secrets-out", str(sink)) == 0

    for account in ("algolia-prod", "coveo-prod"):
        assert canary.run(f"import {account}", "import", account, *c) == 0
        out = tmp_path / f"imported-{account}.yaml"
        assert canary.run(f"import --out {account}", "import", account, *c, "--out", str(out)) == 0
        for fmt in ("text", "json"):
            assert (
                canary.run(
                    f"privileges {account} {fmt}", "privileges", account, *c, "--format", fmt
                )
                == 0
            )
    # Wrong credentials: the errors echo neither the right ones nor the wrong ones.
    wrong = {"ALGOLIA_ADMIN_API_KEY": "f0" * 16, "COVEO_ACCESS_TOKEN": "xwrongtoken" + "0" * 22}
    canary.secrets |= set(wrong.values())
    assert canary.run("bad credentials", "plan", *c, env={**ENV, **wrong}) == 1
    assert "${ALGOLIA_ADMIN_API_KEY}" in canary.outputs["bad credentials: stderr"]

    # A create that fails on the server, and the last-resort "Internal error" path.
    faulty = AlgoliaEmulator(app_id=ALGOLIA_APP_ID, admin_key=ALGOLIA_ADMIN_KEY)
    with Servers() as servers:
        server = servers.start(faulty, knobs("500=1", seed=1, routes=("add",)))
        broken = tmp_path / "broken.yaml"
        broken.write_text(
            f"version: 1\naccounts:\n{algolia_account(server.url)}keys:\n  algolia-prod:\n"
            + algolia_keys(["z"]),
            encoding="utf-8",
        )
        assert (
            canary.run(
                "failed create",
                "apply",
                "-c",
                str(broken),
                "--auto-approve",
                "--secrets-out",
                str(sink),
            )
            == 1
        )
        canary.secrets |= {str(k["value"]) for k in faulty.snapshot()}

    from keystate.providers.algolia import api as algolia_api

    async def boom(self: object) -> None:
        raise RuntimeError(f"unexpected, holding {ALGOLIA_ADMIN_KEY} and {COVEO_TOKEN}")

    monkeypatch.setattr(algolia_api.AlgoliaProvider, "list_keys", boom)
    assert canary.run("internal error", "plan", *c) == 1
    assert (
        "Internal error: RuntimeError: unexpected, holding [REDACTED] and [REDACTED]"
        in (canary.outputs["internal error: stderr"])
    )

    leaks = canary.leaks()
    figures.add(
        SECTION, canary_runs=canary.runs, canary_secrets=len(canary.secrets), leaks=len(leaks)
    )
    assert leaks == []
    # The scan had something to read: request lines were logged, key paths scrubbed.
    logged = canary.outputs["apply PLANFILE: stderr"] + canary.outputs["apply -vvv: stderr"]
    assert "HTTP Request: PUT" in logged and "/1/keys/[REDACTED]" in logged
    assert "HTTP Request: DELETE" in logged
    assert len(canary.secrets) >= 14  # 2 credentials, 2 wrong ones, 2 unmanaged, 10+ created
    assert canary.runs >= 25


def test_debug_logs_redact_key_paths_and_headers(emus: Emulators, tmp_path: Path) -> None:
    config = tmp_path / "keystate.yaml"
    sink = tmp_path / "new-keys.jsonl"
    config.write_text(both(emus, algolia_keys(["logs"]), coveo_keys(["logs"])), encoding="utf-8")
    assert (
        invoke(
            ["apply", "-c", str(config), "--auto-approve", "--secrets-out", str(sink)], ENV
        ).exit_code
        == 0
    )
    config.write_text(both(emus, algolia_keys(["logs"], acl="browse"), ""), encoding="utf-8")
    for verbosity in ("-vv", "-vvv"):
        result = invoke([verbosity, "plan", "-c", str(config)], ENV)
        assert result.exit_code == 0, result.output
    result = invoke(["-vvv", "apply", "-c", str(config), "--auto-approve"], ENV)
    assert result.exit_code == 0, result.output
    logs = result.stderr
    value = next(k["value"] for k in emus.algolia.snapshot() if "keystate:logs" in k["description"])
    assert re.search(r"HTTP Request: PUT http://127\.0\.0\.1:\d+/1/keys/\[REDACTED\]", logs)
    assert value not in logs and ALGOLIA_ADMIN_KEY not in logs and COVEO_TOKEN not in logs
    # No header value at any verbosity: not the application id either.
    assert "x-algolia-api-key" not in logs.lower() and "authorization" not in logs.lower()


def test_reprs_hold_no_secret(emus: Emulators, tmp_path: Path) -> None:
    import asyncio

    from keystate.engine import make_plan

    config_path = tmp_path / "keystate.yaml"
    config_path.write_text(both(emus, algolia_keys(["r"]), coveo_keys(["r"])), encoding="utf-8")
    add_unmanaged(emus)
    config = load_config(config_path, env=ENV)

    async def go() -> str:
        plan, conns = await make_plan(config, [], ConnectOptions())
        texts = [repr(config), repr(plan), repr(conns), repr(conns.providers)]
        texts += [repr(a) for a in config.accounts.values()]
        texts += [repr(k) for a in plan.accounts for k in (*a.unmanaged, *a.changes)]
        texts += [repr(p.http) for p in conns.providers.values()]  # type: ignore[attr-defined]
        texts.append(planfile.dumps(planfile.document(plan)))
        await conns.aclose()
        return "\n".join(texts)

    text = asyncio.run(go())
    values = {str(k["value"]) for k in (*emus.algolia.snapshot(), *emus.coveo.snapshot())}
    assert values and all(v not in text for v in values)
    assert ALGOLIA_ADMIN_KEY not in text and COVEO_TOKEN not in text
    assert "Secret(sha256:" in text  # the credentials were there, as fingerprints


def test_sandbox_accounts_leak_nothing(tmp_path: Path, figures: Figures) -> None:
    """The embedded emulator (``sandbox:``) runs the same provider code with no network:
    its credentials come from the sandbox's state file, which is the server's storage and,
    with the secrets sink, the only file allowed to hold values."""
    config = tmp_path / "keystate.yaml"
    sink = tmp_path / "new-keys.jsonl"
    states = {tmp_path / "algolia.json", tmp_path / "coveo.json"}
    head = (
        "version: 1\naccounts:\n"
        "  algolia-prod:\n    provider: algolia\n    sandbox: algolia.json\n"
        "  coveo-prod:\n    provider: coveo\n    sandbox: coveo.json\n"
    )
    outputs: dict[str, str] = {}

    def run(name: str, *args: str) -> int:
        result = invoke(["-vv", *args], {})
        outputs[f"{name}: stdout"] = result.stdout
        outputs[f"{name}: stderr"] = result.stderr
        return result.exit_code

    c = ("-c", str(config))
    config.write_text(
        head + f"keys:\n  algolia-prod:\n{algolia_keys(['s1', 's2'])}"
        f"  coveo-prod:\n{coveo_keys(['s1', 's2'])}",
        encoding="utf-8",
    )
    assert run("plan", "plan", *c, "--format", "json") == 0
    assert run("apply", "apply", *c, "--auto-approve", "--secrets-out", str(sink)) == 0
    config.write_text(
        head + f"keys:\n  algolia-prod:\n{algolia_keys(['s1'], acl='browse')}"
        f"  coveo-prod:\n{coveo_keys(['s1'], ip='198.51.100.0/24')}",
        encoding="utf-8",
    )
    planfile = tmp_path / "plan.json"
    assert run("plan --out", "plan", *c, "--out", str(planfile)) == 0
    assert run("apply PLANFILE", "apply", str(planfile), "--report", str(tmp_path / "r.json")) == 0
    for account in ("algolia-prod", "coveo-prod"):
        assert run(f"import {account}", "import", account, *c) == 0
        assert run(f"privileges {account}", "privileges", account, *c) == 0
    secrets = {json.loads(line)["value"] for line in sink.read_text().splitlines()}
    for state in states:
        data = json.loads(state.read_text())
        found = re.findall(r'"(?:value|admin_key|token|adminKey)": "([^"]+)"', json.dumps(data))
        secrets |= set(found)
    assert len(secrets) >= 6  # 4 created, 2 sandbox credentials
    files = {
        f"file {p.name}": p.read_text(encoding="utf-8")
        for p in tmp_path.iterdir()
        if p.is_file() and p not in states and p != sink
    }
    leaks = [where for where, text in {**outputs, **files}.items() for s in secrets if s in text]
    figures.add(SECTION, canary_runs=len(outputs) // 2, leaks=len(leaks))
    assert leaks == []
