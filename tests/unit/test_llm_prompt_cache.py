"""Where a request is marked for the API's prompt cache: only where the marked prefix reaches
the model's minimum, so no cache is promised that the API would not make."""

from __future__ import annotations

from docmill.llm.prompt_cache import EPHEMERAL, cache_point, message_params

SONNET = "claude-sonnet-4-5"  # 1,024 tokens at least
HAIKU = "claude-haiku-4-5"  # 4,096 tokens at least
LONG = "Report every berth, crane and customs hold with its date. " * 150  # about 2,000 tokens
CHUNK = '\n\n<document part="1" of="3">\nThe harbour moved 40 containers.\n</document>'


def test_a_long_shared_prefix_is_marked_where_it_ends() -> None:
    prompt = LONG + CHUNK

    system, messages = message_params(SONNET, "You extract.", prompt, len(LONG))

    assert system == "You extract."
    assert messages == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": LONG, "cache_control": EPHEMERAL},
                {"type": "text", "text": CHUNK},
            ],
        }
    ]


def test_a_prefix_below_the_models_minimum_is_not_marked() -> None:
    prompt = LONG + CHUNK

    assert cache_point(HAIKU, "You extract.", prompt, len(LONG)) is None
    assert message_params(HAIKU, "You extract.", prompt, len(LONG)) == (
        "You extract.",
        [{"role": "user", "content": prompt}],
    )


def test_a_long_system_prompt_alone_is_marked_when_the_prompt_shares_nothing() -> None:
    system, messages = message_params(SONNET, LONG, "One question.", 0)

    assert system == [{"type": "text", "text": LONG, "cache_control": EPHEMERAL}]
    assert messages == [{"role": "user", "content": "One question."}]


def test_short_prompts_are_sent_as_plain_text() -> None:
    assert message_params(SONNET, "Be brief.", "Short instructions." + CHUNK, 19) == (
        "Be brief.",
        [{"role": "user", "content": "Short instructions." + CHUNK}],
    )
