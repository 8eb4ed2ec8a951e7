"""Who may use the dashboard, from the environment (no default user, no default password):

    DOCMILL_DASHBOARD_USERS    name:role:hash entries, comma separated; role is
                               ``operator`` (may act) or ``viewer`` (reads only); the hash
                               from ``python -m docmill.web.dashboard``
    DOCMILL_DASHBOARD_SECRET   key that signs session cookies (32+ characters); without it a
                               random key per process, so sessions end when the server restarts
    DOCMILL_DASHBOARD_SESSION_HOURS  how long a sign-in lasts                         12

With no users, the dashboard answers only requests from this host (loopback) and says so
on every page; nobody signs in then.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from docmill.web.dashboard.passwords import is_valid_hash


class Role(StrEnum):
    OPERATOR = "operator"
    VIEWER = "viewer"


class DashboardConfigError(ValueError):
    """A dashboard setting that cannot work; the message says which and how to fix it."""


@dataclass(frozen=True)
class DashboardUser:
    name: str
    role: Role
    password_hash: str = field(repr=False)


@dataclass(frozen=True)
class DashboardConfig:
    users: Mapping[str, DashboardUser] = field(default_factory=dict)
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    session_s: float = 12 * 3600.0

    @property
    def open_on_loopback(self) -> bool:
        """No users: nobody signs in, and only this host is served."""
        return not self.users

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DashboardConfig:
        env = os.environ if env is None else env
        users = parse_users(env.get("DOCMILL_DASHBOARD_USERS", ""))
        secret_text = env.get("DOCMILL_DASHBOARD_SECRET", "").strip()
        if secret_text and len(secret_text) < 32:
            raise DashboardConfigError(
                "DOCMILL_DASHBOARD_SECRET is too short; use 32 or more random characters "
                "(python -c 'import secrets; print(secrets.token_urlsafe(32))')."
            )
        hours_text = env.get("DOCMILL_DASHBOARD_SESSION_HOURS", "12").strip() or "12"
        try:
            hours = float(hours_text)
        except ValueError:
            hours = -1.0
        if not 0 < hours <= 24 * 30:
            raise DashboardConfigError(
                f"DOCMILL_DASHBOARD_SESSION_HOURS={hours_text!r} is not a number of hours between 0 and 720."
            )
        if secret_text:
            return cls(users=users, secret=secret_text.encode("utf-8"), session_s=hours * 3600)
        return cls(users=users, session_s=hours * 3600)


def parse_users(text: str) -> dict[str, DashboardUser]:
    """``name:role:hash`` entries separated by commas; a bad entry raises ``DashboardConfigError``."""
    users: dict[str, DashboardUser] = {}
    for position, entry in enumerate((e.strip() for e in text.split(",")), start=1):
        if not entry:
            continue
        name, _, rest = entry.partition(":")
        role_text, _, password_hash = rest.partition(":")
        name = name.strip()
        if not name or role_text.strip() not in {r.value for r in Role}:
            raise DashboardConfigError(
                f"DOCMILL_DASHBOARD_USERS entry {position} is not name:role:hash with role "
                "operator or viewer."
            )
        if not is_valid_hash(password_hash):
            raise DashboardConfigError(
                f"DOCMILL_DASHBOARD_USERS entry {position} ({name}) has no usable password hash; "
                "make one with: python -m docmill.web.dashboard"
            )
        users[name] = DashboardUser(name, Role(role_text.strip()), password_hash.strip())
    return users
