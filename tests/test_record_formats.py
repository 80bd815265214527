"""Property: a tool result is the same data whether the tool printed it as JSON, as YAML (block,
as a YAML library dumps it) or as Python's repr of the object (what runtimes that print objects
send): the action checks read the same records from all three (inception/actions/records.read_data)."""
from __future__ import annotations

import json

import yaml
from hypothesis import given, settings, strategies as st

from inception.actions.records import read_data

# keys and texts as real results hold them: ids, dates, times, words YAML 1.1 would type ("no",
# "on", "10:30", "2022-01-01"), numbers written as text, punctuation, accents
TEXT = st.one_of(
    st.sampled_from(["no", "yes", "on", "off", "10:30", "2022-01-01", "2022-01-01 10:00:00", "1e3", "0x1F", "null",
                     "None", "True", "~", "", "-", "#W8455874", "credit_card_11", "US1330001", "a: b", "- x", "[1]"]),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=20))
KEY = st.one_of(st.sampled_from(["id", "status", "amount", "date", "recipient", "item_id", "options"]),
                st.from_regex(r"[a-z_][a-z0-9_ ]{0,12}", fullmatch=True))
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                   st.floats(allow_nan=False, allow_infinity=False, width=64), TEXT)
RECORD = st.dictionaries(KEY, st.one_of(SCALAR, st.lists(SCALAR, max_size=3), st.dictionaries(KEY, SCALAR, max_size=3)),
                         min_size=1, max_size=6)
RESULT = st.one_of(RECORD, st.lists(RECORD, min_size=1, max_size=4))


@settings(max_examples=300, deadline=None)
@given(RESULT)
def test_json_yaml_and_python_repr_of_a_result_read_the_same(data):
    assert read_data(json.dumps(data)) == data
    if "'None'" not in repr(data):  # the one text read otherwise: a bare None is Python's null
        assert read_data(yaml.safe_dump(data, allow_unicode=True, sort_keys=False)) == data
    assert read_data(repr(data)) == data


def test_a_long_yaml_or_repr_result_gives_no_records_rather_than_a_stall():
    # YAML and Python's parser hold the event loop ~0.7 ms a KB (JSON's 0.004): bounded
    records = [{"id": i, "recipient": f"DE{i:020d}", "subject": "Rent payment"} for i in range(3000)]
    assert read_data(json.dumps(records)) == records
    assert read_data(yaml.safe_dump(records)) is None and read_data(repr(records)) is None
    assert read_data(yaml.safe_dump(records[:20])) == records[:20]
