"""The CI recipes in examples/ci/: valid GitHub Actions workflows, safe with secrets, and
their keystate commands really work — run here against the sandbox."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from keystate.emulators.algolia import AlgoliaEmulator
from keystate.emulators.http import EmuRequest

ROOT = Path(__file__).parent.parent
CI = ROOT / "examples" / "ci"
WORKFLOWS = sorted(CI.glob("*.yml"))
BIN = Path(sys.executable).parent
KEYSTATE_COMMAND = re.compile(
    r"(^|[\s;|&(])keystate\s+(--\S+\s+)*(validate|plan|apply|show|import|report)\b", re.M
)


def load(name: str) -> dict[Any, Any]:
    data = yaml.safe_load((CI / name).read_text())
    assert isinstance(data, dict)
    return data


def check(schema: str, *files: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflows_are_valid_github_actions_workflows() -> None:
    assert {w.name for w in WORKFLOWS} == {
        "keystate-access-review.yml",
        "keystate-plan.yml",
        "keystate-apply.yml",
        "keystate-drift.yml",
        "keystate-lifecycle.yml",
    }
    check("vendor.github-workflows", *WORKFLOWS)
    check("custom.github-workflows-require-timeout", *WORKFLOWS)


def test_secrets_never_reach_fork_pull_requests() -> None:
    for name in ("keystate-plan.yml", "keystate-apply.yml"):
        workflow = load(name)
        triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
        assert "pull_request_target" not in triggers, name
        for job_name, job in workflow["jobs"].items():
            uses_secrets = "secrets." in yaml.safe_dump(job)
            if uses_secrets:
                assert "head.repo.full_name == github.repository" in job.get("if", ""), (
                    name,
                    job_name,
                )


# A step's `uses:` line as Dependabot keeps it: a full commit SHA, the release in a comment.
PINNED_USES = re.compile(r"^\s*(?:- )?uses: ([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # (v\d+\.\d+\.\d+)$")


def all_steps(workflow: dict[Any, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def test_every_action_is_pinned_to_a_commit_sha_with_its_release_in_a_comment() -> None:
    pins: dict[str, set[tuple[str, str]]] = {}
    for path in WORKFLOWS:
        lines = [line for line in path.read_text().splitlines() if "uses:" in line]
        assert len(lines) == sum("uses" in step for step in all_steps(load(path.name)))
        for line in lines:
            match = PINNED_USES.match(line)
            assert match, f"{path.name}: not pinned to a commit SHA with its version: {line}"
            action, sha, version = match.groups()
            pins.setdefault(action, set()).add((sha, version))
    # One release per action across the recipes, so an update touches every copy.
    assert {action: len(releases) for action, releases in pins.items()} == dict.fromkeys(pins, 1)
    assert "actions/checkout" in pins


def test_checkouts_never_persist_the_token() -> None:
    checkouts = 0
    for path in WORKFLOWS:
        for step in all_steps(load(path.name)):
            if step.get("uses", "").startswith("actions/checkout@"):
                checkouts += 1
                assert step.get("with", {}).get("persist-credentials") is False, path.name
    assert checkouts >= 3  # every recipe but apply (which downloads the plan) checks out


# Least privilege: the workflows grant nothing by default; each job asks for what it uses.
JOB_PERMISSIONS = {
    ("keystate-plan.yml", "validate"): {"contents": "read"},
    ("keystate-plan.yml", "plan"): {"contents": "read", "pull-requests": "write"},
    ("keystate-apply.yml", "apply"): {"actions": "read"},
    ("keystate-drift.yml", "drift"): {"contents": "read", "issues": "write"},
    ("keystate-access-review.yml", "review"): {"contents": "read", "issues": "write"},
    ("keystate-lifecycle.yml", "lifecycle"): {"contents": "read"},
}


def test_token_permissions_are_declared_per_job_least_privilege() -> None:
    jobs = {}
    for path in WORKFLOWS:
        workflow = load(path.name)
        assert workflow["permissions"] == {}, path.name
        for job_name, job in workflow["jobs"].items():
            jobs[path.name, job_name] = job["permissions"]
            # A write scope only where a step uses it (the plan comment, the drift issue).
            if "write" in job["permissions"].values():
                assert any(
                    s.get("uses", "").startswith("actions/github-script@") for s in job["steps"]
                )
    assert jobs == JOB_PERMISSIONS


def test_no_event_data_is_interpolated_into_scripts() -> None:
    for path in WORKFLOWS:
        workflow = load(path.name)
        assert "pull_request_target" not in workflow[True], path.name
        for step in all_steps(workflow):
            assert "${{" not in step.get("run", ""), (path.name, step.get("name"))
            assert "${{" not in step.get("with", {}).get("script", ""), (path.name, step["name"])


def zizmor(*files: Path) -> subprocess.CompletedProcess[str]:
    """zizmor with the flags `make ci-audit` uses (read from the Makefile)."""
    line = next(line for line in (ROOT / "Makefile").read_text().splitlines() if "/zizmor " in line)
    flags = line.split("/zizmor ", 1)[1].replace("$(CI_RECIPES)", "").split()
    return subprocess.run(
        [str(BIN / "zizmor"), *flags, *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )


CHECKOUT = "uses: actions/checkout@11d5960a326750d5838078e36cf38b85af677262 # v4.4.0\n"
VALIDATE_PERMISSIONS = "    permissions:\n      contents: read\n    timeout-minutes: 10\n"


@pytest.mark.parametrize(
    ("finding", "edits"),
    [
        ("unpinned-uses", [(CHECKOUT, "uses: actions/checkout@v4\n")]),
        (
            "artipacked",
            [(CHECKOUT + "        with:\n          persist-credentials: false\n", CHECKOUT)],
        ),
        (
            # The recipes before hardening: pull-requests: write for every job.
            "excessive-permissions",
            [
                (VALIDATE_PERMISSIONS, "    timeout-minutes: 10\n"),
                ("permissions: {}\n", "permissions:\n  contents: read\n  pull-requests: write\n"),
            ],
        ),
        (
            "template-injection",
            [
                (
                    'run: keystate validate --strict -c "$KEYSTATE_CONFIG"',
                    "run: echo ${{ github.event.pull_request.title }}",
                )
            ],
        ),
    ],
)
def test_the_audit_fails_on_a_regression(
    tmp_path: Path, finding: str, edits: list[tuple[str, str]]
) -> None:
    assert zizmor(*WORKFLOWS).returncode == 0
    text = (CI / "keystate-plan.yml").read_text()
    for before, after in edits:
        assert before in text
        text = text.replace(before, after, 1)
    broken = tmp_path / "keystate-plan.yml"
    broken.write_text(text)
    result = zizmor(broken)
    assert result.returncode != 0
    assert f"[{finding}]" in result.stdout


def test_pre_commit_hook_runs_validate() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hooks[0]["id"] == "keystate-validate"
    assert hooks[0]["entry"].startswith("keystate validate")


def steps(name: str, job: str) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in load(name)["jobs"][job]["steps"] if "name" in s}


class Runner:
    """Runs a workflow step's script the way GitHub does (bash -e), in a sandbox checkout."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.output = workdir / "github_output"
        self.summary = workdir / "step_summary"

    def run(self, workflow: str, job: str, step: str) -> subprocess.CompletedProcess[str]:
        spec = steps(workflow, job)[step]
        script = spec["run"]
        assert KEYSTATE_COMMAND.search(script), f"{step} runs no keystate command"
        assert "${{" not in script, "expressions belong in env:, not in the script"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ALGOLIA", "COVEO"))}
        env.update({k: str(v) for k, v in load(workflow).get("env", {}).items()})
        for key, value in spec.get("env", {}).items():
            env[key] = "unused-by-the-sandbox" if "${{" in str(value) else str(value)
        env.update(
            PATH=f"{BIN}{os.pathsep}{env['PATH']}",
            GITHUB_OUTPUT=str(self.output),
            GITHUB_STEP_SUMMARY=str(self.summary),
            GITHUB_REPOSITORY="acme/keys",
            NO_COLOR="1",
        )
        self.output.write_text("")
        return subprocess.run(
            ["bash", "-e", "-c", script],
            cwd=self.workdir,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    def outputs(self) -> dict[str, str]:
        return dict(
            line.split("=", 1) for line in self.output.read_text().splitlines() if "=" in line
        )


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A repository checkout whose keystate.yaml is the quickstart, on the sandbox."""
    quickstart = ROOT / "examples" / "quickstart"
    shutil.copy(quickstart / "keystate.yaml", tmp_path / "keystate.yaml")
    (tmp_path / ".keystate").mkdir()
    for seed in (quickstart / "seed").glob("*.json"):
        shutil.copy(seed, tmp_path / ".keystate" / seed.name)
    return tmp_path


def test_plan_apply_and_drift_workflows_against_the_sandbox(checkout: Path) -> None:
    runner = Runner(checkout)

    result = runner.run(
        "keystate-plan.yml", "validate", "Validate and lint (offline, no credentials)"
    )
    assert result.returncode == 0, result.stderr

    result = runner.run("keystate-plan.yml", "plan", "Plan")
    assert result.returncode == 0, result.stderr
    assert runner.outputs()["exit_code"] == "2"
    comment = (checkout / "keystate-plan.md").read_text()
    assert comment.startswith("<!-- keystate-plan -->")
    assert (checkout / "keystate-plan.json").exists()
    assert (
        "keystate-plan" in runner.summary.read_text()
        or comment.strip() in runner.summary.read_text()
    )

    result = runner.run("keystate-apply.yml", "apply", "Apply the saved plan")
    assert result.returncode == 0, result.stdout + result.stderr
    created = [json.loads(line)["address"] for line in (checkout / "new-keys.jsonl").open()]
    assert sorted(created) == [
        "algolia-prod/crawler",
        "algolia-prod/storefront-autocomplete",  # rotated: its seeded key is 90+ days old
        "algolia-prod/storefront-search",
        "coveo-prod/analytics-push",
    ]
    assert (checkout / "keystate-report.json").exists()

    # The nightly lifecycle run: nothing is due right after the apply.
    result = runner.run("keystate-lifecycle.yml", "lifecycle", "Rotate and retire what is due")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes." in result.stdout

    result = runner.run("keystate-drift.yml", "drift", "Check for drift")
    assert result.returncode == 0, result.stderr
    assert runner.outputs()["drift"] == "false"

    # Someone edits a managed key in the dashboard: drift.
    state = checkout / ".keystate" / "algolia-prod.json"
    emulator = AlgoliaEmulator(state)
    crawler = next(
        k
        for k in emulator.snapshot()
        if "keystate:search-team/crawler#" in k.get("description", "")
    )
    value = crawler["value"]
    reply = emulator.handle(
        EmuRequest(
            "PUT",
            f"/1/keys/{value}",
            "",
            {"x-algolia-application-id": emulator.app_id, "x-algolia-api-key": emulator.admin_key},
            json.dumps({"acl": ["deleteIndex"], "description": crawler["description"]}).encode(),
        )
    )
    assert reply.status == 200
    result = runner.run("keystate-drift.yml", "drift", "Check for drift")
    assert result.returncode == 0, result.stderr
    assert runner.outputs()["drift"] == "true"
    summary = runner.summary.read_text()
    assert "## Drift" in summary
    # Told apart from a change of the configuration (the marker's digest still matches).
    assert "Note: keys changed outside of keystate (drift)" in summary
    assert "~ algolia-prod/crawler: acl" in summary

    # A broken configuration is an error, not drift.
    (checkout / "keystate.yaml").write_text("version: 1\naccounts: [\n")
    result = runner.run("keystate-drift.yml", "drift", "Check for drift")
    assert result.returncode == 1
    assert "::error::keystate plan failed (exit 1)" in result.stdout


def test_access_review_workflow_against_the_sandbox(checkout: Path) -> None:
    runner = Runner(checkout)
    result = runner.run("keystate-access-review.yml", "review", "Review")
    assert result.returncode == 0, result.stdout + result.stderr
    # The quickstart sandbox has unmanaged and exposed keys: the gates trip.
    assert runner.outputs()["tripped"] == "true"
    assert "Gate tripped: exposed" in result.stdout
    page = (checkout / "access-review.html").read_text()
    assert 'id="matrix"' in page
    summary = runner.summary.read_text()
    assert summary.startswith("<!-- keystate-report -->")
    workflow = load("keystate-access-review.yml")
    upload = steps("keystate-access-review.yml", "review")["Upload the review"]
    assert "access-review.html" in upload["with"]["path"]
    assert workflow["jobs"]["review"]["permissions"] == {"contents": "read", "issues": "write"}


def test_the_validate_job_needs_no_secrets(checkout: Path) -> None:
    """Fork pull requests have no secrets: the validate job, as written, passes on a
    configuration whose accounts take every credential from ${VAR}s that are unset."""
    readme = (ROOT / "README.md").read_text()
    config = readme.split("```yaml\n# keystate.yaml\n", 1)[1].split("```", 1)[0]
    (checkout / "keystate.yaml").write_text(config)
    runner = Runner(checkout)  # runs steps with no ALGOLIA_*/COVEO_* variable
    result = runner.run(
        "keystate-plan.yml", "validate", "Validate and lint (offline, no credentials)"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Configuration is valid: 2 accounts, 2 keys." in result.stdout
    assert "Not checked without credentials" in result.stdout
    # The pre-commit hook runs the same check.
    hook = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALGOLIA", "COVEO"))}
    entry = hook["entry"].split()
    done = subprocess.run(
        [str(BIN / entry[0]), *entry[1:], "-c", "keystate.yaml"],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
