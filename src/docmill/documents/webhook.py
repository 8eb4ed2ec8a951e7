"""Webhooks: a signed POST to the document's ``callback_url`` when it completes or fails.

The body is JSON (``payload``); with ``DOCMILL_WEBHOOK_SECRET`` set, the header
``X-Docmill-Signature: sha256=<hex>`` carries the HMAC-SHA256 of the exact body bytes
under that secret, so the receiver can check the sender (compare in constant time).
An answer outside 2xx, a timeout or a connection error fails the attempt; the job
retries with backoff (``DocumentSettings.webhook_backoff_s``) and ends in the failed
jobs after ``webhook_tries``, where an operator sees and retries it. Redirects are not
followed: a signed body is not re-sent to a place the document owner did not name.

Whoever uploads a document names its callback URL, so the URL must not become a way
into the service's own network: before sending, the host is resolved and a loopback,
private, link-local or otherwise non-public address fails the job for good
(``WebhookRefused``) unless ``DOCMILL_WEBHOOK_ALLOW_PRIVATE`` is set. The check and the
request each resolve the name, so a DNS server that answers differently between the two
can still slip through; a firewall rule on the workers' egress closes that for good.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy.orm import undefer

from docmill.documents.context import DocumentContext
from docmill.documents.errors import WebhookRefused, WebhookRejected
from docmill.documents.models import Document

SIGNATURE_HEADER = "X-Docmill-Signature"


def sign(body: bytes, secret: str) -> str:
    """``sha256=<hex>``: the HMAC-SHA256 of ``body`` under ``secret``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, signature: str) -> bool:
    """True when ``signature`` is the one ``sign`` gives; constant-time."""
    return hmac.compare_digest(sign(body, secret), signature)


def public_address(address: str) -> bool:
    """Whether ``address`` (IPv4 or IPv6, an IPv4-mapped one judged as IPv4) is a public one."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def refuse_private_destination(url: str, document_id: int) -> None:
    """Raise ``WebhookRefused`` when the URL's host resolves to any non-public address.

    A name that does not resolve is left to the request, which fails the same way and is
    retried (DNS may be down for a moment)."""
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname or "", port, type=socket.SOCK_STREAM
        )
    except (ValueError, socket.gaierror):  # a bad port or an unknown name: the request says so
        return
    for *_, sockaddr in infos:
        address = str(sockaddr[0])
        if not public_address(address):
            raise WebhookRefused(document_id, url, address)


def payload(document: Document, event_status: str, *, sent_at: float | None = None) -> dict[str, Any]:
    """What the receiver gets: the document's state and, once completed, the result."""
    body: dict[str, Any] = {
        "event": f"document.{event_status}",
        "sent_at": round(time.time() if sent_at is None else sent_at, 3),
        "document": {
            "id": document.id,
            "name": document.name,
            "status": document.status,
            "profile": document.options.get("profile"),
            "cost_usd": document.cost_usd,
            "error_reason": document.error_reason,
            "completed_at": document.completed_at.isoformat() if document.completed_at else None,
            "failed_at": document.failed_at.isoformat() if document.failed_at else None,
        },
    }
    if document.status == "completed" and document.result is not None:
        body["result"] = document.result
    return body


async def deliver(
    ctx: DocumentContext,
    document_id: int,
    event_status: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> int | None:
    """POST the webhook; returns the answer's status, None when there is nothing to send."""
    document = await ctx.db.run(lambda s: s.get(Document, document_id, options=[undefer(Document.result)]))
    if document is None or not document.options.get("callback_url"):
        return None
    url = str(document.options["callback_url"])
    body = json.dumps(payload(document, event_status), ensure_ascii=False, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "docmill-webhook/1",
        "X-Docmill-Event": f"document.{event_status}",
        "X-Docmill-Document": str(document_id),
    }
    if ctx.settings.webhook_secret:
        headers[SIGNATURE_HEADER] = sign(body, ctx.settings.webhook_secret)
    transport = transport or ctx.webhook_transport
    if transport is None and not ctx.settings.webhook_allow_private:  # a real network send
        await refuse_private_destination(url, document_id)
    async with httpx.AsyncClient(
        timeout=ctx.settings.webhook_timeout_s,
        transport=transport,
        follow_redirects=False,
    ) as client:
        answer = await client.post(url, content=body, headers=headers)
    if not 200 <= answer.status_code < 300:
        raise WebhookRejected(document_id, url, answer.status_code)
    return answer.status_code
