"""Error shapes of other runtimes and formats (issue 19; found on a synthetic corpus of result shapes):
an exception named with its package (Java, requests) is an error on the first or last line; a
"key: value" record whose error field is null says there was none. The bench's reference rule
(bench/real_rules.py) reads them alike, with no code shared, and reads the plain error shapes it
missed (a GraphQL "errors" list, a status "error" or "404", "Failed to ...", "HTTP 503 ...")."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from inception.structural import failure_in

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from real_rules import reference_error  # noqa: E402

ERRORS = [
    "java.lang.IllegalStateException: meter not initialised",
    "requests.exceptions.HTTPError: 500 Server Error: Internal Server Error for url: http://meter/api",
    "reading meter m-01...\nrequests.exceptions.ConnectionError: Max retries exceeded",
    "error:\n  code: 500\n  message: upstream unavailable",
    "Error: null",
    "Error: order not found",
    # command-line and server tools (a coding or operations agent's results)
    'Error from server (NotFound): pods "web-1" not found',
    "Error response from daemon: No such container: web",
    "Error in read.csv(path) : cannot open file 'x.csv'",
    "npm ERR! code E404\nnpm ERR! 404 Not Found - GET https://registry.npmjs.org/left-padx",
    "bash: deploy.sh: command not found",
    "cat: /etc/app.conf: No such file or directory",
    'Exception in thread "main" java.lang.NullPointerException\n\tat Main.main(Main.java:5)',
]
DATA = [
    "error: null\nresult: ok\nbalance: 12.5",
    "errors: []\ndata:\n  kwh: 12.4",
    "error: none\nstatus: delivered",
    "Errors in the last 24h: 0\nkWh today: 12.4",
    "Note: permission denied errors are written to the audit log.",
    "Exception handling in threads: a guide\nChapter 1 ...",
    "============================= test session starts ==============================\n"
    "FAILED tests/test_a.py::test_x - AssertionError\n===== 1 failed, 2 passed in 0.12s =====",
]


@pytest.mark.parametrize("text", ERRORS)
def test_errors_of_other_runtimes_and_formats_are_failures(text):
    assert failure_in(text) and reference_error(text)


@pytest.mark.parametrize("text", DATA)
def test_a_record_saying_there_was_no_error_is_data(text):
    assert not failure_in(text) and not reference_error(text)


@pytest.mark.parametrize("text", ['{"errors": [{"message": "Field aqi not available"}], "data": null}',
                                  '{"status": "error", "message": "firmware v2.1 does not support it"}',
                                  '{"status": "404", "message": "Meter not found"}', '{"code": 500, "message": "internal error"}',
                                  "Exception: meter returned a malformed frame", "Failed to reach meter m-01 (timeout 15s)",
                                  "HTTP 503 Service Unavailable"])
def test_the_reference_rule_reads_plain_error_shapes(text):
    assert reference_error(text) and failure_in(text)
