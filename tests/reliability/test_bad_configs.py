"""Adversarial configurations: the corpus in bad_configs/ plus inputs made at test time.

Every bad input goes through the real CLI, with ``validate`` and with ``plan`` (both
emulators listening, configured by the corpus through ${ALGOLIA_URL}/${COVEO_URL}), and
must give exactly the expected errors, each naming file:line, and then:

* exit code 1, no traceback, no "Internal error";
* not one connection or request to either emulator, no file created or changed;
* bounded memory: tracemalloc for the corpus run in-process, the peak RSS of a real
  process (``VmHWM`` in the child) for the huge and hostile inputs; and an end: a run
  that blocks (a FIFO, /dev/zero) fails at the process timeout. Wall times are recorded
  with the suite's figures (docs/reliability.md), never asserted.

Corpus format: each ``NAME.yaml`` opens with ``# expect: LINE: fragment`` lines (``-``
for a problem with no line), one per expected error, and optionally ``# offline: valid``
(a problem only plan finds: ``validate`` needs no credentials and must pass it, saying
what it did not check); a directory case (for ``-c DIR``)
has the same header in each of its YAML files and location-less ones in ``CASE.txt``.
"""

from __future__ import annotations

import os
import shutil
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ._inputs import (
    ALGOLIA_ADMIN_KEY,
    COVEO_TOKEN,
    Emulators,
    emulators,
    error_lines,
    invoke,
    record_maxima,
    run_process,
    tree_state,
)

if TYPE_CHECKING:
    from .conftest import Figures

CORPUS = Path(__file__).parent / "bad_configs"
COMMANDS = ("validate", "plan")
# A generous bound: these runs take a few MiB.
CORPUS_PEAK_MIB = 64.0


@dataclass(frozen=True)
class Expect:
    file: str | None  # relative to the case (None: the problem names no file)
    line: int | None
    fragment: str


@dataclass(frozen=True)
class Case:
    name: str
    source: Path
    title: str
    expects: tuple[Expect, ...]
    offline_valid: bool = False


def _header(text: str, prefix: str, file: str | None) -> tuple[str, list[Expect]]:
    title = ""
    expects: list[Expect] = []
    for line in text.splitlines():
        if not line.startswith(prefix):
            break
        body = line[len(prefix) :]
        if body.startswith("bad config"):
            title = body.split(":", 1)[1].strip()
        elif body == "offline: valid":
            continue
        elif body.startswith("expect: "):
            where, fragment = body[len("expect: ") :].split(": ", 1)
            if where == "-":
                expects.append(Expect(None, None, fragment))
            else:
                expects.append(Expect(file, int(where), fragment))
    return title, expects


def load_corpus() -> list[Case]:
    cases: list[Case] = []
    for entry in sorted(CORPUS.iterdir()):
        if entry.is_dir():
            title, expects = _header((entry / "CASE.txt").read_text(encoding="utf-8"), "", None)
            for part in sorted(entry.iterdir()):
                if part.suffix in (".yaml", ".yml"):
                    expects += _header(part.read_text(encoding="utf-8"), "# ", part.name)[1]
        else:
            title, expects = _header(entry.read_text(encoding="utf-8"), "# ", entry.name)
        assert title and expects, f"{entry.name}: no '# bad config:' title or no expectation"
        offline = entry.is_file() and "\n# offline: valid\n" in entry.read_text(encoding="utf-8")
        cases.append(Case(entry.name, entry, title, tuple(expects), offline))
    return cases


CASES = load_corpus()
SECTION = "adversarial_input"
# Largest wall time and memory seen (the counts go to the suite's shared figures).
MAXIMA: dict[str, float] = {}


@pytest.fixture(scope="module")
def emus() -> Iterator[Emulators]:
    with emulators() as running:
        yield running
    record_maxima(SECTION, MAXIMA)


def count_run(
    figures: Figures, command: str, text: str, requests: int, changed: bool, **maxima: float
) -> None:
    """Record one run in the figures, before any assertion, so that failures count too."""
    figures.add(
        SECTION,
        bad_inputs=int(command == COMMANDS[0]),
        runs=1,
        tracebacks=int("Traceback" in text),
        internal_errors=int("Internal error" in text),
        leaks=int(ALGOLIA_ADMIN_KEY in text or COVEO_TOKEN in text),
        requests_sent=requests,
        files_changed=int(changed),
    )
    for name, value in maxima.items():
        MAXIMA[name] = max(MAXIMA.get(name, 0.0), round(value, 2))


def check_output(
    stdout: str, stderr: str, exit_code: int, expects: list[Expect], resolve: Callable[[str], str]
) -> None:
    """Exactly the expected errors, each naming file:line; exit 1; nothing else wrong."""
    text = stdout + stderr
    assert "Traceback" not in text and "Internal error" not in text, stderr
    assert ALGOLIA_ADMIN_KEY not in text and COVEO_TOKEN not in text
    assert exit_code == 1, f"exit {exit_code}\n{stderr}"
    found = error_lines(stderr)
    unmatched = list(found)
    for want in expects:
        path = resolve(want.file) if want.file is not None else None
        hit = next(
            (
                e
                for e in unmatched
                if e.path == path and e.line == want.line and want.fragment in e.message
            ),
            None,
        )
        where = f"{path}:{want.line}" if path else "(no location)"
        assert hit is not None, f"expected {where}: ...{want.fragment!r}... in:\n{stderr}"
        unmatched.remove(hit)
    assert not unmatched, "unexpected errors:\n" + "\n".join(e.text for e in unmatched)
    n = len(expects)
    summary = f"Error: {n} configuration error{'s' if n != 1 else ''} (nothing was sent"
    assert summary in stderr, stderr
    for e in found:
        assert len(e.message) < 400, f"an error message of {len(e.message)} characters"


def test_corpus_is_large_and_varied() -> None:
    assert len(CASES) >= 60
    assert len({c.source.read_bytes() if c.source.is_file() else c.name for c in CASES}) == len(
        CASES
    )
    # Every expectation names a line, except the few problems that have none.
    located = sum(1 for c in CASES for e in c.expects if e.line is not None)
    assert located >= len(CASES)


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_corpus(
    case: Case, command: str, emus: Emulators, figures: Figures, tmp_path: Path
) -> None:
    target = tmp_path / case.name
    if case.source.is_dir():
        shutil.copytree(case.source, target)
    else:
        shutil.copy(case.source, target)
    before_tree, before_live = tree_state(tmp_path), emus.stored()
    emus.reset()
    tracemalloc.start()
    started = time.monotonic()
    try:
        result = invoke([command, "-c", str(target)], emus.env(), cwd=tmp_path)
    finally:
        seconds = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    count_run(
        figures,
        command,
        result.stdout + result.stderr,
        emus.traffic(),
        tree_state(tmp_path) != before_tree,
        corpus_seconds=seconds,
        corpus_traced_mib=peak,
    )

    def resolve(file: str) -> str:
        return str(target / file) if case.source.is_dir() else str(target)

    if command == "validate" and case.offline_valid:
        assert result.exit_code == 0, result.stderr
        assert "Not checked without credentials" in result.stdout
    else:
        check_output(result.stdout, result.stderr, result.exit_code, list(case.expects), resolve)
    assert emus.traffic() == 0, "a request reached an emulator"
    assert emus.stored() == before_live
    assert tree_state(tmp_path) == before_tree, "a file was created or changed"
    assert peak < CORPUS_PEAK_MIB, f"{peak:.1f} MiB"


def test_valid_control_config_does_reach_both_emulators(emus: Emulators, tmp_path: Path) -> None:
    """The counters above would see a request: the same accounts, valid, send some."""
    source = (CORPUS / "acl-typo.yaml").read_text(encoding="utf-8")
    path = tmp_path / "keystate.yaml"
    path.write_text(source.replace("[serach]", "[search]"), encoding="utf-8")
    emus.reset()
    result = invoke(["plan", "-c", str(path)], emus.env())
    assert result.exit_code == 0, result.stderr
    assert emus.algolia_server.counters.total >= 1
    assert emus.coveo_server.counters.total >= 1


# -- inputs made at test time ---------------------------------------------------------


@dataclass(frozen=True)
class Generated:
    target: Path  # what -c names
    expects: list[Expect]  # file relative to the tmp directory
    max_rss_mib: float = 200.0


def _file(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


VALID = (
    "version: 1\naccounts:\n  algolia-prod:\n    provider: algolia\n"
    "    application_id: ${ALGOLIA_APPLICATION_ID}\n    api_key: ${ALGOLIA_ADMIN_API_KEY}\n"
    '    hosts: ["${ALGOLIA_URL}"]\n'
)


def gen_huge_50mb(tmp: Path) -> Generated:
    path = tmp / "huge.yaml"
    with path.open("wb") as f:
        f.write(VALID.encode())
        line = b"# " + b"x" * 1021 + b"\n"
        for _ in range(50 * 1024):
            f.write(line)
    return Generated(path, [Expect("huge.yaml", 1, "configurations are limited to 10 MB")])


def gen_just_over_limit(tmp: Path) -> Generated:
    body = VALID.encode() + b"#" * (10 * 1024 * 1024 + 1 - len(VALID)) + b"\n"
    path = _file(tmp, "over.yaml", body)
    return Generated(path, [Expect("over.yaml", 1, "configurations are limited to 10 MB")])


def gen_million_nodes(tmp: Path) -> Generated:
    n = 1_100_000
    path = _file(tmp, "nodes.yaml", b"version: 1\nx: [" + b"a," * n + b"a]\n")
    return Generated(
        path,
        [Expect("nodes.yaml", 2, "more than 1,000,000 YAML nodes; split it")],
        max_rss_mib=768.0,
    )


def gen_deep_100k(tmp: Path) -> Generated:
    path = _file(tmp, "deep.yaml", b"version: 1\nx: " + b"[" * 100_000 + b"]" * 100_000 + b"\n")
    return Generated(
        path, [Expect("deep.yaml", 2, "YAML syntax error: exceeded maximum nesting depth")]
    )


def gen_long_name(tmp: Path) -> Generated:
    name = "K" * 1_000_000
    # An explicit key ("? ..."): YAML limits implicit keys to 1024 characters.
    text = VALID + f"keys:\n  algolia-prod:\n    ? {name}\n    : {{acl: [search]}}\n"
    path = _file(tmp, "long.yaml", text.encode())
    return Generated(path, [Expect("long.yaml", 10, "more characters)...KKKKKKKKKKK' is invalid")])


def gen_many_errors(tmp: Path) -> Generated:
    keys = "".join(f"    k{i}: {{acl: [serach]}}\n" for i in range(5000))
    path = _file(tmp, "many.yaml", (VALID + "keys:\n  algolia-prod:\n" + keys).encode())
    return Generated(
        path, [Expect("many.yaml", 10 + i, "did you mean 'search'?") for i in range(5000)]
    )


def gen_binary(tmp: Path) -> Generated:
    path = _file(tmp, "binary.yaml", b"version: 1\n" + bytes(range(256)) * 64)
    return Generated(path, [Expect("binary.yaml", 2, "binary file (contains NUL bytes)")])


def gen_random_bytes(tmp: Path) -> Generated:
    import random

    data = bytes(random.Random(5).getrandbits(8) for _ in range(65536))
    path = _file(tmp, "noise.yaml", data.replace(b"\x00", b"\x01"))
    return Generated(path, [Expect("noise.yaml", 1, "not UTF-8 text")])


def gen_latin1(tmp: Path) -> Generated:
    path = _file(tmp, "latin1.yaml", (VALID + "owner: caf\xe9\n").encode("latin-1"))
    return Generated(path, [Expect("latin1.yaml", 8, "not UTF-8 text (byte 0xe9)")])


def gen_utf16(tmp: Path) -> Generated:
    path = _file(tmp, "utf16.yaml", VALID.encode("utf-16"))
    return Generated(path, [Expect("utf16.yaml", 1, "UTF-16")])


def gen_control_chars(tmp: Path) -> Generated:
    path = _file(tmp, "ctrl.yaml", (VALID + "owner: team\x1b[2J\n").encode())
    return Generated(path, [Expect("ctrl.yaml", 8, "character U+001B is not allowed in YAML")])


def gen_empty(tmp: Path) -> Generated:
    path = _file(tmp, "empty.yaml", b"")
    return Generated(path, [Expect("empty.yaml", 1, "missing 'version: 1'")])


def _dir_with(tmp: Path) -> Path:
    d = tmp / "conf"
    d.mkdir()
    (d / "a.yaml").write_text(VALID + "keys:\n  algolia-prod:\n    web: {acl: [search]}\n")
    return d


def gen_symlink_loop(tmp: Path) -> Generated:
    d = _dir_with(tmp)
    (d / "loop1.yaml").symlink_to("loop2.yaml")
    (d / "loop2.yaml").symlink_to("loop1.yaml")
    return Generated(
        d,
        [
            Expect("conf/loop1.yaml", 1, "Too many levels of symbolic links"),
            Expect("conf/loop2.yaml", 1, "Too many levels of symbolic links"),
        ],
    )


def gen_self_loop_target(tmp: Path) -> Generated:
    link = tmp / "self.yaml"
    link.symlink_to("self.yaml")
    return Generated(link, [Expect(None, None, "Too many levels of symbolic links")])


def gen_dangling(tmp: Path) -> Generated:
    d = _dir_with(tmp)
    (d / "gone.yaml").symlink_to("nowhere.yaml")
    return Generated(d, [Expect("conf/gone.yaml", 1, "No such file or directory")])


def gen_device(tmp: Path) -> Generated:
    d = _dir_with(tmp)
    (d / "zero.yaml").symlink_to("/dev/zero")
    return Generated(d, [Expect("conf/zero.yaml", 1, "not a regular file")])


def gen_fifo(tmp: Path) -> Generated:
    d = _dir_with(tmp)
    os.mkfifo(d / "pipe.yaml")
    return Generated(d, [Expect("conf/pipe.yaml", 1, "not a regular file")])


def gen_subdirectory(tmp: Path) -> Generated:
    d = _dir_with(tmp)
    (d / "nested.yaml").mkdir()
    (d / "up.yml").symlink_to("..")
    return Generated(
        d,
        [
            Expect("conf/nested.yaml", 1, "not a regular file"),
            Expect("conf/up.yml", 1, "not a regular file"),
        ],
    )


def gen_sandbox_untouched(tmp: Path) -> Generated:
    path = _file(
        tmp,
        "sandbox.yaml",
        b"version: 1\naccounts:\n  a:\n    provider: algolia\n    sandbox: state.json\n"
        b"  c:\n    provider: coveo\n    sandbox: coveo-state.json\n"
        b"keys:\n  a:\n    k: {acl: [serach]}\n"
        b"  c:\n    k: {privileges: [{owner: SEARCH_API}]}\n",
    )
    return Generated(
        path,
        [
            Expect("sandbox.yaml", 11, "did you mean 'search'?"),
            Expect("sandbox.yaml", 13, "missing 'target_domain'"),
        ],
    )


GENERATORS: dict[str, Callable[[Path], Generated]] = {
    name[len("gen_") :].replace("_", "-"): fn
    for name, fn in sorted(globals().items())
    if name.startswith("gen_")
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_generated_input_in_a_real_process(
    name: str, command: str, emus: Emulators, figures: Figures, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    made = GENERATORS[name](work)
    before = tree_state(work)
    emus.reset()
    proc = run_process([command, "-c", str(made.target)], emus.env(), tmp_path / "rss")
    count_run(
        figures,
        command,
        proc.stdout + proc.stderr,
        emus.traffic(),
        tree_state(work) != before,
        process_seconds=proc.seconds,
        process_rss_mib=proc.max_rss_mib,
    )
    check_output(proc.stdout, proc.stderr, proc.exit_code, made.expects, lambda f: str(work / f))
    assert emus.traffic() == 0
    assert tree_state(work) == before
    assert proc.max_rss_mib < made.max_rss_mib, f"{proc.max_rss_mib:.0f} MiB"
