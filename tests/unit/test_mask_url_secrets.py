"""``mask_url`` hides every secret a callback or API URL may carry, and nothing it needs not."""

from __future__ import annotations

import pytest

from docmill.queue import mask_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks:pw@h.test/in", "https://hooks:***@h.test/in"),
        ("https://h.test/in?api_key=k1&page=2", "https://h.test/in?api_key=***&page=2"),
        ("https://h.test/in?access_token=t1", "https://h.test/in?access_token=***"),
        ("https://h.test/in?apiKey=k2", "https://h.test/in?apiKey=***"),
        (
            "https://s3.test/o?X-Amz-Signature=s1&X-Amz-Credential=c1",
            "https://s3.test/o?X-Amz-Signature=***&X-Amz-Credential=***",
        ),
        ("https://h.test/in?sig=s2&id=7", "https://h.test/in?sig=***&id=7"),
        (
            "redis://h:6379/0?prefix=docmill&completed_max=5",
            "redis://h:6379/0?prefix=docmill&completed_max=5",
        ),
    ],
)
def test_secret_query_values_and_passwords_are_masked(url: str, shown: str) -> None:
    assert mask_url(url) == shown
