"""The Dockerfile's install steps work on the build context that .dockerignore leaves.

The context of a clean clone (the checkout's files minus .dockerignore) is copied into a
scratch directory that stands for the image's WORKDIR, the Dockerfile's COPY steps are
checked against it, and its RUN steps that install (the ``uv`` commands, with the Dockerfile's
ENV) run there against a scratch virtualenv in place of /opt/venv. The installed package must
then run as the image would run it: ``docmill --help``, the bundled demo documents found in
the package, ``docmill demo`` from an empty directory, and exactly the pinned versions.

Packages come from the index uv is set up for on this machine (its cache makes a rerun quick);
building the real image with podman is deploy/check-image.sh.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from build_context import ROOT, context_files, copy_context, dockerfile_steps, env_assignments
from conftest import require_program

DOCKERFILE = ROOT / "Dockerfile"
EXAMPLES = ROOT / "examples" / "documents"
# Where the image keeps things, and what stands for each here.
IMAGE_VENV = "/opt/venv"
IMAGE_WORKDIR = "/app"
# ENV of the image that would only slow the test down: the test uses uv's cache and skips
# compiling bytecode.
SKIPPED_ENV = {"UV_NO_CACHE", "UV_COMPILE_BYTECODE"}
# Variables of the caller's environment that would steer the commands elsewhere.
DROPPED_ENV = {
    "VIRTUAL_ENV",
    "UV_PROJECT_ENVIRONMENT",
    "UV_PYTHON",
    "PYTHONPATH",
    "PYTHONHOME",
    "CLAUDE_API_KEY",
    "ANTHROPIC_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
    "DOCMILL_LLM_PROVIDER",
    "DOCMILL_ENV",
}


@dataclass
class Installed:
    workdir: Path  # stands for /app
    venv: Path  # stands for /opt/venv
    env: dict[str, str]
    ran: list[str]  # the install commands run, as written in the Dockerfile

    def run(self, *argv: str, cwd: Path, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, capture_output=True, text=True, env=self.env, cwd=cwd, timeout=timeout_s)


def image_path(value: str, venv: Path, workdir: Path) -> str:
    """``value`` with the image's absolute paths replaced by the scratch ones."""
    value = re.sub(rf"(?<![\w/]){re.escape(IMAGE_VENV)}(?![\w.-])", str(venv), value)
    return re.sub(rf"(?<![\w/]){re.escape(IMAGE_WORKDIR)}(?![\w.-])", str(workdir), value)


def expand(value: str, env: dict[str, str]) -> str:
    """$NAME and ${NAME} as a Dockerfile's ENV expands them."""
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env.get(m.group(1) or m.group(2), ""), value)


def install_commands(run_arguments: str) -> list[str]:
    """The commands of one RUN line that install into the virtualenv: those starting with uv."""
    commands = [part.strip() for part in run_arguments.split("&&")]
    return [command for command in commands if shlex.split(command)[:1] == ["uv"]]


@pytest.fixture(scope="module")
def uv() -> str:
    return require_program("uv", "the Dockerfile installs with it")


@pytest.fixture(scope="module")
def installed(uv: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    scratch = tmp_path_factory.mktemp("image")
    context, workdir, venv = scratch / "context", scratch / "app", scratch / "venv"
    copy_context(context)
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
    # `python3` in the Dockerfile is this test's Python, as the base image's is 3.11.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    ran: list[str] = []
    for kind, arguments in dockerfile_steps(DOCKERFILE):
        if kind == "ENV":
            for key, value in env_assignments(arguments).items():
                if key not in SKIPPED_ENV:
                    env[key] = expand(image_path(value, venv, workdir), env)
        elif kind == "WORKDIR":
            assert arguments == IMAGE_WORKDIR, "the test stands a scratch directory for WORKDIR /app"
        elif kind == "COPY":
            *sources, dest = shlex.split(arguments)
            assert not any(s.startswith("--") for s in sources), (
                f"COPY {arguments}: options are not read here"
            )
            for source in sources:
                copy_step(context / source, workdir / dest, source, dest)
        elif kind == "RUN":
            for command in install_commands(arguments):
                done = subprocess.run(
                    ["sh", "-c", image_path(command, venv, workdir)],
                    capture_output=True,
                    text=True,
                    env=env,
                    cwd=workdir,
                    timeout=300,
                )
                assert done.returncode == 0, f"RUN {command} failed:\n{done.stdout}\n{done.stderr}"
                ran.append(command)
    yield Installed(workdir, venv, env, ran)


def copy_step(source: Path, dest: Path, source_text: str, dest_text: str) -> None:
    assert source.exists(), (
        f"COPY {source_text} {dest_text}: {source_text} is not in the build context "
        "(.dockerignore leaves it out)"
    )
    if source.is_dir():
        shutil.copytree(source, dest, dirs_exist_ok=True)
    else:
        target = dest / source.name if dest_text.endswith("/") else dest
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def test_the_dockerfile_installs_the_pins_then_the_project_without_dependencies(installed: Installed) -> None:
    assert installed.ran == [
        'uv venv --python python3 "$VIRTUAL_ENV"',
        "uv pip install --requirement requirements.txt",
        "uv pip install --no-deps .",
        "uv pip check",
    ]
    assert (installed.venv / "bin" / "python").exists()


def test_the_installed_cli_starts(installed: Installed, tmp_path: Path) -> None:
    result = installed.run(str(installed.venv / "bin" / "docmill"), "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    for command in ("supervise", "serve", "queue", "demo"):
        assert command in result.stdout


def test_the_demo_documents_ship_inside_the_installed_package(installed: Installed, tmp_path: Path) -> None:
    probe = (
        "import json, docmill.demo as d; f = d.find_examples(); "
        "print(json.dumps([str(f), sorted(p.name for p in f.iterdir())]))"
    )
    result = installed.run(str(installed.venv / "bin" / "python"), "-c", probe, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    folder, names = json.loads(result.stdout)
    assert Path(folder).is_relative_to(installed.venv), f"the demo's documents come from {folder}"
    assert Path(folder).parts[-3:] == ("docmill", "demo", "examples")
    assert names == sorted(p.name for p in EXAMPLES.iterdir() if p.is_file())


def test_the_installed_demo_runs_from_an_empty_directory(installed: Installed, tmp_path: Path) -> None:
    result = installed.run(str(installed.venv / "bin" / "docmill"), "demo", cwd=tmp_path, timeout_s=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 of 6 documents completed" in result.stdout
    assert "broken-truncated.pdf failed" in result.stdout


def test_the_environment_holds_exactly_the_pinned_versions(installed: Installed, tmp_path: Path) -> None:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate():
                pins[canonicalize_name(requirement.name)] = next(iter(requirement.specifier)).version
    frozen = installed.run("uv", "pip", "freeze", cwd=tmp_path)
    assert frozen.returncode == 0, frozen.stderr
    lines = frozen.stdout.splitlines()
    # The project itself is installed from the context: "docmill @ file:///...".
    assert [line for line in lines if "==" not in line] == [
        line for line in lines if canonicalize_name(line.split(" @ ")[0]) == "docmill"
    ]
    versions = dict(line.split("==", 1) for line in lines if "==" in line)
    assert {canonicalize_name(name): version for name, version in versions.items()} == pins


def test_the_context_holds_what_the_wheel_force_includes() -> None:
    files = context_files()
    assert any(name.startswith("examples/documents/") for name in files)
    assert not any(name.startswith(("tests/", ".venv/", "storage/")) or name == ".env" for name in files)
