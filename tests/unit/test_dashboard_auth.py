"""The dashboard's credentials: password hashes, users from configuration, signed sessions,
and the sign-in limiter."""

from __future__ import annotations

import base64
import hashlib

import pytest

from docmill.web.dashboard.config import DashboardConfig, DashboardConfigError, Role, parse_users
from docmill.web.dashboard.passwords import hash_password, is_valid_hash, verify_password
from docmill.web.dashboard.sessions import SessionSigner
from docmill.web.dashboard.signin_limit import SignInLimiter


def test_a_scrypt_hash_verifies_its_password_only() -> None:
    encoded = hash_password("s3cret-enough")
    assert encoded.startswith("scrypt$16384$8$1$")
    assert verify_password("s3cret-enough", encoded)
    assert not verify_password("s3cret-enougH", encoded)
    assert hash_password("s3cret-enough") != encoded  # a fresh salt each time


def test_a_pbkdf2_hash_from_hashlib_verifies() -> None:
    salt = b"0123456789abcdef"
    key = hashlib.pbkdf2_hmac("sha256", b"pass phrase", salt, 10_000)
    encoded = f"pbkdf2_sha256$10000${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"
    assert verify_password("pass phrase", encoded)
    assert not verify_password("pass phrase!", encoded)


@pytest.mark.parametrize(
    "encoded",
    ["", "plain-password", "scrypt$1$8$1$c2FsdA==$a2V5", "scrypt$16384$8$1$not base64$a2V5", "md5$abc"],
)
def test_a_hash_that_cannot_be_parsed_never_matches(encoded: str) -> None:
    assert not is_valid_hash(encoded)
    assert not verify_password("", encoded)


def test_users_come_from_name_role_hash_entries() -> None:
    ops, viewer = hash_password("operator pass"), hash_password("viewer pass")
    users = parse_users(f"alice:operator:{ops}, bob:viewer:{viewer}")
    assert [(u.name, u.role) for u in users.values()] == [("alice", Role.OPERATOR), ("bob", Role.VIEWER)]
    assert "operator pass" not in repr(users) and ops not in repr(users)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "alice:admin:x",
            "DOCMILL_DASHBOARD_USERS entry 1 is not name:role:hash with role operator or viewer.",
        ),
        (
            "alice:operator:hunter2",
            "DOCMILL_DASHBOARD_USERS entry 1 (alice) has no usable password hash; "
            "make one with: python -m docmill.web.dashboard",
        ),
    ],
)
def test_a_bad_user_entry_is_one_sentence_without_the_secret(text: str, message: str) -> None:
    with pytest.raises(DashboardConfigError) as raised:
        parse_users(text)
    assert str(raised.value) == message


def test_no_users_means_open_on_loopback_only_and_a_short_secret_is_refused() -> None:
    assert DashboardConfig.from_env({}).open_on_loopback
    with pytest.raises(DashboardConfigError, match="DOCMILL_DASHBOARD_SECRET is too short"):
        DashboardConfig.from_env({"DOCMILL_DASHBOARD_SECRET": "short"})


def test_a_session_cookie_round_trips_and_any_change_voids_it() -> None:
    signer = SessionSigner(b"k" * 32, lifetime_s=60)
    session = signer.new("alice", Role.VIEWER, now=1000.0)
    cookie = signer.dumps(session)
    assert signer.loads(cookie, now=1010.0) == session
    body, signature = cookie.split(".")
    forged_body = (
        base64.urlsafe_b64encode(base64.urlsafe_b64decode(body + "==").replace(b'"viewer"', b'"operator"'))
        .decode()
        .rstrip("=")
    )
    assert signer.loads(f"{forged_body}.{signature}", now=1010.0) is None
    assert signer.loads(cookie, now=1061.0) is None  # expired
    assert SessionSigner(b"x" * 32, 60).loads(cookie, now=1010.0) is None  # another key
    assert signer.loads("garbage", now=1010.0) is None
    assert signer.loads("a.b.c", now=1010.0) is None


def test_sign_in_failures_are_limited_per_key_within_the_window() -> None:
    now = [0.0]
    limiter = SignInLimiter(max_failures=3, window_s=60, clock=lambda: now[0])
    for _ in range(3):
        assert limiter.retry_after_s("address:1.2.3.4") == 0
        limiter.failed("address:1.2.3.4", "user:alice")
    assert limiter.retry_after_s("address:1.2.3.4") == 60
    assert limiter.retry_after_s("address:5.6.7.8", "user:alice") == 60  # the name is limited too
    assert limiter.retry_after_s("address:5.6.7.8", "user:bob") == 0
    now[0] = 60.5
    assert limiter.retry_after_s("address:1.2.3.4") == 0
