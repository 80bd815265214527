"""Shapes of other domains (a synthetic helpdesk, travel and health corpus): an error label with its
code ("ERROR 0x80070005: Access is denied.") is a failed call; the bench's reference reads a Python
traceback as an error, as rein does."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from inception.structural import failure_in

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from real_rules import reference_error  # noqa: E402

CODED = [
    "ERROR 0x80070005: Access is denied. (WinRM 10.20.3.42:5985, user svc_remediate)",
    "Error E1234: printer queue is offline",
]
CODED_OTHER_LABELS = ["err ORA-12541: TNS:no listener", "FATAL 53300: too many connections for role \"app\""]
NOT_CODED = [
    "Error 0x00000000: The operation completed successfully.",  # code 0 says success
    "Errors in the last 24h: 0\nUptime: 99.9%",
    "Error rate 0.4%: within target",
    "Errorless runs: 12",
]
TRACEBACK = ("Traceback (most recent call last):\n  File \"client.py\", line 41, in fetch\n"
             "    r = session.get(url, timeout=5)\n"
             "requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='api.rail.example', port=443): Read timed out.")


@pytest.mark.parametrize("text", CODED)
def test_an_error_label_with_its_code_is_a_failure(text):
    assert failure_in(text) and reference_error(text)


@pytest.mark.parametrize("text", CODED_OTHER_LABELS)
def test_other_error_labels_with_a_code_are_failures(text):
    assert failure_in(text)  # (the reference reads the word "error" only)


@pytest.mark.parametrize("text", NOT_CODED)
def test_a_zero_code_or_a_label_word_without_a_code_is_no_failure(text):
    assert not failure_in(text)


def test_the_reference_reads_a_python_traceback_as_an_error_like_rein():
    assert failure_in(TRACEBACK) and reference_error(TRACEBACK)
    assert not reference_error("Traceback of the parcel: handed to courier\nStatus: delivered")
