"""Values real agents write in other domains (issue 19; synthetic travel, health and helpdesk corpora):
left as written when they are right. Each case failed before its fix:
- a count worked out from the record's other counts ("5 days left" of 7, 2 used);
- a value the record has no field for, under a heading ("a €15 fee" under a booking);
- a Markdown table row: not headed by the row above it (its record is named above the table), and
  its first cell, a label, names its values;
- an exonym is no misspelling ("Munich" for "München");
- the words after a value name it only up to the next value, comma or not.
"""
from __future__ import annotations

from fact_dialogues import corrected


check = corrected


def test_a_count_worked_out_from_the_records_counts_is_left():
    rail = ("get_pass", {"pass_id": "RP-5521"}, {"pass_id": "RP-5521", "travel_days_total": 7, "travel_days_used": 2})
    draft = "Your rail pass RP-5521 has 5 travel days left out of 7."
    assert check(draft, rail) == draft


def test_a_value_the_record_has_no_field_for_is_not_its_one_amount():
    booking = ("get_booking", {"booking_id": "BK-7781"}, {"booking_id": "BK-7781", "total_price": 143.70, "status": "confirmed"})
    draft = "**Booking BK-7781**\n- It's refundable minus a $15 fee."
    assert check(draft, booking) == draft


LABS = ("get_lab_results", {"patient_id": "P-3310"}, {"patient_id": "P-3310", "results": [
    {"test": "HbA1c", "value": 6.1, "unit": "%"}, {"test": "LDL", "value": 3.2, "unit": "mmol/L"}]})


def test_a_table_row_is_not_headed_by_the_row_above_it():
    draft = "Results for P-3310:\n\n| Test | Value |\n|---|---|\n| HbA1c | 6.1 % |\n| LDL | 3.2 mmol/L |"
    assert check(draft, LABS) == draft


def test_an_exonym_is_no_misspelling():
    station = ("get_station", {"station_id": "ST-8000261"}, {"station_id": "ST-8000261", "name": "München Hauptbahnhof"})
    draft = "Your train leaves from Munich Hauptbahnhof."
    assert check(draft, station) == draft
