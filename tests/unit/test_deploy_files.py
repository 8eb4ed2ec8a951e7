"""The deployment files stay true to the CLI and to the pools' stop settings.

Checked by reading them: every `docmill` command in the Dockerfile, docker-compose.yml,
the supervisord and systemd files, bin/queue-status.sh and docs/operations.md exists with the
options it is given; no file holds a password; every stop timeout covers the pools' default
``stop_wait_s``; docker-compose.yml has the services, volumes, health checks and required
secrets an operator relies on; the image's build context (.dockerignore) holds what the
Dockerfile copies and nothing secret; supervisord starts only with its web UI's credentials.
`docker compose config` runs too where a compose plugin exists.
"""

from __future__ import annotations

import configparser
import dataclasses
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from build_context import IgnorePattern, compile_pattern, is_excluded, read_dockerignore, tree_files
from docmill.cli.main import app
from docmill.queue.worker_main import build_parser
from docmill.supervisor import load_config
from docmill.supervisor.config import PoolConfig
from docmill.supervisor.pool import KILL_MARGIN_S

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
SUPERVISOR_PROGRAM = ROOT / "deploy" / "supervisor" / "conf.d" / "docmill.conf"
SUPERVISORD = ROOT / "deploy" / "supervisor" / "supervisord.conf"
SYSTEMD = ROOT / "deploy" / "systemd"
EXAMPLE_TOML = ROOT / "deploy" / "docmill.toml.example"
SCRIPT = ROOT / "bin" / "queue-status.sh"
START_SUPERVISORD = ROOT / "deploy" / "supervisor" / "start-supervisord.sh"
PYPROJECT = ROOT / "pyproject.toml"
OPERATIONS = ROOT / "docs" / "operations.md"
DEPLOY_FILES = [
    DOCKERFILE,
    ROOT / ".dockerignore",
    COMPOSE,
    ENV_EXAMPLE,
    SCRIPT,
    OPERATIONS,
    *sorted(p for p in (ROOT / "deploy").rglob("*") if p.is_file()),
]
# Commands the deployment files name before the CLI has them; each case skips until it does.
PENDING_COMMANDS = {"serve": "docmill serve (the API) is not in the CLI yet"}
DEFAULT_STOP_WAIT_S = next(f.default for f in dataclasses.fields(PoolConfig) if f.name == "stop_wait_s")
# Every stop timeout must let running jobs have stop_wait_s and the master its kill margin.
LEAST_STOP_S = float(DEFAULT_STOP_WAIT_S) + KILL_MARGIN_S  # type: ignore[arg-type]
SECRETS = (
    "REDIS_PASSWORD",
    "POSTGRES_PASSWORD",
    "CLAUDE_API_KEY",
    "OPENAI_API_KEY",
    "DOCMILL_API_TOKENS",
    "DOCMILL_WEBHOOK_SECRET",
    "SUPERVISOR_PASSWORD",
)


# ----------------------------------------------------------------------------- YAML


def read_yaml(text: str) -> Any:
    """docker-compose.yml as data: PyYAML when installed, else ``parse_block_yaml``."""
    try:
        import yaml
    except ImportError:
        return parse_block_yaml(text)
    return yaml.safe_load(text)


def parse_block_yaml(text: str) -> Any:
    """The block-style YAML docker-compose.yml is written in: nested mappings, sequences of
    scalars, JSON-style flow lists and quoted strings. Anything else raises ValueError, so the
    file stays inside what this reader (and every YAML reader) agrees on."""
    lines: list[tuple[int, str]] = []
    for raw in text.splitlines():
        line = _strip_comment(raw).rstrip()
        if line.strip():
            if "\t" in line[: len(line) - len(line.lstrip())]:
                raise ValueError(f"tab in indentation: {raw!r}")
            lines.append((len(line) - len(line.lstrip(" ")), line.strip()))
    value, end = _block(lines, 0, lines[0][0])
    if end != len(lines):
        raise ValueError(f"unexpected indentation at {lines[end][1]!r}")
    return value


def _strip_comment(line: str) -> str:
    quote = ""
    for i, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'" and (i == 0 or line[i - 1] in " [:-,"):
            quote = char
        elif char == "#" and (i == 0 or line[i - 1] == " "):
            return line[:i]
    return line


def _block(lines: list[tuple[int, str]], i: int, indent: int) -> tuple[Any, int]:
    if lines[i][1].startswith("- "):
        items: list[Any] = []
        while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
            items.append(_scalar(lines[i][1][2:].strip()))
            i += 1
        return items, i
    mapping: dict[str, Any] = {}
    while i < len(lines) and lines[i][0] == indent:
        key, colon, rest = lines[i][1].partition(":")
        if not colon or key in mapping or rest[:1] not in ("", " "):
            raise ValueError(f"not a new mapping key: {lines[i][1]!r}")
        i += 1
        if rest.strip():
            mapping[key] = _scalar(rest.strip())
        elif i < len(lines) and lines[i][0] > indent:
            mapping[key], i = _block(lines, i, lines[i][0])
        else:
            mapping[key] = None
    return mapping, i


def _scalar(text: str) -> Any:
    if text[0] in '["{':
        return json.loads(text)
    if text[0] in "'&*!|>{":
        raise ValueError(f"unsupported YAML: {text!r}")
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return {"true": True, "false": False, "null": None}.get(text, text)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = read_yaml(COMPOSE.read_text())
    return data


def test_the_block_yaml_reader_agrees_with_pyyaml() -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed; the built-in reader is used alone")
    assert parse_block_yaml(COMPOSE.read_text()) == yaml.safe_load(COMPOSE.read_text())


def test_the_block_yaml_reader_reads_what_compose_files_use() -> None:
    text = 'a:\n  b: 1  # note\n  c:\n    - x\n    - "y #1"\n  d: ["CMD", "ping"]\n  e:\nf: true\n'
    assert parse_block_yaml(text) == {
        "a": {"b": 1, "c": ["x", "y #1"], "d": ["CMD", "ping"], "e": None},
        "f": True,
    }
    with pytest.raises(ValueError):
        parse_block_yaml("a: &anchor\n  b: 1\n")


# ----------------------------------------------------------------------------- compose


def test_compose_runs_redis_postgres_the_api_and_the_supervisor(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"redis", "postgres", "api", "supervisor"}
    assert set(compose["volumes"]) == {"redis-data", "postgres-data", "storage"}


def test_redis_keeps_its_data_in_an_append_only_file_on_a_volume(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    assert "--appendonly yes" in " ".join(redis["command"])
    assert "redis-data:/data" in redis["volumes"]
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    # The shell reads the password; the image's entry point gets `redis-server ...`, the one
    # command it runs as the user redis instead of root.
    assert redis["command"][:2] == ["sh", "-c"]
    assert redis["command"][2].startswith("exec docker-entrypoint.sh redis-server ")
    # redis-cli authenticates with REDISCLI_AUTH, so the health check needs no password argument
    assert redis["environment"]["REDISCLI_AUTH"].startswith("${REDIS_PASSWORD:?")


def test_postgres_keeps_its_data_on_a_volume_and_reports_readiness(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    assert "postgres-data:/var/lib/postgresql/data" in postgres["volumes"]
    assert postgres["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]


@pytest.mark.parametrize("name", ["api", "supervisor"])
def test_docmill_services_take_the_env_file_and_wait_for_healthy_services(
    compose: dict[str, Any], name: str
) -> None:
    service = compose["services"][name]
    assert service["env_file"] == ".env"
    assert service["build"] == "."
    assert service["depends_on"] == {
        "redis": {"condition": "service_healthy"},
        "postgres": {"condition": "service_healthy"},
    }
    assert "storage:/app/storage" in service["volumes"]
    assert service["environment"]["QUEUE_CONNECTION"] == "redis"
    # `docmill queue status` names hosts by their host name (and `--local` picks this one's
    # master by it): a fixed, readable one instead of the container's id.
    assert service["hostname"] == f"docmill-{name}"


def test_the_supervisor_service_stops_gracefully_and_reports_health_by_queue_status(
    compose: dict[str, Any],
) -> None:
    supervisor = compose["services"]["supervisor"]
    assert supervisor["command"] == ["supervise"]
    assert supervisor["healthcheck"]["test"] == ["CMD", "docmill", "queue", "status", "--local"]
    assert supervisor["stop_signal"] == "SIGTERM"
    assert supervisor["init"] is True
    assert seconds(supervisor["stop_grace_period"]) >= LEAST_STOP_S


def test_the_api_is_published_on_loopback_only_and_needs_tokens(compose: dict[str, Any]) -> None:
    api = compose["services"]["api"]
    assert all(port.startswith("127.0.0.1:") for port in api["ports"])
    assert api["environment"]["DOCMILL_API_TOKENS"].startswith("${DOCMILL_API_TOKENS:?")


def test_compose_secrets_are_required_and_never_defaulted() -> None:
    text = COMPOSE.read_text()
    references = re.findall(r"\$\{([A-Z0-9_]+)([^}]*)\}", text)
    assert {name for name, _ in references} >= {"REDIS_PASSWORD", "POSTGRES_PASSWORD", "DOCMILL_API_TOKENS"}
    for name, rest in references:
        assert rest.startswith(":?"), f"${{{name}{rest}}} must be required with :? and have no default"


def seconds(value: str | int) -> float:
    """A compose duration ("3660s", "1h1m", 90) in seconds."""
    if isinstance(value, int):
        return float(value)
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", value)
    assert parts and "".join(n + u for n, u in parts) == value, f"not a duration: {value!r}"
    return sum(float(n) * units[u] for n, u in parts)


def test_docker_compose_accepts_the_file_with_an_env_file(tmp_path: Path) -> None:
    if shutil.which("docker") is None:
        pytest.skip("no docker client on this machine")
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(
            "the docker client has no compose plugin: "
            + (probe.stderr or probe.stdout).strip().splitlines()[0]
        )
    shutil.copy(COMPOSE, tmp_path / "docker-compose.yml")
    env = ENV_EXAMPLE.read_text()
    for name in SECRETS:
        env = env.replace(f"\n{name}=\n", f"\n{name}=test-{name.lower()}\n")
    (tmp_path / ".env").write_text(env)
    ok = subprocess.run(
        ["docker", "compose", "-f", str(tmp_path / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert ok.returncode == 0, ok.stderr
    (tmp_path / ".env").write_text(ENV_EXAMPLE.read_text())  # secrets left empty
    refused = subprocess.run(
        ["docker", "compose", "-f", str(tmp_path / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert refused.returncode != 0 and "REDIS_PASSWORD" in refused.stderr


# ----------------------------------------------------------------------------- Dockerfile


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in (raw.strip() for raw in text.splitlines())
        if line and not line.startswith("#")
    ]


def test_the_image_installs_the_pins_apart_from_the_source_and_runs_unprivileged() -> None:
    steps = dockerfile_instructions()
    order = [f"{kind} {arg}" for kind, arg in steps]
    # The base image is an argument (a locally built one where no registry answers), with the
    # official slim image as its default.
    assert steps[0] == ("ARG", "BASE_IMAGE=python:3.11-slim")
    assert steps[1] == ("FROM", "${BASE_IMAGE}")

    def index(pattern: str) -> int:
        found = [i for i, step in enumerate(order) if re.search(pattern, step)]
        assert len(found) == 1, f"{pattern!r} should match one Dockerfile step, matches {len(found)}"
        return found[0]

    assert index(r"^RUN python3 -m pip install .*\buv==") < index(r"^COPY requirements\.txt \./$")
    assert index(r"^COPY requirements\.txt \./$") < index(
        r"^RUN uv pip install --requirement requirements\.txt$"
    )
    assert index(r"^RUN uv pip install --requirement requirements\.txt$") < index(r"^COPY src ")
    assert index(r"^COPY src ") < index(r"^RUN uv pip install --no-deps \.\s+&&\s+uv pip check\b")
    # Nothing but the pins may bring dependencies in: the project goes in with --no-deps only.
    installs = [arg for kind, arg in steps if kind == "RUN" and "pip install" in arg]
    assert all("--no-deps" in arg or "requirements.txt" in arg or "uv==" in arg for arg in installs)
    users = [arg for kind, arg in steps if kind == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert index(r"^USER ") < index(r"^ENTRYPOINT ")


def copied_sources() -> list[str]:
    sources = []
    for kind, arg in dockerfile_instructions():
        if kind == "COPY":
            words = arg.split()
            assert not any(w.startswith("--") for w in words), f"COPY {arg}: options are not checked here"
            sources += [w.rstrip("*") for w in words[:-1]]
    return sources


@pytest.fixture(scope="module")
def context() -> list[str]:
    """The build context of this checkout, as .dockerignore leaves it."""
    return tree_files(ROOT)


def test_every_file_the_dockerfile_copies_is_in_the_build_context(context: list[str]) -> None:
    for source in copied_sources():
        assert any(name == source or name.startswith(source.rstrip("/") + "/") for name in context), (
            f"COPY {source}: .dockerignore leaves it out of the build context"
        )


def test_what_the_wheel_force_includes_is_in_the_context_and_copied(context: list[str]) -> None:
    """hatchling fails the build (`Forced include not found`) when a force-included path is
    missing, so each must reach the image: in the context, and copied."""
    import tomllib

    targets = tomllib.loads(PYPROJECT.read_text())["tool"]["hatch"]["build"]["targets"]["wheel"]
    included = list(targets.get("force-include", {}))
    assert "examples/documents" in included
    copied = copied_sources()
    for path in included:
        assert any(name.startswith(path.rstrip("/") + "/") or name == path for name in context), path
        assert any(path == c or path.startswith(c.rstrip("/") + "/") for c in copied), (
            f"the Dockerfile never copies {path}"
        )
    # and the rest of what hatchling reads: the readme, the package
    for path in ("pyproject.toml", "README.md", "requirements.txt", "src/docmill/__init__.py"):
        assert path in context


def test_the_build_context_holds_no_secret_environment_lock_or_tests(context: list[str]) -> None:
    assert not [
        name
        for name in context
        if name.startswith((".env", ".git/", ".venv/", "storage/", "tests/", "bench/", "deploy/"))
        or name == "uv.lock"
        or "__pycache__" in name
    ]


def ignore(*lines: str) -> list[IgnorePattern]:
    return [p for p in map(compile_pattern, lines) if p is not None]


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        (["*"], "src/docmill/x.py", True),  # a parent directory matches
        (["*", "!src"], "src/docmill/x.py", False),
        (["*", "!src", "**/__pycache__"], "src/docmill/__pycache__/x.pyc", True),
        (["*", "!examples/documents"], "examples/documents/a.pdf", False),
        (["*", "!examples/documents"], "examples/make_examples.py", True),
        (["examples"], "examples/documents/a.pdf", True),  # the cause of "Forced include not found"
        (["*.md"], "README.md", True),
        (["*.md"], "docs/operations.md", False),  # * stays within one segment
        (["**/*.md"], "docs/operations.md", True),
        (["/bench"], "bench/run.py", True),
        (["# comment", "tests"], "tests/unit/x.py", True),
        (["doc?"], "docs/a", True),
        (["[a-c]ench"], "bench/a", True),
        (["!README.md"], "README.md", False),
    ],
)
def test_the_dockerignore_reader_follows_the_builders_rules(
    patterns: list[str], path: str, excluded: bool
) -> None:
    assert is_excluded(path, ignore(*patterns)) is excluded


def test_the_dockerignore_is_read_with_its_let_back_patterns() -> None:
    patterns = read_dockerignore(ROOT / ".dockerignore")
    assert patterns[0].text == "*" and not patterns[0].exclusion
    assert {p.text for p in patterns if p.exclusion} >= {"src", "examples/documents", "requirements.txt"}


# ----------------------------------------------------------------------------- commands


SHELL_OPERATORS = {"|", "||", "&&", ";", "&"}


def docmill_argvs(text: str) -> list[list[str]]:
    """The arguments of every command in a shell-like text that runs docmill.

    docmill runs when it is a command's first word (a path ending in /docmill too), after
    ``uv run``, after ``docker compose exec SERVICE``, and as the image's entry point after
    ``docker compose run SERVICE``. Redirections end the arguments.
    """
    found = []
    for line in text.replace("\\\n", " ").splitlines():
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError:
            continue
        segment: list[str] = []
        for token in [*tokens, ";"]:
            if token not in SHELL_OPERATORS:
                segment.append(token)
                continue
            argv = _docmill_arguments(segment)
            if argv is not None:
                found.append([a for a in argv if not re.match(r"^\d*>", a)])
            segment = []
    return found


def _docmill_arguments(words: list[str]) -> list[str] | None:
    i = 0
    while i < len(words) and re.match(r"^[A-Z_]+=", words[i]):
        i += 1  # VAR=value before the command
    if words[i : i + 1] in (["sudo"], ["exec"]):
        i += 1
    if words[i : i + 2] == ["uv", "run"]:
        i += 2
        while i < len(words) and words[i].startswith("-"):
            i += 2 if words[i] in ("--project", "--directory") else 1
    if words[i : i + 2] == ["docker", "compose"] and len(words) > i + 2 and words[i + 2] in ("exec", "run"):
        verb, i = words[i + 2], i + 3
        while i < len(words) and words[i].startswith("-"):
            i += 1
        i += 1  # the service
        if verb == "run":
            return words[i:]
    if i < len(words) and (words[i] == "docmill" or words[i].endswith("/docmill")):
        return words[i + 1 :]
    return None


def commands_in_deploy_files() -> list[tuple[str, list[str]]]:
    cases: list[tuple[str, list[str]]] = []
    steps = dockerfile_instructions()
    entrypoint = json.loads(next(arg for kind, arg in steps if kind == "ENTRYPOINT"))
    assert entrypoint == ["docmill"]
    cases.append(("Dockerfile CMD", json.loads(next(arg for kind, arg in steps if kind == "CMD"))))
    services = read_yaml(COMPOSE.read_text())["services"]
    for name in ("api", "supervisor"):
        cases.append((f"docker-compose.yml {name}", services[name]["command"]))
    health = services["supervisor"]["healthcheck"]["test"]
    cases.append(("docker-compose.yml supervisor healthcheck", health[2:]))
    program = configparser.RawConfigParser()
    program.read(SUPERVISOR_PROGRAM)
    for argv in docmill_argvs(program["program:docmill"]["command"]):
        cases.append(("deploy/supervisor/conf.d/docmill.conf", argv))
    for unit in sorted(SYSTEMD.glob("*.service")):
        for line in unit.read_text().splitlines():
            if line.startswith("ExecStart="):
                for argv in docmill_argvs(line.removeprefix("ExecStart=")):
                    cases.append((f"deploy/systemd/{unit.name}", argv))
    script = SCRIPT.read_text()
    mapped = re.search(r"^\s*([a-z| ]+)\)\n\s*exec \"\$\{docmill\[@\]\}\" queue \"\$command\"", script, re.M)
    assert mapped is not None
    for verb in mapped.group(1).replace(" ", "").split("|"):
        cases.append(("bin/queue-status.sh", ["queue", verb]))
    for verb in re.findall(r"exec \"\$\{docmill\[@\]\}\" queue ([a-z]+)", script):
        cases.append(("bin/queue-status.sh", ["queue", verb]))
    return cases


def commands_in_operations_doc() -> list[tuple[str, list[str]]]:
    text = OPERATIONS.read_text()
    cases = []
    for block in re.findall(r"```(?:bash|sh|console)\n(.*?)```", text, re.S):
        for argv in docmill_argvs(block):
            cases.append(("docs/operations.md", argv))
    for span in re.findall(r"`(docmill [^`]+)`", text):
        for argv in docmill_argvs(span):
            cases.append(("docs/operations.md", argv))
    return cases


def is_group(command: Any) -> bool:
    return hasattr(command, "commands")


def resolve(argv: list[str]) -> tuple[list[str], Any, list[str]]:
    """The subcommand path, the command it names, and the options given to it."""
    command: Any = typer.main.get_command(app)
    path: list[str] = []
    rest = list(argv)
    while is_group(command) and rest and not rest[0].startswith("-"):
        name = rest.pop(0)
        sub = command.commands.get(name)
        if sub is None:
            if name in PENDING_COMMANDS:
                pytest.skip(PENDING_COMMANDS[name])
            known = ", ".join(sorted(command.commands))
            raise AssertionError(f"docmill {' '.join([*path, name])}: no such command (there are: {known})")
        path.append(name)
        command = sub
    options = [token.split("=", 1)[0] for token in rest if token.startswith("-") and token != "-"]
    return path, command, options


ALL_COMMANDS = commands_in_deploy_files() + (commands_in_operations_doc() if OPERATIONS.exists() else [])


@pytest.mark.parametrize(
    ("where", "argv"), ALL_COMMANDS, ids=[f"{w}: docmill {' '.join(a)}" for w, a in ALL_COMMANDS]
)
def test_every_docmill_command_in_the_deploy_files_exists_with_its_options(
    where: str, argv: list[str]
) -> None:
    path, command, options = resolve(argv)
    assert not is_group(command) or "--help" in options, (
        f"{where}: docmill {' '.join(argv)} names a command group, not a command"
    )
    if path == ["queue", "work"]:
        # `queue work` hands its arguments to the lean worker entry point, which has its own parser.
        parser = build_parser()
        known = {opt for action in parser._actions for opt in action.option_strings}
        help_text = parser.format_help()
        assert "--queue" in help_text
    else:
        known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
        known.add("--help")
        result = CliRunner().invoke(app, [*path, "--help"], terminal_width=200)
        assert result.exit_code == 0, result.output
    unknown = [option for option in options if option not in known]
    assert not unknown, f"{where}: docmill {' '.join(argv)}: unknown option(s) {unknown}"


def test_the_operations_doc_documents_commands() -> None:
    assert len(commands_in_operations_doc()) >= 20


# ----------------------------------------------------------------------------- stop timeouts


def test_supervisord_waits_longer_than_the_pools_let_jobs_finish() -> None:
    program = configparser.RawConfigParser()
    program.read(SUPERVISOR_PROGRAM)
    section = program["program:docmill"]
    assert float(section["stopwaitsecs"]) >= LEAST_STOP_S
    assert (section["stopsignal"], section["stopasgroup"], section["killasgroup"]) == ("TERM", "true", "true")
    assert section["autorestart"] == "true"
    assert section["user"] not in ("root", "0")


def systemd_unit(name: str) -> configparser.RawConfigParser:
    unit = configparser.RawConfigParser(strict=False)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(SYSTEMD / name)
    return unit


def test_the_systemd_unit_stops_the_master_alone_and_waits_for_its_jobs() -> None:
    service = systemd_unit("docmill.service")["Service"]
    assert float(service["TimeoutStopSec"]) >= LEAST_STOP_S
    assert (service["KillSignal"], service["KillMode"]) == ("SIGTERM", "mixed")
    assert (service["Type"], service["Restart"]) == ("simple", "always")
    assert service["User"] not in ("root", "0")
    assert service["EnvironmentFile"].startswith("/")
    assert (service["NoNewPrivileges"], service["ProtectSystem"]) == ("yes", "strict")


def test_supervisord_under_systemd_outwaits_its_program() -> None:
    program = configparser.RawConfigParser()
    program.read(SUPERVISOR_PROGRAM)
    service = systemd_unit("docmill-supervisord.service")["Service"]
    assert float(service["TimeoutStopSec"]) > float(program["program:docmill"]["stopwaitsecs"])


def test_the_supervisord_unit_starts_it_only_through_the_credentials_check() -> None:
    service = systemd_unit("docmill-supervisord.service")["Service"]
    script = "/etc/docmill/supervisor/start-supervisord.sh"
    assert service["ExecStartPre"] == f"{script} --check"
    assert service["ExecStart"].split() == [script, "-n", "-c", "/etc/docmill/supervisor/supervisord.conf"]
    assert service["Environment"].split("=", 1) == ["SUPERVISORD", "/usr/bin/supervisord"]
    assert service["RestartPreventExitStatus"] == "78"
    # the install steps in the unit's header put the script where ExecStart looks for it
    assert f"install -m 0755 deploy/supervisor/start-supervisord.sh {script.rsplit('/', 1)[0]}/" in (
        (SYSTEMD / "docmill-supervisord.service").read_text()
    )


def test_the_supervisord_unit_is_hardened_around_what_supervisord_writes() -> None:
    service = systemd_unit("docmill-supervisord.service")["Service"]
    main = configparser.RawConfigParser()
    main.read(SUPERVISORD)
    program = configparser.RawConfigParser()
    program.read(SUPERVISOR_PROGRAM)
    # root only to become the program's user and signal it
    assert "User" not in service
    assert set(service["CapabilityBoundingSet"].split()) == {"CAP_SETUID", "CAP_SETGID", "CAP_KILL"}
    assert (service["NoNewPrivileges"], service["ProtectSystem"], service["ProtectHome"]) == (
        "yes",
        "strict",
        "yes",
    )
    assert service["SystemCallFilter"] == "@system-service"
    # the socket and the pidfile in the unit's RuntimeDirectory
    run = Path("/run") / service["RuntimeDirectory"]
    assert Path(main["unix_http_server"]["file"]).parent == run
    assert Path(main["supervisord"]["pidfile"]).parent == run
    assert main["supervisorctl"]["serverurl"] == f"unix://{main['unix_http_server']['file']}"
    # every log in the unit's LogsDirectory
    logs = Path("/var/log") / service["LogsDirectory"]
    for path in (main["supervisord"]["logfile"], program["program:docmill"]["stdout_logfile"]):
        assert Path(path).parent == logs
    assert Path(main["supervisord"]["childlogdir"]) == logs
    # and the program's storage/ writable
    assert service["ReadWritePaths"].split() == [f"{program['program:docmill']['directory']}/storage"]


@pytest.mark.parametrize(
    ("user", "password", "refused"),
    [(None, None, True), ("", "", True), ("operator", "", True), ("", "pw", True), ("operator", "pw", False)],
)
def test_the_start_script_refuses_unless_both_credentials_are_set(
    user: str | None, password: str | None, refused: bool
) -> None:
    env = {"PATH": "/usr/bin:/bin", "SUPERVISORD": "/bin/echo"}
    if user is not None:
        env["SUPERVISOR_USER"] = user
    if password is not None:
        env["SUPERVISOR_PASSWORD"] = password
    for argv in (["--check"], ["-c", "supervisord.conf"]):
        result = subprocess.run(
            ["sh", str(START_SUPERVISORD), *argv], capture_output=True, text=True, env=env, timeout=10
        )
        if refused:
            assert result.returncode == 78, result.stdout
            assert "without authentication" in result.stderr and result.stdout == ""
        else:
            assert result.returncode == 0, result.stderr
            # with credentials, it runs $SUPERVISORD with its own arguments (here: echo)
            assert result.stdout == ("" if argv == ["--check"] else "-c supervisord.conf\n")


CHECK_IMAGE = ROOT / "deploy" / "check-image.sh"


def run_check_image(*args: str, path: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [shutil.which("bash") or "/bin/bash", str(CHECK_IMAGE), *args],
        capture_output=True,
        text=True,
        env={"PATH": path, "HOME": "/nonexistent"},
        timeout=30,
    )


def test_the_image_check_script_documents_itself_and_refuses_bad_arguments() -> None:
    assert subprocess.run(["bash", "-n", str(CHECK_IMAGE)], capture_output=True, timeout=30).returncode == 0
    usage = run_check_image("--help", path="/usr/bin:/bin")
    assert usage.returncode == 0
    for words in ("--base IMAGE", "--make-base", "debootstrap --variant=minbase", "podman import"):
        assert words in usage.stdout
    wrong = run_check_image("--frobnicate", path="/usr/bin:/bin")
    assert wrong.returncode == 2 and "unknown argument: --frobnicate" in wrong.stderr


def test_the_image_check_script_says_when_podman_is_missing(tmp_path: Path) -> None:
    # A PATH with the tools the script's start needs, and no podman.
    for tool in ("dirname", "sed", "mktemp", "rm"):
        found = shutil.which(tool)
        assert found is not None
        (tmp_path / tool).symlink_to(found)
    result = run_check_image(path=str(tmp_path))
    assert result.returncode == 3, result.stdout + result.stderr
    assert "podman is not installed" in result.stderr


def test_the_image_checks_build_on_the_dockerfiles_base_argument() -> None:
    text = CHECK_IMAGE.read_text()
    base_arg = next(
        arg for kind, arg in dockerfile_instructions() if kind == "ARG" and arg.startswith("BASE_IMAGE=")
    )
    assert '--build-arg BASE_IMAGE="$base"' in text
    # the default both scripts share is the Dockerfile's, fully qualified for podman
    assert f"DEFAULT_BASE=docker.io/library/{base_arg.split('=', 1)[1]}" in CHECK_COMMON.read_text()
    assert '--pull="$pull"' in text and "pull=never" in text
    compose_check = CHECK_COMPOSE.read_text()
    assert '--build-arg "BASE_IMAGE=$base"' in compose_check and '--pull "$pull"' in compose_check


CHECK_COMPOSE = ROOT / "deploy" / "check-compose.sh"
CHECK_COMMON = ROOT / "deploy" / "check-common.sh"
STAND_INS = ROOT / "deploy" / "compose-standins"


def run_check_compose(*args: str, path: str = "/usr/bin:/bin") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [shutil.which("bash") or "/bin/bash", str(CHECK_COMPOSE), *args],
        capture_output=True,
        text=True,
        env={"PATH": path, "HOME": "/nonexistent"},
        timeout=30,
    )


def test_the_compose_check_script_documents_itself_and_refuses_bad_arguments() -> None:
    for script in (CHECK_COMPOSE, CHECK_COMMON):
        assert subprocess.run(["bash", "-n", str(script)], capture_output=True, timeout=30).returncode == 0
    usage = run_check_compose("--help")
    assert usage.returncode == 0
    for words in (
        "--no-registry",
        "STAND-INS",
        "production pulls the official images",
        "podman healthcheck run",
    ):
        assert words in usage.stdout
    for args, error in (
        (["--frobnicate"], "unknown argument: --frobnicate"),
        (["--base"], "--base needs an image"),
        (["/tmp", "/var"], "one checkout only"),
        (["/nonexistent/docmill"], "no such directory"),
    ):
        wrong = run_check_compose(*args)
        assert wrong.returncode == 2 and error in wrong.stderr, wrong.stderr


def test_the_compose_check_deploys_only_a_checkout_without_env(tmp_path: Path) -> None:
    checkout = tmp_path / "docmill"
    checkout.mkdir()
    result = run_check_compose(str(checkout))
    assert result.returncode == 2 and "not a docmill checkout" in result.stderr
    for name in ("docker-compose.yml", ".env.example", "Dockerfile"):
        (checkout / name).write_text("")
    # Accepted (it goes on to look for podman, which this PATH lacks) ...
    tools = tmp_path / "bin"
    tools.mkdir()
    found = shutil.which("dirname")
    assert found is not None
    (tools / "dirname").symlink_to(found)
    accepted = run_check_compose(str(checkout), path=str(tools))
    assert accepted.returncode == 3 and "podman is not installed" in accepted.stderr
    # ... but never over an operator's .env.
    (checkout / ".env").write_text("")
    refused = run_check_compose(str(checkout), path=str(tools))
    assert refused.returncode == 2 and ".env exists" in refused.stderr


def test_every_image_compose_pulls_has_a_stand_in_saying_what_it_is(compose: dict[str, Any]) -> None:
    pulled = {
        name for name, service in compose["services"].items() if "image" in service and "build" not in service
    }
    assert pulled == {"redis", "postgres"}
    assert {path.name for path in STAND_INS.iterdir()} == pulled
    for name in pulled:
        containerfile = (STAND_INS / name / "Containerfile").read_text()
        # built on the checks' base image, and marked so that a run with a registry replaces it
        assert "ARG BASE_IMAGE=local/python:3.11-slim" in containerfile
        assert 'docmill.stand-in="yes"' in containerfile and '"docmill.stand-in"' in CHECK_COMPOSE.read_text()
        assert "STAND-IN" in containerfile and "Production pulls the" in containerfile
        assert 'ENTRYPOINT ["docker-entrypoint.sh"]' in containerfile
        entrypoint = STAND_INS / name / "docker-entrypoint.sh"
        assert entrypoint.stat().st_mode & 0o111, f"{entrypoint} is not executable"


def test_the_example_pools_stop_within_the_shipped_timeouts() -> None:
    config = load_config(EXAMPLE_TOML, env={})
    assert set(config.pools) == {"default", "document-analysis", "document-processing"}
    longest = max(pool.stop_wait_s for pool in config.pools.values())
    program = configparser.RawConfigParser()
    program.read(SUPERVISOR_PROGRAM)
    assert longest + KILL_MARGIN_S <= float(program["program:docmill"]["stopwaitsecs"])
    assert longest + KILL_MARGIN_S <= float(systemd_unit("docmill.service")["Service"]["TimeoutStopSec"])


# ----------------------------------------------------------------------------- secrets


PASSWORD_ASSIGNMENT = re.compile(
    r"(?i)(?<![\w${-])[\w-]*(password|passwd|secret|api_key|token)[\w-]*"
    r"[ \t]*[=:][ \t]*(?P<value>\$\{[^}]*\}|[^\s,;#]+)"
)
URL_CREDENTIALS = re.compile(r"[a-z+]+://[^/\s:@]*:(?P<value>\$\{[^}]*\}|[^@\s/]+)@")
# How a value may name a secret without holding it: a reference to the environment, or empty.
REFERENCE = re.compile(
    r"""^["'`]*(\$\{[A-Z0-9_]+(:\?[^}]*)?\}|\$\$?[A-Z_]+|%\(ENV_[A-Z_]+\)s|\*\*\*|\.\.\.|…)["'`]*$"""
)


@pytest.mark.parametrize("path", DEPLOY_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_deploy_file_holds_a_password(path: Path) -> None:
    text = path.read_text()
    assert "secret123" not in text  # the seed's web UI password
    assert literal_secrets(text) == [], f"{path.name} holds what looks like a literal secret"


def literal_secrets(text: str) -> list[str]:
    return [
        match.group("value")
        for pattern in (PASSWORD_ASSIGNMENT, URL_CREDENTIALS)
        for match in pattern.finditer(text)
        if not REFERENCE.match(match.group("value"))
    ]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("password=hunter2", ["hunter2"]),
        ('POSTGRES_PASSWORD: "pw"', ['"pw"']),
        ("url: redis://:hunter2@redis:6379/0", ["hunter2"]),
        ("CLAUDE_API_KEY=sk-live", ["sk-live"]),
        ("password=%(ENV_SUPERVISOR_PASSWORD)s", []),
        ("REDIS_PASSWORD: ${REDIS_PASSWORD:?set REDIS_PASSWORD in .env}", []),
        ("url: postgresql://docmill:${POSTGRES_PASSWORD:?set it}@postgres/docmill", []),
        ("REDIS_PASSWORD=\nREDIS_DB=0", []),
        ("export REDIS_PASSWORD=...   # yours", []),
        ("export REDIS_PASSWORD=hunter2...", ["hunter2..."]),
    ],
)
def test_the_secret_check_finds_literals_and_passes_references(text: str, found: list[str]) -> None:
    assert literal_secrets(text.replace("\\n", "\n")) == found


def env_example() -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines() if re.match(r"^[A-Z0-9_]+=", line)
    )


def env_example_commented() -> dict[str, str]:
    """Variables .env.example names in a commented-out assignment (``# NAME=``)."""
    return dict(
        line.lstrip("# ").split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if re.match(r"^#\s*[A-Z0-9_]+=", line)
    )


# Variables that must not be set at all unless filled in: set and empty, supervisord serves its
# web UI without authentication.
UNSET_UNLESS_FILLED = ("SUPERVISOR_USER", "SUPERVISOR_PASSWORD")


def test_the_env_example_leaves_every_secret_empty() -> None:
    values = {**env_example_commented(), **env_example()}
    for name in SECRETS:
        assert values[name] == "", f"{name} must be empty in .env.example"


def test_the_env_example_leaves_the_web_ui_credentials_commented_out() -> None:
    assert not set(UNSET_UNLESS_FILLED) & set(env_example()), (
        "an empty SUPERVISOR_USER or SUPERVISOR_PASSWORD opens supervisord's web UI without authentication"
    )
    assert set(UNSET_UNLESS_FILLED) <= set(env_example_commented())


def test_the_env_example_documents_every_variable_it_sets() -> None:
    commented = False
    for line in ENV_EXAMPLE.read_text().splitlines():
        if not line.strip():
            commented = False
        elif line.startswith("#"):
            commented = True
        else:
            assert commented, f"{line.split('=')[0]} in .env.example has no comment above it"


def test_the_env_example_names_every_variable_compose_and_docmill_read() -> None:
    names = set(env_example())
    from_compose = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE.read_text()))
    seed = {
        "QUEUE_CONNECTION",
        "REDIS_HOST",
        "REDIS_PORT",
        "DOCUMENT_ANALYSIS_QUEUE",
        "DOCUMENT_PROCESSING_QUEUE",
        "ANALYSIS_JOB_MAX_TRIES",
        "ANALYSIS_JOB_TIMEOUT",
        "ANALYSIS_JOB_RETRY_DELAY",
        "CLAUDE_API_KEY",
        "CLAUDE_DEFAULT_MODEL",
    }
    ours = {"DOCMILL_QUEUE_URL", "DOCMILL_APP", "DOCMILL_CONFIG", "REDIS_PASSWORD", "REDIS_DB"}
    ours |= {"DOCMILL_STORAGE", "DATABASE_URL", "DOCMILL_API_TOKENS", "DOCMILL_WEBHOOK_SECRET"}
    ours |= {"DOCMILL_LLM_PROVIDER", "OPENAI_BASE_URL", "OPENAI_API_KEY", "OPENAI_MODEL"}
    ui = set(re.findall(r"%\(ENV_([A-Z_]+)\)s", SUPERVISORD.read_text()))
    assert ui == set(UNSET_UNLESS_FILLED)
    names |= set(env_example_commented()) & ui
    missing = (from_compose | seed | ours | ui) - names
    assert not missing, f".env.example does not name: {sorted(missing)}"


def test_the_env_example_loads_as_a_configuration() -> None:
    from docmill.config import load

    values = {k: v for k, v in env_example().items() if v}
    settings = load(env={**values, "DOCMILL_CONFIG": str(EXAMPLE_TOML)})
    assert settings.queue_url == "redis://127.0.0.1:6379/0"
    assert settings.supervisor.pools["document-analysis"].tries == 3


def test_the_documents_settings_accept_the_env_example_as_compose_passes_it() -> None:
    from docmill.documents.settings import DocumentSettings

    # env_file hands every line over, the empty ones as empty strings.
    settings = DocumentSettings.from_env({**env_example(), "DOCMILL_API_TOKENS": "t0ken-for-the-test"})
    assert settings.processing_timeout_s == 1800
    assert settings.api_tokens == ("t0ken-for-the-test",)
