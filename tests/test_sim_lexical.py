"""Human-likeness metrics of the user side, against values worked out by hand on small texts."""
from __future__ import annotations

import math

import pytest

from sim_tests.lexical import DEV_SET, brings_new_information, hdd, mattr, reference, tokens, user_side, yules_k

TEXT = ["a", "b", "a", "c"]


def test_mattr_by_hand():
    assert mattr(TEXT) == 3 / 4                       # shorter than a window: the plain TTR
    assert mattr(TEXT, window=2) == 1.0               # ab, ba, ac: every window all new
    assert mattr(TEXT, window=3) == pytest.approx((2 / 3 + 1) / 2)   # aba, bac
    assert mattr([]) is None


def test_yules_k_by_hand():
    # V1 = 2 (b, c), V2 = 1 (a): sum m^2 V_m = 2 + 4 = 6, N = 4 -> 10^4 (6 - 4) / 16
    assert yules_k(TEXT) == 1250
    assert yules_k(["x"] * 4) == 1e4 * (16 - 4) / 16  # one word said four times: most repetitive


def test_hdd_by_hand():
    # sample 2 of 4 tokens, C(4,2) = 6: P(a seen) = 1 - C(2,2)/6, P(b) = P(c) = 1 - C(3,2)/6
    expected = ((1 - 1 / 6) + 2 * (1 - 3 / 6)) / 2
    assert hdd(TEXT, sample=2) == pytest.approx(expected)
    assert hdd(["x"] * 50) == pytest.approx(1 / 42)  # the customary sample of 42 holds one type


def test_new_information_and_turn_lengths_by_hand():
    dialogue = [("user", "Cancel order R1, please."), ("assistant", "Which order?"), ("user", "Order R1."),
                ("user", "Thanks!"), ("user", "###STOP###")]
    m = user_side([dialogue])
    assert m.user_turns == 3 and m.new_info_share == pytest.approx(1 / 3, abs=1e-3)
    # 4, 2 and 1 words: mean 7/3, population sd sqrt(((5/3)^2 + (1/3)^2 + (4/3)^2) / 3) = sqrt(14/9)
    assert m.turn_words_mean == pytest.approx(7 / 3, abs=1e-2)
    assert m.turn_words_sd == pytest.approx(math.sqrt(14 / 9), abs=1e-2)
    assert tokens("Hi, I'm u_ava ###STOP###") == ["hi", "i'm", "u_ava"]
    assert not brings_new_information("yes please, go ahead", set())
    assert brings_new_information("the kettle", {"the"})


def test_a_repetitive_simulator_scores_as_less_varied():
    same = [["please cancel my order"] * 3 for _ in range(5)]
    varied = [["please cancel my order"], ["my kettle arrived dented, can I return it"],
              ["hi, change the address to 4 Elm Road"], ["what did I pay for the lamp"], ["thanks, bye"]]
    a, b = user_side(same), user_side(varied)
    assert a.mattr < b.mattr and a.hdd < b.hdd and a.yules_k > b.yules_k and a.new_info_share < b.new_info_share


@pytest.mark.skipif(not DEV_SET.exists(), reason=f"the dev trajectories are not at {DEV_SET}")
def test_reference_row_reads_the_dev_trajectories_user_turns():
    ref = reference()
    assert ref is not None and ref.dialogues > 0 and ref.user_turns > ref.dialogues
    assert 0 < ref.mattr <= 1 and 0 < ref.hdd <= 1 and ref.turn_words_mean > 1


def test_reference_is_none_without_the_file(tmp_path):
    assert reference(tmp_path / "absent.json") is None
