"""No request reaches a 500, and every answer is what the OpenAPI schema says.

schemathesis reads the app's own ``/openapi.json`` and sends, for every operation, a
bounded number of generated requests, valid ones and invalid ones, to the app served by
a real uvicorn over a real documents database (SQLite, then PostgreSQL). A run fails on
any server error and on any answer whose status, content type, headers or body the schema
does not allow, on a 405 without the right ``Allow``, and on invalid input accepted.
Hypothesis runs derandomized, so a run is the same run every time.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)
from schemathesis.config import SchemathesisConfig
from served_app import ServedApp

from docmill.documents.settings import DocumentSettings
from docmill.web import create_app

TOKEN = "fuzz-token-" + uuid.uuid4().hex
# Requests per operation and mode. A request costs ~5 ms over SQLite and ~50 ms over
# PostgreSQL here, so PostgreSQL gets fewer: its own bounds (32-bit ids) are what it adds.
EXAMPLES_PER_OPERATION = {"sqlite": 25, "postgresql": 10}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    missing_required_header,
    unsupported_method,
    ignored_auth,
]
CONFIG = SchemathesisConfig.from_dict(
    {
        # schemathesis sends the token itself, so it knows which requests lack one on purpose.
        "auth": {"openapi": {"HTTPBearer": {"bearer": TOKEN}}},
        # Like most HTTP APIs, this one ignores query parameters it does not know.
        "generation": {"allow-extra-parameters": False},
    }
)
# The event stream of a live document only ends when the document does, and no worker
# runs here; its parameters are tested in test_api.py.
ENDLESS = "/events"


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[ServedApp]:
    settings_ = DocumentSettings(
        storage_dir=tmp_path / "storage",
        database_url=database_url,
        queue_url=f"sqlite:///{tmp_path / 'queue.db'}",
        api_tokens=(TOKEN,),
        max_upload_mb=1.0,
    )
    with ServedApp(create_app(settings_, development=False)) as served_app:
        yield served_app


def fuzz(operation: Any, mode: GenerationMode, base_url: str, examples: int) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=base_url, checks=CHECKS, timeout=30)

    run()


def operations(schema: Any, keep: Callable[[Any], bool]) -> list[Any]:
    found = [result.ok() for result in schema.get_all_operations()]
    return [operation for operation in found if keep(operation)]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_no_generated_request_gets_a_server_error_or_an_answer_outside_the_schema(
    served: ServedApp, mode: GenerationMode, database_url: str
) -> None:
    examples = EXAMPLES_PER_OPERATION[database_url.split(":")[0].split("+")[0]]
    # Given the app's published schema
    schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json", config=CONFIG)
    tested = operations(schema, lambda operation: not operation.path.endswith(ENDLESS))
    assert len(tested) >= 8, [operation.label for operation in tested]
    # When every operation gets its generated requests, Then none breaks a check
    failures: list[str] = []
    for operation in tested:
        try:
            fuzz(operation, mode, served.url, examples)
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE, operation.label  # no parameter that could be wrong
        except Exception as exc:
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
