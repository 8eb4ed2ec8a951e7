"""One rule for queue names, enforced at dispatch, in the configuration and on the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from docmill.cli.main import app
from docmill.config import InvalidConfiguration, load
from docmill.queue import Client, ConfigurationError, InvalidQueueName, Job, JobOptions, WorkerOptions
from docmill.queue.backends.memory import MemoryBackend
from docmill.queue.backends.redis import key_part
from docmill.queue.names import MAX_QUEUE_NAME_LENGTH, check_queue_name, queue_name_problem
from docmill.queue.worker_main import build_parser, options_from_args

VALID = [
    "default",
    "document-processing",
    "failed",
    "a:b",
    "{x}",
    "}",
    "with inner spaces",
    "Rechnungen März",
    "документы",
    "队列",
    "x" * MAX_QUEUE_NAME_LENGTH,
]
INVALID = {
    "": "it is empty",
    "x" * (MAX_QUEUE_NAME_LENGTH + 1): f"it is {MAX_QUEUE_NAME_LENGTH + 1} characters long",
    "a,b": "it holds a comma (commas separate queue names in lists)",
    "nul\x00": "it holds the character U+0000 (a control character)",
    "two\nlines": "it holds the character U+000A (a control character)",
    "tab\there": "it holds the character U+0009 (a control character)",
    " padded": "it starts or ends with a space",
    "padded ": "it starts or ends with a space",
    "zero\u200bwidth": "it holds the character U+200B (ZERO WIDTH SPACE)",
    "line\u2028sep": "it holds the character U+2028 (LINE SEPARATOR)",
    "no\u00a0break": "it holds the character U+00A0 (NO-BREAK SPACE)",
}


@pytest.mark.parametrize("name", VALID)
def test_valid_queue_names(name: str) -> None:
    assert queue_name_problem(name) is None
    assert check_queue_name(name) == name


@pytest.mark.parametrize(("name", "problem"), INVALID.items())
def test_an_invalid_queue_name_is_refused_with_the_reason_and_the_rule(name: str, problem: str) -> None:
    with pytest.raises(InvalidQueueName) as info:
        check_queue_name(name, where="--queue")
    assert str(info.value) == (
        f"queue name {name!r} (--queue) is not valid: {problem}; a queue name is 1 to 100 characters: "
        "letters, digits, punctuation, symbols and inner spaces, without commas or control characters."
    )


def test_a_name_that_is_not_text_is_refused() -> None:
    assert queue_name_problem(7) == "it is a int, not text"


def test_dispatch_refuses_an_invalid_queue_before_storing_anything() -> None:
    with pytest.raises(ConfigurationError, match=r"queue name 'a\\nb' is not valid: it holds the character"):
        JobOptions(queue="a\nb")
    with pytest.raises(ConfigurationError, match="the default queue"):
        Job.build("h", default_queue="")


async def test_a_client_whose_default_queue_is_invalid_stores_nothing() -> None:
    backend = MemoryBackend()
    with pytest.raises(InvalidQueueName):
        await Client(backend, default_queue="a,b").dispatch("h")
    assert await backend.queues() == []


def test_a_worker_refuses_an_invalid_queue() -> None:
    with pytest.raises(InvalidQueueName, match=r"\(queues\)"):
        WorkerOptions(queues=("default", "bad\x00"))
    args = build_parser().parse_args(["--queue", "default, with\ttab"])
    with pytest.raises(InvalidQueueName, match=r"'with\\ttab' \(--queue\)"):
        options_from_args(args)


def test_a_pool_of_docmill_toml_with_an_invalid_queue_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "docmill.toml"
    path.write_text('[pools.mail]\nqueues = ["mail", "two\\nlines"]\n')
    with pytest.raises(InvalidConfiguration) as info:
        load(config_file=path, env={})
    message = str(info.value)
    assert message.startswith(f"pool mail: queues=('mail', 'two\\nlines') (file {path}) holds the invalid")
    assert "it holds the character U+000A" in message


def test_a_documents_queue_from_the_environment_is_checked_naming_the_variable() -> None:
    with pytest.raises(
        InvalidConfiguration, match=r"\(env DOCUMENT_WEBHOOK_QUEUE\) is not valid: it holds a comma"
    ):
        load(env={"DOCUMENT_WEBHOOK_QUEUE": "hooks,more"})


@pytest.mark.parametrize(
    "argv",
    [
        ["queue", "pause", "bad\x01"],
        ["queue", "clear", "--force", "bad\x01"],
        ["queue", "failed", "--queue", "bad\x01"],
        ["queue", "monitor", "default,bad\x01"],
    ],
)
def test_the_command_line_refuses_an_invalid_queue_in_one_sentence(argv: list[str]) -> None:
    result = CliRunner().invoke(app, argv, terminal_width=300)
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[0].startswith("error: queue name 'bad\\x01' is not valid:")
    assert "Traceback" not in result.output


def test_queue_names_map_to_distinct_brace_free_key_parts() -> None:
    names = ["{", "%7B", "}", "%7D", "%", "%25", "a}b", "a%7Db"]
    parts = [key_part(name) for name in names]
    assert len(set(parts)) == len(names)
    assert not any("{" in part or "}" in part for part in parts)
    assert key_part("default") == "default"
