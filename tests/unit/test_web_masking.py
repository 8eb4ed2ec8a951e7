"""What the API shows of a job's payload and error: URLs without their secrets."""

from __future__ import annotations

from docmill.web.masking import mask_text, mask_value

URL = "https://hooks:pw-1@receiver.test/in?access_token=t-2&batch=7"
SHOWN = "https://hooks:***@receiver.test/in?access_token=***&batch=7"


def test_every_url_in_a_text_loses_its_secrets_and_the_rest_stays() -> None:
    text = f"POST {URL} answered 503; retry against '{URL}' or redis://:pw-3@cache:6379/0."
    assert (
        mask_text(text) == f"POST {SHOWN} answered 503; retry against '{SHOWN}' or redis://:***@cache:6379/0."
    )


def test_a_text_without_secrets_is_returned_as_it_is() -> None:
    for text in ("no url here", "see https://example.test/docs?page=2", ""):
        assert mask_text(text) == text


def test_a_payload_is_masked_at_any_depth_and_secret_named_texts_are_hidden() -> None:
    payload = {
        "callback_url": URL,
        "api_key": "sk-123",
        "password": "",
        "max_tokens": 512,
        "steps": [{"url": URL}, 3, None, True],
    }
    assert mask_value(payload) == {
        "callback_url": SHOWN,
        "api_key": "***",
        "password": "",  # nothing to hide
        "max_tokens": 512,  # a number is no secret
        "steps": [{"url": SHOWN}, 3, None, True],
    }
    assert mask_value([URL, 1.5]) == [SHOWN, 1.5]
