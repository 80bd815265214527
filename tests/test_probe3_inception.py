"""Shapes of other domains (a synthetic helpdesk, travel and health corpus): an error label with its
code ("ERROR 0x80070005: Access is denied.") is a failed call; the bench's reference reads a Python
traceback as an error, as rein does; a weekday the user names ("I can't make it on Tuesday") picks the
rival whose record holds an ISO date on that day, so no vague-reference alarm."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from inception.dialogue import Dialogue
from inception.references import VagueReference
from inception.structural import failure_in
from policies.messages import parse_messages

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


def appointments(*starts):
    result = {"patient": {"mrn": "MRN00401012"}, "appointments": [
        {"id": f"APT-7{i}485", "start": start, "type": "Follow-up", "status": "booked"}
        for i, start in enumerate(starts)]}
    return [{"role": "user", "content": "What appointments do I have coming up?"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {
                "name": "list_appointments", "arguments": json.dumps({"patient": "maria.lopez"})}}]},
            {"role": "tool", "tool_call_id": "c1", "content": json.dumps(result)},
            {"role": "assistant", "content": "You have a follow-up on Tuesday, December 8 at 9:30 and another one "
                                             "later that week. Anything you would like to change?"}]


def detect(messages, turn):
    messages = messages + [{"role": "user", "content": turn}]
    return VagueReference().detect(Dialogue.of(parse_messages(messages), []))


def test_a_weekday_of_one_rivals_iso_date_picks_it():
    two = appointments("2026-12-08T09:30:00-05:00", "2026-12-11T14:15:00-05:00")  # a Tuesday, a Friday
    assert detect(two, "I can't make it on Tuesday, can you move it to Thursday?") == []
    assert detect(two, "Please reschedule the appointment on Friday.") == []


def test_a_weekday_that_fits_several_rivals_or_none_still_alarms():
    both_tuesdays = appointments("2026-12-08T09:30:00-05:00", "2026-12-15T14:15:00-05:00")
    assert detect(both_tuesdays, "I can't make it on Tuesday, can you move it to Thursday?")
    two = appointments("2026-12-08T09:30:00-05:00", "2026-12-11T14:15:00-05:00")
    assert detect(two, "I can't make it on Monday, can you move it to Thursday?")
