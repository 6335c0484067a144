"""The admin API against its own OpenAPI document, with schemathesis: every
operation called with generated parameters and bodies (valid and not) on a
real gateway. No answer may be a 5xx, and every answer must match what the
document says of it."""
from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance  # noqa: E402

from tests.test_control_plane import ADMIN, config  # noqa: E402


def test_no_operation_errs_or_answers_off_its_schema(start_gateway):
    gw = start_gateway(config())
    schema = schemathesis.openapi.from_url(f"{gw.url}/admin/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    calls = []
    for operation in operations:
        if operation.path == "/admin/session" and operation.method.upper() == "DELETE":
            continue    # signing out a bearer caller: nothing to find

        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def call(case):
            calls.append(case.method)
            case.call_and_validate(base_url=gw.url, headers={"authorization": f"Bearer {ADMIN}"},
                                   checks=[not_a_server_error, response_schema_conformance,
                                           content_type_conformance])

        call()
    assert len(calls) >= 3 * len(operations)     # (an operation without parameters has one example)
