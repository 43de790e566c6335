"""The production path (docker compose) and the front door (README, Makefile, CI) stay true."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_compose_file_is_valid() -> None:
    run = subprocess.run(
        ["docker-compose", "-f", str(REPO / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert run.returncode == 0, run.stderr


def test_compose_runs_pgvector_pg18_and_points_the_service_at_it() -> None:
    doc = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert doc["services"]["db"]["image"] == "pgvector/pgvector:pg18"
    web = doc["services"]["web"]
    assert web["environment"]["DATABASE_URL"].startswith("postgresql://")
    assert "@db:5432/" in web["environment"]["DATABASE_URL"]
    assert web["build"] == "."


def test_dockerfile_copies_what_exists_and_runs_the_console_script() -> None:
    text = (REPO / "Dockerfile").read_text()
    for src in re.findall(r"^COPY (\S+) ", text, flags=re.MULTILINE):
        assert (REPO / src).exists(), src
    cmd = next(line for line in text.splitlines() if line.startswith("CMD "))
    assert "escape-vo serve" in cmd


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (REPO / "README.md").read_text()
    block = readme.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["make demo", "make test"]
    assert "make test" in (REPO / ".ci" / "run").read_text()
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, flags=re.MULTILINE)
    assert re.search(r"^test:", makefile, flags=re.MULTILINE)
