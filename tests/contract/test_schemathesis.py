"""The OpenAPI document tells the truth: schemathesis, every check, against the in-process server.

Bounded (a few examples per operation, deterministic generation, no stateful phase) so it stays a
couple of minutes on a loaded 2-core machine; the README has the deeper run.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import warnings
from pathlib import Path

import pytest

from tests.conftest import ADMIN_KEY

pytestmark = pytest.mark.slow

CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = os.environ.get("VIGIL_SCHEMATHESIS_EXAMPLES", "3")
# Every check but the response-time limit that `--checks all` adds (10 s, ST112): no timing asserts on a
# shared machine, where a plain 404 once took 43 s under the suite's load. The request timeout still ends a hang.
CHECKS = ",".join((
    "not_a_server_error", "status_code_conformance", "content_type_conformance", "response_headers_conformance",
    "response_schema_conformance", "negative_data_rejection", "positive_data_acceptance",
    "missing_required_header", "unsupported_method", "allow_header_conformance", "use_after_free",
    "ensure_resource_availability", "ignored_auth", "object_level_authorization",
))


async def test_every_operation_conforms_to_the_document(server, tmp_path):
    st = Path(sys.executable).with_name("st")
    proc = await asyncio.create_subprocess_exec(
        str(st), "--config-file", str(CONFIG), "run", f"{server.url}/openapi.json",
        "--checks", CHECKS, "--max-examples", EXAMPLES, "--generation-deterministic",
        "--phases", "examples,coverage,fuzzing", "--workers", "2", "--request-timeout", "30",
        "--header", f"Authorization: Bearer {ADMIN_KEY}", "--no-color",
        "--report", "junit", "--report-junit-path", str(tmp_path / "junit.xml"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path,
    )
    # The server runs on this test's event loop: wait without blocking it.
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=900)
    text = out.decode(errors="replace")
    failures = text.find("=== FAILURES")
    summary = text[failures:] if failures >= 0 else text[-6000:]
    assert "Tested: " in text, text[-4000:]  # it did run the operations, not fail to load the document
    assert failures < 0, summary  # a check failed: the document and the API disagree
    cases = re.search(r"Test cases:\s+(\d+) generated, (\d+) passed", text)
    assert cases and int(cases[1]) == int(cases[2]) > 0, text[-4000:]
    if proc.returncode != 0:
        # Every generated case passed every check, but schemathesis reported an error of its own (seen once:
        # a "Runtime Error" in its coverage phase, with no failing request). Say so; it is not a contract
        # failure. Any failing check or failing case above still fails this test.
        errors = text[text.find("Errors:"):][:2000] if "Errors:" in text else text[-2000:]
        warnings.warn(f"schemathesis exited {proc.returncode} with every case passing:\n{errors}", stacklevel=1)
