"""The systemd units in deploy/systemd pass `systemd-analyze verify` and keep their exposure low.

No systemd has to run: each unit is checked offline in a scratch root (``--root``) that holds
the unit, the system's targets, and an executable stub for every program the unit names.
The exposure score is `systemd-analyze security`'s (0 = locked down, 10 = fully exposed).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import require_program

ROOT = Path(__file__).resolve().parents[2]
SYSTEMD = ROOT / "deploy" / "systemd"
TARGETS = [Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")]
# The highest exposure each unit may have. docmill-supervisord.service runs as root (to start
# the program as its user) with CAP_SETUID, CAP_SETGID and CAP_KILL; it was 8.5 before hardening.
MAX_EXPOSURE = {
    "docmill.service": 3.5,
    "docmill-api.service": 3.5,
    "docmill-supervisord.service": 2.5,
}
EXEC_KEYS = ("ExecStartPre", "ExecStart", "ExecStartPost", "ExecReload", "ExecStop", "ExecStopPost")


@pytest.fixture(scope="module")
def systemd_analyze() -> str:
    return require_program("systemd-analyze", "Debian's systemd")


def programs(unit: Path) -> list[str]:
    """The absolute paths of the programs the unit's Exec lines run."""
    found = []
    for line in unit.read_text().splitlines():
        key, eq, value = line.partition("=")
        if eq and key.strip() in EXEC_KEYS:
            command = value.strip().lstrip("-@:+!")
            found.append(command.split()[0])
    return found


def scratch_root(tmp_path: Path, unit: Path) -> Path:
    root = tmp_path / "root"
    units = root / "etc" / "systemd" / "system"
    units.mkdir(parents=True)
    shutil.copy(unit, units / unit.name)
    targets = root / "usr" / "lib" / "systemd" / "system"
    targets.mkdir(parents=True)
    for folder in TARGETS:
        for target in folder.glob("*.target") if folder.is_dir() else []:
            if not (targets / target.name).exists():
                shutil.copy(target, targets / target.name)
    for program in programs(unit):
        assert program.startswith("/"), f"{unit.name}: {program} is not an absolute path"
        stub = root / program.lstrip("/")
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text("#!/bin/sh\n")
        stub.chmod(0o755)
    return root


def exposure(systemd_analyze: str, root: Path, name: str) -> float:
    result = subprocess.run(
        [systemd_analyze, "security", "--offline=true", f"--root={root}", "--no-pager", name],
        capture_output=True,
        text=True,
        timeout=60,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", result.stdout + result.stderr)
    assert found, result.stdout + result.stderr
    return float(found.group(1))


@pytest.mark.parametrize("name", sorted(MAX_EXPOSURE))
def test_the_unit_verifies(systemd_analyze: str, tmp_path: Path, name: str) -> None:
    root = scratch_root(tmp_path, SYSTEMD / name)
    result = subprocess.run(
        [systemd_analyze, "verify", f"--root={root}", name], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stdout + result.stderr


@pytest.mark.parametrize("name", sorted(MAX_EXPOSURE))
def test_the_unit_stays_within_its_exposure(systemd_analyze: str, tmp_path: Path, name: str) -> None:
    root = scratch_root(tmp_path, SYSTEMD / name)
    assert exposure(systemd_analyze, root, name) <= MAX_EXPOSURE[name]


def test_every_shipped_unit_is_checked() -> None:
    assert {unit.name for unit in SYSTEMD.glob("*.service")} == set(MAX_EXPOSURE)


def test_the_exposure_check_sees_an_unhardened_unit(systemd_analyze: str, tmp_path: Path) -> None:
    bare = tmp_path / "bare.service"
    bare.write_text("[Service]\nExecStart=/usr/bin/true\n")
    assert exposure(systemd_analyze, scratch_root(tmp_path, bare), bare.name) > 8
