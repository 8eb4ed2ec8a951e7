"""Who may call the API: bearer tokens from ``DOCMILL_API_TOKENS``, and one exemption.

With tokens configured, every request (but ``/api/health``) needs
``Authorization: Bearer <token>`` naming one of them. Tokens are compared in constant
time (digests of equal length, every token compared), and never logged or echoed.

There is no default token. With none configured, requests are refused, except in
development (``docmill serve --dev`` or ``DOCMILL_ENV=development``), where requests
from the loopback interface are let through. ``docmill serve`` refuses to bind a
non-loopback address without tokens, so that exemption only ever serves this host.
Even then a request is not exempt when its ``Host`` is not a loopback name (a DNS
rebinding page) or it carries a foreign ``Origin`` (another site's page posting to
the local server): the browser on this host is not the same as its user.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from docmill.web.errors import Unauthorized

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` (an address or a name) is this machine's loopback interface."""
    if not host:
        return False
    host = host.strip().strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def development_mode(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return env.get("DOCMILL_ENV", "").strip().lower() in {"development", "dev"}


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class AuthPolicy:
    """The tokens the API accepts (as digests) and whether loopback is exempt."""

    token_digests: tuple[bytes, ...] = field(repr=False)
    loopback_exempt: bool

    @classmethod
    def build(cls, tokens: Iterable[str], *, development: bool) -> AuthPolicy:
        digests = tuple(_digest(token) for token in tokens if token)
        return cls(token_digests=digests, loopback_exempt=development and not digests)

    def check(
        self,
        *,
        authorization: str | None,
        client_host: str | None,
        host_header: str | None,
        origin: str | None,
    ) -> None:
        """Return when the request may proceed; raise ``Unauthorized`` otherwise."""
        if self.token_digests:
            self._check_token(authorization)
            return
        if self.loopback_exempt and self._local(client_host, host_header, origin):
            return
        raise Unauthorized(
            "No API tokens are configured on this server; set DOCMILL_API_TOKENS "
            "(or use docmill serve --dev on 127.0.0.1 for local development)."
        )

    def _check_token(self, authorization: str | None) -> None:
        scheme, _, credentials = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise Unauthorized(
                "This API needs a bearer token; send 'Authorization: Bearer <token>' "
                "with a token from DOCMILL_API_TOKENS."
            )
        given = _digest(credentials.strip())
        matched = False
        for digest in self.token_digests:  # no early exit: the time does not tell which one matched
            matched |= hmac.compare_digest(given, digest)
        if not matched:
            raise Unauthorized("The bearer token is not valid; use a token from DOCMILL_API_TOKENS.")

    @staticmethod
    def _local(client_host: str | None, host_header: str | None, origin: str | None) -> bool:
        if not is_loopback(client_host):
            return False
        if host_header is not None and not is_loopback(urlsplit(f"//{host_header}").hostname):
            return False
        return origin is None or is_loopback(urlsplit(origin).hostname)
