"""The batch option, its per-profile default, and how a batched document's calls are grouped."""

from __future__ import annotations

import pytest

from docmill.documents.batching import custom_id, next_level, ref_of
from docmill.documents.calls import Calls
from docmill.documents.errors import InvalidOptions, InvalidSetting
from docmill.documents.mapreduce import SavedCall
from docmill.documents.options import DocumentOptions
from docmill.documents.profiles import sends_by_batch
from docmill.documents.settings import DocumentSettings
from docmill.llm.batches import poll_delay_s


@pytest.mark.parametrize(
    ("given", "parsed"),
    [(None, None), ("", None), (True, True), ("yes", True), ("false", False), (False, False)],
)
def test_the_batch_option_is_yes_no_or_left_to_the_profile(given: object, parsed: bool | None) -> None:
    data = {} if given is None else {"batch": given}
    assert DocumentOptions.parse(data).batch is parsed


def test_a_batch_option_that_is_not_yes_or_no_is_refused_in_one_sentence() -> None:
    with pytest.raises(InvalidOptions, match=r"^batch must be true or false, not 'soon'\.$"):
        DocumentOptions.parse({"batch": "soon"})


def test_the_same_file_by_batch_or_not_is_the_same_document() -> None:
    batched = DocumentOptions.parse({"batch": True})
    assert batched.key(default_model="claude-haiku-4-5") == DocumentOptions().key(
        default_model="claude-haiku-4-5"
    )


def test_the_upload_decides_and_otherwise_the_profiles_named_in_the_setting_go_by_batch() -> None:
    summary, extract = DocumentOptions(), DocumentOptions(profile="extract", schema={"properties": {"a": {}}})
    assert not sends_by_batch(summary)
    assert sends_by_batch(summary, batch_profiles=frozenset({"summary"}))
    assert not sends_by_batch(extract, batch_profiles=frozenset({"summary"}))
    assert not sends_by_batch(DocumentOptions(batch=False), batch_profiles=frozenset({"summary"}))
    assert sends_by_batch(DocumentOptions(batch=True))


def test_batch_settings_come_from_the_environment() -> None:
    settings = DocumentSettings.from_env(
        {
            "DOCUMENT_BATCH_PROFILES": "Summary, custom",
            "DOCUMENT_BATCH_DEADLINE_S": "600",
            "DOCUMENT_BATCH_POLL_S": "5",
        }
    )
    assert settings.batch_profiles == frozenset({"summary", "custom"})
    assert (settings.batch_deadline_s, settings.batch_poll_s) == (600.0, 5.0)
    defaults = DocumentSettings.from_env({})
    assert (defaults.batch_profiles, defaults.batch_deadline_s, defaults.batch_poll_s) == (
        frozenset(),
        21600.0,
        30.0,
    )


def test_a_batch_profile_setting_naming_no_profile_is_refused() -> None:
    with pytest.raises(
        InvalidSetting, match=r"^DOCUMENT_BATCH_PROFILES='sumary' \(env\) names no profile 'sumary'"
    ):
        DocumentSettings.from_env({"DOCUMENT_BATCH_PROFILES": "sumary"})


def test_polls_grow_with_the_batchs_age_between_their_bounds() -> None:
    assert poll_delay_s(0, min_s=30, max_s=600) == 30
    assert poll_delay_s(400, min_s=30, max_s=600) == 100
    assert poll_delay_s(86_400, min_s=30, max_s=600) == 600


def _calls() -> Calls:
    return Calls.for_document(name="r.md", options={}, analysis=None, default_model="claude-haiku-4-5")


def _saved(text: str) -> SavedCall:
    return SavedCall(text=text, provider="anthropic", model="m")


def test_a_batch_holds_the_unsaved_calls_of_the_first_level_that_has_any() -> None:
    calls = _calls()
    chunks = [{"index": i, "text": f"Chunk {i}."} for i in range(13)]  # 13 maps, 2 reduces, 1 final

    assert sorted(next_level(calls, chunks, {})) == [("map", i) for i in range(13)]
    saved = {("map", i): _saved(f"answer {i}") for i in range(13) if i != 4}
    assert list(next_level(calls, chunks, saved)) == [("map", 4)]

    saved[("map", 4)] = _saved("answer 4")
    reduces = next_level(calls, chunks, saved)
    assert list(reduces) == [("reduce", 0)]  # the 13th answer passes up alone
    assert "answer 0" in reduces[("reduce", 0)].prompt and "answer 11" in reduces[("reduce", 0)].prompt

    saved[("reduce", 0)] = _saved("combined")
    [final] = next_level(calls, chunks, saved).values()
    assert "combined" in final.prompt and "answer 12" in final.prompt
    saved[("reduce", 1)] = _saved("done")
    assert next_level(calls, chunks, saved) == {}


def test_a_custom_id_names_the_call_under_its_batchs_tag_and_back() -> None:
    assert custom_id(("reduce", 12), "9f3a01bc") == "9f3a01bc-reduce-12"
    assert ref_of("9f3a01bc-reduce-12") == ("reduce", 12)
    assert ref_of(custom_id(("map", 0), "00ff00ff")) == ("map", 0)
