"""Values written in other domains' formats read as what they are, so a right reply is left as it
is and a wrong value is not "restored" to another field's. Each case failed before its fix:
- a number is no piece of a dotted sequence (a version 6.2.1, an address 10.20.4.117);
- a "Mon DD" date's day is not the hour of a time after it ("23 Dec 08:39" holds no "Dec 08");
- the first day of a day range ("from 3 to 5 December", "14–17 Dec") is no count;
- an ordinal (2nd) or a storage or dose quantity (512GB, 500mg) is no id;
- a CSV result (a header line of names, rows as wide) is a list of records;
- a dotted day.month.year ("03.12.2026") is a date, written back the same way;
- money with a currency code before it ("EUR 89", "CHF 120.-"), a sign after it ("89,90 €") or a
  decimal comma ("1.234,56 €") is money, written back the same way.
"""
from __future__ import annotations

from fact_dialogues import corrected
from refiners.claims import read_claims, render
from refiners.records import read_records
from refiners.text import is_id

check = corrected


def kinds(text: str) -> list[tuple[str, str]]:
    return [(c.kind, c.text) for c in read_claims(text)]


def test_a_number_is_no_piece_of_a_version_or_an_address():
    assert ("number", "6.2") not in kinds("You have 6.1.3; the latest is 6.2.1.")
    assert kinds("Host 10.20.4.117 answers.") == []
    assert kinds("It costs 3.5. Then 4.") == [("number", "3.5"), ("number", "4")]
    apps = [{"app": "Zoom", "installed": "6.2.10", "latest": "6.3.0"},
            {"app": "7-Zip", "installed": "23.01", "latest": "24.08"}]
    right = "Zoom (you have 6.2.10, latest is 6.3.0) and 7-Zip (23.01, latest 24.08) need updates."
    assert check(right, ("list_outdated", {"host": "PC-4417"}, apps)) == right


def test_a_days_date_is_not_read_across_the_time_after_it():
    assert kinds("23 Dec 08:39") == [("date", "23 Dec"), ("time", "08:39")]
    assert kinds("Dec 8 14:30") == [("date", "Dec 8"), ("time", "14:30")]
    assert kinds("Dec 8, 2026") == [("date", "Dec 8, 2026")]
    rows = [{"booking": "BK-WUXB9C24", "what": "AP 133 to Porto", "from": "2026-12-23T08:39", "price": "€31.50"},
            {"booking": "BK-GOQL61FT", "what": "Hotel Ribeira", "from": "2026-12-23T15:00", "price": "€612.00"}]
    right = ("| Booking | What | When | Price |\n|---|---|---|---|\n"
             "| BK-WUXB9C24 | AP 133 to Porto | 23 Dec 08:39 | €31.50 |\n"
             "| BK-GOQL61FT | Hotel Ribeira | 23 Dec 15:00 | €612.00 |")
    assert check(right, ("list_bookings", {"trip": "TR-88"}, rows)) == right


def test_the_first_day_of_a_range_is_no_count():
    assert kinds("the two nights from 3 to 5 December come to €178") == [("date", "5 December"), ("money", "€178")]
    assert kinds("14–17 Dec") == [("date", "17 Dec")]
    assert kinds("we need 3 seats by 5 December") == [("number", "3"), ("date", "5 December")]
    assert [c.text for c in read_claims("from 3 to 5 December", ("number",))] == []
    stay = {"booking": "HB-73485", "hotel": "Casa Azul", "check_in": "2026-12-03", "check_out": "2026-12-05",
            "nights": 2, "total": "€178"}
    right = "Your stay HB-73485 at Casa Azul, the two nights from 3 to 5 December, comes to €178."
    assert check(right, ("get_booking", {"booking": "HB-73485"}, stay)) == right


def test_ordinals_and_storage_or_dose_quantities_are_no_ids():
    for text in ("2nd", "21st", "12th", "512GB", "500mg", "10ml", "5kg", "1.5kg"):
        assert not is_id(text), text
    for text in ("HAT069", "4WQ150", "A1234", "45m"):  # a duration may be the only name of an event
        assert is_id(text), text


TRAINS = ("train,departure,arrival,duration,changes,price\nICE 571,07:34,12:49,5h 15m,0,89.90 EUR\n"
          "ICE 1007,08:28,13:44,5h 16m,1,64.90 EUR\nIC 2023,09:12,15:30,6h 18m,2,39.90 EUR")


def test_a_csv_result_is_a_list_of_records():
    assert read_records(TRAINS)[1] == {"train": "ICE 1007", "departure": "08:28", "arrival": "13:44",
                                       "duration": "5h 16m", "changes": "1", "price": "64.90 EUR"}
    assert read_records('name,age\n"Kim, Dana",41\nLuis,33') == [{"name": "Kim, Dana", "age": "41"},
                                                                  {"name": "Luis", "age": "33"}]
    assert read_records("Hello, world\nHow are you, sir") is None  # prose: a blank after each comma
    assert read_records("a,b\n1,2,3") is None  # rows of another width
    trains = TRAINS + "\nFLX 1805,10:05,16:20,6h 15m,0,24.99 EUR"
    right = ("The cheapest is FLX 1805 at 10:05, arriving 16:20, direct, 6h 15m, for €24.99. ICE 571 leaves at "
             "7:34 and gets in at 12:49 for €89.90. ICE 1007 (8:28, €64.90) and IC 2023 (9:12, €39.90) need changes.")
    assert check(right, ("search_trains", {"from": "Berlin", "to": "Munich"}, trains)) == right


def test_a_dotted_day_month_year_is_a_date_written_back_in_its_style():
    assert kinds("Check-in 03.12.2026, out 5.12.2026.") == [("date", "03.12.2026"), ("date", "5.12.2026")]
    assert [c.value for c in read_claims("from 03.12.2026")] == [(2026, 12, 3)]
    assert kinds("version 03.12.2026.1 on v1.03.12.2026") == []
    assert render(read_claims("on 03.12.2026")[0], (2026, 1, 5), "date") == "05.01.2026"
    assert render(read_claims("on 3.2.2026")[0], (2027, 11, 25), "date") == "25.11.2027"
    stay = {"booking": "HB-73485", "hotel": "Casa Azul", "arrival": "2026-12-03", "departure": "2026-12-05"}
    right = "Your stay HB-73485 at Casa Azul: arrival 03.12.2026, departure 05.12.2026."
    call = ("get_booking", {"booking": "HB-73485"}, stay)
    assert check(right, call) == right
    assert check(right.replace("05.12", "06.12"), call) == right


def test_money_with_a_currency_code_before_it_a_sign_after_it_or_a_decimal_comma():
    money = [(c.text, str(c.value)) for c in read_claims("EUR 89, CHF 120.- and 89,90 € or 1.234,56 €; "
                                                            "€12,50, $1,234.56, 1,058.86 USD and €1,000") if c.kind == "money"]
    assert money == [("EUR 89", "89"), ("CHF 120.-", "120"), ("89,90 €", "89.90"), ("1.234,56 €", "1234.56"),
                     ("€12,50", "12.50"), ("$1,234.56", "1234.56"), ("1,058.86 USD", "1058.86"), ("€1,000", "1000")]
    assert kinds("XEUR 5 and EURO 5") == [("number", "5"), ("number", "5")]
    written = {c.text: render(c, c.value * 2, "money") for c in read_claims("EUR 89, CHF 120.-, 1.234,56 €, €12,50")}
    assert written == {"EUR 89": "EUR 178", "CHF 120.-": "CHF 240.-", "1.234,56 €": "2.469,12 €", "€12,50": "€25,00"}
    rental = {"rental": "CR7162781", "daily_rate": "EUR 89", "days": 3, "total": "EUR 267", "deposit": "EUR 300"}
    call = ("get_rental", {"rental": "CR7162781"}, rental)
    right = "Your rental CR7162781: 3 days at EUR 89 is EUR 267, and the deposit is EUR 300."
    assert check(right, call) == right
    assert check(right.replace("deposit is EUR 300", "deposit is EUR 350"), call) == right
