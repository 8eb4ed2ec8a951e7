"""Signed session cookies: who signed in, their role, their CSRF token, and until when.

The cookie is ``base64url(json).base64url(HMAC-SHA256(secret, json))``; nothing in it is
secret, but nobody without the key can make or change one. Signatures are compared in
constant time. The cookie is HttpOnly (scripts cannot read it), SameSite=Strict (another
site's page cannot send it) and Secure over HTTPS.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from docmill.web.dashboard.config import Role

COOKIE_NAME = "docmill_dashboard"


@dataclass(frozen=True)
class Session:
    user: str
    role: Role
    csrf_token: str
    expires_at: float

    @property
    def may_act(self) -> bool:
        return self.role is Role.OPERATOR


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    def __init__(self, secret: bytes, lifetime_s: float) -> None:
        self._secret = secret
        self.lifetime_s = lifetime_s

    def new(self, user: str, role: Role, *, now: float | None = None) -> Session:
        now = time.time() if now is None else now
        return Session(user, role, secrets.token_urlsafe(24), now + self.lifetime_s)

    def dumps(self, session: Session) -> str:
        body = json.dumps(
            {"u": session.user, "r": session.role.value, "c": session.csrf_token, "e": session.expires_at},
            separators=(",", ":"),
        ).encode("utf-8")
        return f"{_b64(body)}.{_b64(self._sign(body))}"

    def loads(self, cookie: str | None, *, now: float | None = None) -> Session | None:
        """The session in ``cookie``; None when absent, forged, malformed or expired."""
        if not cookie or cookie.count(".") != 1:
            return None
        body_text, signature_text = cookie.split(".")
        try:
            body, signature = _unb64(body_text), _unb64(signature_text)
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(signature, self._sign(body)):
            return None
        try:
            data = json.loads(body)
            session = Session(str(data["u"]), Role(data["r"]), str(data["c"]), float(data["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires_at <= (time.time() if now is None else now):
            return None
        return session

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self._secret, body, hashlib.sha256).digest()
