"""`docmill supervise` under a real supervisord, run with the files in deploy/supervisor/.

The test copies those files into a temporary directory, changing only what must differ here
(paths, the web UI's port, the program's command and user) and keeping every stop setting
as shipped. It dispatches jobs, stops the program with `supervisorctl stop` while jobs run,
and counts every job: each one completes, or is back on the queue, and none stays reserved.

supervisord is started the way deploy/systemd/docmill-supervisord.service starts it (its
ExecStartPre and ExecStart, through deploy/supervisor/start-supervisord.sh), with the installed
paths replaced by the test's. That start path refuses empty web UI credentials, with which
supervisord alone would serve its UI without authentication.
"""

from __future__ import annotations

import asyncio
import base64
import configparser
import getpass
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest

from conftest import wait_for
from docmill.queue import Backend, Client, Dispatch, JobOptions, backend_from_url

pytestmark = pytest.mark.redis

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
DEPLOY = ROOT / "deploy" / "supervisor"
START = DEPLOY / "start-supervisord.sh"
UNIT = ROOT / "deploy" / "systemd" / "docmill-supervisord.service"
ENV_EXAMPLE = ROOT / ".env.example"
INSTALLED = "/etc/docmill/supervisor/"  # where the unit expects deploy/supervisor/'s files
NO_CREDENTIALS = 78  # start-supervisord.sh's exit status (EX_CONFIG)
BIN = Path(sys.executable).parent
IGNORED_ENV = {"DOCMILL_QUEUE_URL", "QUEUE_CONNECTION", "DOCMILL_CONFIG", "DOCMILL_APP"}
POOLS = """
[supervisor]
connection = "{url}"
heartbeat_s = 0.5
control_poll_s = 0.5
tick_s = 0.1

[pools.default]
processes = 2
concurrency = 2
sleep_s = 0.5
lease_s = 2
startsecs = 0.5
stop_wait_s = 10
"""


def read_ini(path: Path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path)
    return parser


def read_unit() -> configparser.RawConfigParser:
    unit = configparser.RawConfigParser(strict=False)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(UNIT)
    return unit


def unit_command(key: str, conf: Path) -> list[str]:
    """The unit's ExecStartPre or ExecStart, with the installed files replaced by the repository's
    start-supervisord.sh and the test's supervisord.conf."""
    words = read_unit()["Service"][key].split()
    paths = {f"{INSTALLED}start-supervisord.sh": str(START), f"{INSTALLED}supervisord.conf": str(conf)}
    assert words[0] in paths, f"{key} of {UNIT.name} does not start with start-supervisord.sh: {words}"
    assert all(w in paths for w in words if w.startswith("/")), f"{key}: unknown paths in {words}"
    return [paths.get(word, word) for word in words]


def unit_environment() -> dict[str, str]:
    """The unit's Environment= (the supervisord to run), pointed at this virtualenv's."""
    values = dict(item.split("=", 1) for item in read_unit()["Service"]["Environment"].split())
    assert values["SUPERVISORD"].endswith("/supervisord")
    values["SUPERVISORD"] = str(BIN / "supervisord")
    return values


def environment_file(text: str) -> dict[str, str]:
    """Variables from an env file as systemd's EnvironmentFile= reads them (KEY=VALUE lines,
    comments and blank lines skipped)."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";")) and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip().strip("\"'")
    return values


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Supervisord:
    """A supervisord started by the test from a copy of deploy/supervisor/."""

    home: Path  # the program's directory: storage/logs is under it
    conf: Path
    logs: Path
    port: int
    credentials: tuple[str, str]
    env: dict[str, str]
    url: str
    out: Path  # the handlers append each finished job's number here
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """supervisord started as the systemd unit's ExecStart starts it."""
        log = (self.logs / "supervisord.out").open("wb")
        self.process = subprocess.Popen(
            unit_command("ExecStart", self.conf),
            env={**self.env, **unit_environment()},
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def ctl(self, *args: str, timeout_s: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "supervisorctl"), "-c", str(self.conf), *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout_s,
        )

    def run(self, action: Callable[[Backend], Awaitable[T]]) -> T:
        async def go() -> T:
            backend = backend_from_url(self.url)
            await backend.connect()
            try:
                return await action(backend)
            finally:
                await backend.close()

        return asyncio.run(go())

    def stats(self) -> Any:
        return self.run(lambda backend: backend.stats("default"))

    def running_workers(self) -> list[int]:
        beats = self.run(lambda backend: backend.heartbeats("master"))
        return [
            process["pid"]
            for beat in beats
            for pool in beat["pools"]
            for process in pool["processes"]
            if process["state"] == "running"
        ]

    def done(self) -> list[int]:
        if not self.out.exists():
            return []
        return sorted(int(line) for line in self.out.read_text().split())

    def web_status(self, auth: tuple[str, str] | None) -> int:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/")
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    def log(self, name: str) -> str:
        path = self.logs / name
        return path.read_text() if path.exists() else ""


def make_supervisord(tmp_path: Path, short_dir: Path, url: str) -> Supervisord:
    """Copy deploy/supervisor/ into ``tmp_path`` with this machine's paths, port and user."""
    home, logs, confd = tmp_path / "app", tmp_path / "logs", tmp_path / "conf.d"
    for folder in (home, logs, confd):
        folder.mkdir()
    (home / "docmill.toml").write_text(POOLS.format(url=url))
    out = tmp_path / "done.txt"
    socket_path = short_dir / "supervisor.sock"
    port = free_port()

    main = read_ini(DEPLOY / "supervisord.conf")
    main["unix_http_server"]["file"] = str(socket_path)
    main["inet_http_server"]["port"] = f"127.0.0.1:{port}"
    main["supervisord"].update(
        logfile=str(logs / "supervisord.log"),
        pidfile=str(short_dir / "supervisord.pid"),
        childlogdir=str(logs),
    )
    main["supervisorctl"]["serverurl"] = f"unix://{socket_path}"
    main["include"]["files"] = str(confd / "*.conf")
    program = read_ini(DEPLOY / "conf.d" / "docmill.conf")
    section = program["program:docmill"]
    section["command"] = (
        f"{BIN / 'docmill'} supervise --config {home / 'docmill.toml'} --app supervise_handlers:registry"
    )
    section["directory"] = str(home)
    section["stdout_logfile"] = str(logs / "supervise.log")
    # The shipped user does not exist here: run as ourselves (supervisord drops to it as root).
    if os.geteuid() == 0:
        section["user"] = getpass.getuser()
    else:
        del section["user"]
        del main["supervisord"]["user"]
    environment = dict(pair.split("=", 1) for pair in section["environment"].split(","))
    environment.update(HOME=f'"{home}"', USER=f'"{getpass.getuser()}"', PYTHONPATH=f'"{HERE}"')
    section["environment"] = ",".join(f"{k}={v}" for k, v in environment.items())
    with (confd / "docmill.conf").open("w") as fh:
        program.write(fh)
    conf = tmp_path / "supervisord.conf"
    with conf.open("w") as fh:
        main.write(fh)

    credentials = ("operator", secrets.token_urlsafe(16))
    env = {k: v for k, v in os.environ.items() if k not in IGNORED_ENV}
    env.update(SUPERVISOR_USER=credentials[0], SUPERVISOR_PASSWORD=credentials[1])
    return Supervisord(home, conf, logs, port, credentials, env, url, out)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short directory for the unix socket (its path must stay under about 100 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="dm-sv-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def supervisord(tmp_path: Path, short_dir: Path, redis_url: str) -> Iterator[Supervisord]:
    made = make_supervisord(tmp_path, short_dir, redis_url)
    yield made
    process = made.process
    if process is None:
        return
    # Whatever supervisord, the master or the workers left running is ended here.
    try:
        family = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        family = []
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    for member in family:
        if member.is_running():
            member.kill()


def dispatch(sv: Supervisord, count: int, seconds: float) -> list[int]:
    numbers = list(range(1, count + 1))
    items = [
        Dispatch("supervise.work", (n, seconds, str(sv.out)), {}, JobOptions(queue="default", tries=3))
        for n in numbers
    ]
    sv.run(lambda backend: Client(backend).dispatch_many(items))
    return numbers


def test_the_shipped_program_keeps_the_graceful_stop_settings() -> None:
    section = read_ini(DEPLOY / "conf.d" / "docmill.conf")["program:docmill"]
    assert section["stopsignal"] == "TERM"
    assert int(section["stopwaitsecs"]) >= 3600 + 5  # stop_wait_s plus the master's kill margin
    assert (section["stopasgroup"], section["killasgroup"], section["autorestart"]) == ("true",) * 3
    assert section["numprocs"] == "1"  # one master per host; it runs the pools


def test_supervisord_stops_docmill_with_jobs_in_flight_and_loses_no_job(supervisord: Supervisord) -> None:
    sv = supervisord
    # Given supervisord started by the unit's commands, with the web UI's credentials set
    check = subprocess.run(
        unit_command("ExecStartPre", sv.conf), env={**sv.env, **unit_environment()}, timeout=30
    )
    assert check.returncode == 0
    # and running `docmill supervise` with two workers of concurrency 2
    sv.start()
    wait_for(lambda: "RUNNING" in sv.ctl("status", "docmill").stdout, 15, "the program to run")
    wait_for(lambda: len(sv.running_workers()) == 2, 15, "two workers")

    # The web UI answers on loopback, with the credentials from the environment only
    assert sv.web_status(None) == 401
    assert sv.web_status((sv.credentials[0], "wrong")) == 401
    assert sv.web_status(sv.credentials) == 200

    # And jobs of 1 s are being processed
    numbers = dispatch(sv, 16, 1.0)
    wait_for(lambda: len(sv.done()) >= 4 and sv.stats().reserved >= 2, 15, "jobs done and jobs in flight")

    # When the program is stopped while jobs run
    stopped = sv.ctl("stop", "docmill", timeout_s=30)

    # Then the master stops its workers gracefully and exits 0
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert stopped.stdout.strip() == "docmill: stopped"
    assert "stopped: docmill (exit status 0)" in sv.log("supervisord.log")
    master_log = (sv.home / "storage" / "logs" / "supervisor.log").read_text()
    assert "master.shutting_down why=SIGTERM" in master_log
    assert "master.stopped" in master_log
    assert "process.killed" not in master_log
    assert sv.running_workers() == []

    # And no job is lost: each one ran to the end or is pending again once leases lapse
    time.sleep(2.5)  # the pool's lease_s is 2
    after_stop = sv.stats()
    assert (after_stop.reserved, after_stop.failed) == (0, 0)
    assert after_stop.pending + len(set(sv.done())) >= len(numbers)

    # When supervisord starts the program again, every job completes
    assert sv.ctl("start", "docmill").returncode == 0
    wait_for(lambda: sorted(set(sv.done())) == numbers, 20, "every job to complete")
    final = sv.stats()
    assert (final.pending, final.reserved, final.failed) == (0, 0, 0)

    # Then supervisord shuts down with its program
    assert sv.ctl("shutdown").returncode == 0
    assert sv.process is not None
    assert sv.process.wait(30) == 0


def test_supervisord_refuses_to_start_without_the_web_ui_credentials(supervisord: Supervisord) -> None:
    env = {k: v for k, v in supervisord.env.items() if k != "SUPERVISOR_PASSWORD"}
    result = subprocess.run(
        [str(BIN / "supervisord"), "-c", str(supervisord.conf), "-n"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert result.returncode != 0
    assert "ENV_SUPERVISOR_PASSWORD" in result.stdout + result.stderr


def listens(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


SHIPPED = "as .env.example ships"
UNCOMMENTED = "both uncommented and left empty"


@pytest.mark.parametrize(
    ("case", "empty"),
    [
        (SHIPPED, ["SUPERVISOR_USER", "SUPERVISOR_PASSWORD"]),
        (UNCOMMENTED, ["SUPERVISOR_USER", "SUPERVISOR_PASSWORD"]),
        ("only the password filled in", ["SUPERVISOR_USER"]),
        ("only the user filled in", ["SUPERVISOR_PASSWORD"]),
    ],
)
def test_the_unit_refuses_to_start_supervisord_with_empty_web_ui_credentials(
    supervisord: Supervisord, case: str, empty: list[str]
) -> None:
    sv = supervisord
    # Given supervisord's environment from an env file based on .env.example
    env = {k: v for k, v in sv.env.items() if not k.startswith("SUPERVISOR_")}
    text = ENV_EXAMPLE.read_text()
    if case != SHIPPED:  # the operator uncomments the two lines
        text = re.sub(r"^#\s*(SUPERVISOR_[A-Z]+=)\s*$", r"\1", text, flags=re.M)
    example = environment_file(text)
    if case == SHIPPED:
        assert not any(name.startswith("SUPERVISOR_") for name in example), "shipped set, even if empty"
    else:
        assert {example[name] for name in empty} == {""}
        env.update(example)
        for name in {"SUPERVISOR_USER", "SUPERVISOR_PASSWORD"} - set(empty):
            env[name] = dict(zip(("SUPERVISOR_USER", "SUPERVISOR_PASSWORD"), sv.credentials, strict=True))[
                name
            ]
    env.update(unit_environment())

    # When systemd runs the unit's ExecStartPre, and its ExecStart
    check = subprocess.run(
        unit_command("ExecStartPre", sv.conf), capture_output=True, text=True, env=env, timeout=30
    )
    started = subprocess.Popen(
        unit_command("ExecStart", sv.conf), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        _, errors = started.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        started.kill()
        started.communicate()
        pytest.fail(f"supervisord started with empty credentials ({case}); the UI was open without them")

    # Then both refuse, naming the empty variable, and nothing listens on the UI's port
    assert check.returncode == NO_CREDENTIALS, check.stdout + check.stderr
    assert started.returncode == NO_CREDENTIALS, errors
    for name in empty:
        assert name in check.stderr and name in errors
    assert "without authentication" in errors
    assert not listens(sv.port)
    assert sv.log("supervisord.log") == ""  # supervisord never ran


def test_supervisord_alone_serves_the_web_ui_without_authentication_when_credentials_are_empty(
    supervisord: Supervisord,
) -> None:
    """Why the start path checks: supervisord itself takes an empty user as "no authentication"."""
    sv = supervisord
    env = {**sv.env, "SUPERVISOR_USER": "", "SUPERVISOR_PASSWORD": ""}
    started = subprocess.Popen(
        [str(BIN / "supervisord"), "-c", str(sv.conf), "-n"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    sv.process = started  # the fixture stops it and its program
    wait_for(lambda: listens(sv.port), 15, "supervisord's web UI")
    assert sv.web_status(None) == 200
    assert "running without any HTTP authentication checking" in sv.log("supervisord.log")
