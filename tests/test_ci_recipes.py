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
        "algolia-prod/storefront-search",
        "coveo-prod/analytics-push",
    ]
    assert (checkout / "keystate-report.json").exists()

    result = runner.run("keystate-drift.yml", "drift", "Check for drift")
    assert result.returncode == 0, result.stderr
    assert runner.outputs()["drift"] == "false"

    # Someone edits a managed key in the dashboard: drift.
    state = checkout / ".keystate" / "algolia-prod.json"
    emulator = AlgoliaEmulator(state)
    value = next(
        k["value"]
        for k in emulator.snapshot()
        if "keystate:search-team/crawler" in k.get("description", "")
    )
    reply = emulator.handle(
        EmuRequest(
            "PUT",
            f"/1/keys/{value}",
            "",
            {"x-algolia-application-id": emulator.app_id, "x-algolia-api-key": emulator.admin_key},
            b'{"acl": ["deleteIndex"], "description": "keystate:search-team/crawler"}',
        )
    )
    assert reply.status == 200
    result = runner.run("keystate-drift.yml", "drift", "Check for drift")
    assert result.returncode == 0, result.stderr
    assert runner.outputs()["drift"] == "true"
    assert "## Drift" in runner.summary.read_text()

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
