"""Which callback addresses count as public: the rest are refused unless allowed."""

from __future__ import annotations

import pytest

from docmill.documents.errors import WebhookRefused
from docmill.documents.webhook import public_address, refuse_private_destination
from docmill.queue import Fail

NOT_PUBLIC = [
    "127.0.0.1",  # loopback
    "10.1.2.3",  # private
    "172.16.0.9",
    "192.168.1.1",
    "169.254.169.254",  # link-local: cloud metadata services live here
    "100.64.0.1",  # carrier-grade NAT
    "0.0.0.0",
    "224.0.0.1",  # multicast
    "::1",
    "fe80::1",
    "fd00::1",  # unique local
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "::ffff:10.0.0.1",
]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_loopback_private_and_link_local_addresses_are_not_public(address: str) -> None:
    assert not public_address(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.215.14", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_internet_addresses_are_public(address: str) -> None:
    assert public_address(address)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080/hook", "https://localhost/hook", "http://[::1]/x", "http://169.254.169.254/"],
)
async def test_a_url_whose_host_is_not_public_is_refused_for_good(url: str) -> None:
    with pytest.raises(WebhookRefused, match="DOCMILL_WEBHOOK_ALLOW_PRIVATE") as raised:
        await refuse_private_destination(url, 7)
    assert isinstance(raised.value, Fail)  # the queue fails it at once, with no retries


async def test_a_public_address_passes() -> None:
    await refuse_private_destination("https://8.8.8.8/hook", 7)  # a literal: no DNS lookup
