"""The upload form's published pattern for callback_url never admits what the parser refuses."""

from __future__ import annotations

import re

import pytest

from docmill.documents.errors import InvalidOptions
from docmill.documents.options import DocumentOptions
from docmill.web.routers.documents import CALLBACK_URL_PATTERN

ACCEPTED = [
    "",
    "   ",
    "https://hooks.example/done",
    "http://user:secret@10.0.0.7:8080/h?x=1#y",
    "HTTP://H:65535",
]
REFUSED = [
    "ftp://hooks.example/done",
    "https://",
    "http://h:0",
    "http://h:65536",
    "http://h:port",
    "http://[",
    "http://[::1",
    "hooks.example/done",
    "javascript:alert(1)",
]


@pytest.mark.parametrize("url", ACCEPTED)
def test_what_the_pattern_admits_the_parser_accepts(url: str) -> None:
    assert re.search(CALLBACK_URL_PATTERN, url)
    DocumentOptions.parse({"callback_url": url})


@pytest.mark.parametrize("url", REFUSED)
def test_what_the_parser_refuses_the_pattern_does_not_admit(url: str) -> None:
    assert not re.search(CALLBACK_URL_PATTERN, url)
    with pytest.raises(InvalidOptions, match="callback_url"):
        DocumentOptions.parse({"callback_url": url})
