"""Human-likeness of the user side, after MirrorBench: lexical diversity (MATTR, Yule's K, HD-D)
over the user turns, the mean and spread of user-turn length, and the share of user turns that
bring new information.

A simulator that says the same clean sentence in every dialogue has a low MATTR and HD-D and a
high Yule's K (repetitive vocabulary); real users are more varied. Example::

    m = user_side([["hi, cancel order R1002", "yes please"], ["return R2003 pls"]])
    m.mattr, m.yules_k, m.hdd, m.turn_words_mean, m.new_info_share
"""
from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from pydantic import BaseModel

MATTR_WINDOW = 50   # MirrorBench and the lexical-diversity literature use windows of 50 tokens
HDD_SAMPLE = 42     # HD-D's customary sample size (McCarthy and Jarvis 2010)
_TOKEN = re.compile(r"[a-z0-9_']+")
_STOP_TOKEN = re.compile(r"###[A-Z-]+###")
# Words that carry no information of their own: a turn made only of these brings nothing new.
FILLER = frozenset("""a an the and or but so to of in on at for with is it its it's this that i i'm im me my
you u your ur we our yes yeah yep ok okay please pls thanks thx thank ty hi hello hey sure go ahead just do
can could would will be been am are was were no not please sorry oh well then now""".split())

DEV_SET = Path(__file__).resolve().parents[2] / "shared" / "data" / "tau-bench-airline" / "dev.json"


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(_STOP_TOKEN.sub(" ", text).lower())


def mattr(toks: list[str], window: int = MATTR_WINDOW) -> float | None:
    """Moving-average type-token ratio: the mean TTR of every window of ``window`` tokens (the
    plain TTR when the text is shorter than one window)."""
    if not toks:
        return None
    if len(toks) <= window:
        return len(set(toks)) / len(toks)
    counts = Counter(toks[:window])
    total = len(counts)
    for i in range(window, len(toks)):
        out, new = toks[i - window], toks[i]
        counts[out] -= 1
        if counts[out] == 0:
            del counts[out]
        counts[new] += 1
        total += len(counts)
    return total / ((len(toks) - window + 1) * window)


def yules_k(toks: list[str]) -> float | None:
    """Yule's K = 10^4 (sum_m m^2 V_m - N) / N^2, with V_m the number of types seen m times."""
    n = len(toks)
    if n == 0:
        return None
    spectrum = Counter(Counter(toks).values())
    return 1e4 * (sum(m * m * v for m, v in spectrum.items()) - n) / (n * n)


def hdd(toks: list[str], sample: int = HDD_SAMPLE) -> float | None:
    """HD-D: for each type, the chance (hypergeometric) that a random sample of ``sample`` tokens
    holds it at least once, summed and divided by the sample size (the expected TTR of a sample)."""
    n = len(toks)
    if n == 0:
        return None
    sample = min(sample, n)
    total = math.comb(n, sample)
    return sum(1 - math.comb(n - f, sample) / total for f in Counter(toks).values()) / sample


def brings_new_information(turn: str, said_before: set[str]) -> bool:
    """A user turn brings new information when it holds a content word (not filler) that no
    earlier turn of the dialogue, by either side, held."""
    return any(t not in FILLER and t not in said_before for t in tokens(turn))


class UserSide(BaseModel):
    dialogues: int
    user_turns: int
    mattr: float | None
    yules_k: float | None
    hdd: float | None
    turn_words_mean: float | None
    turn_words_sd: float | None
    new_info_share: float | None


def user_side(dialogues: Iterable[list[str] | list[tuple[str, str]]]) -> UserSide:
    """The metrics over dialogues given as their user turns (strings), or as (role, text) pairs
    when the new-information share should count what the agent said too."""
    all_tokens: list[str] = []
    lengths: list[int] = []
    new, count, n_dialogues = 0, 0, 0
    for dialogue in dialogues:
        n_dialogues += 1
        said: set[str] = set()
        for item in dialogue:
            role, text = item if isinstance(item, tuple) else ("user", item)
            toks = tokens(text)
            if role == "user" and toks:
                all_tokens += toks
                lengths.append(len(toks))
                count += 1
                new += brings_new_information(text, said)
            said.update(toks)
    return UserSide(
        dialogues=n_dialogues, user_turns=count, mattr=_round(mattr(all_tokens)), yules_k=_round(yules_k(all_tokens), 1),
        hdd=_round(hdd(all_tokens)), turn_words_mean=_round(statistics.fmean(lengths), 2) if lengths else None,
        turn_words_sd=_round(statistics.pstdev(lengths), 2) if lengths else None,
        new_info_share=_round(new / count) if count else None)


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def transcript_turns(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(role, text) of the visible turns of a run-log transcript (stop tokens alone are not turns)."""
    out = []
    for m in messages:
        content = m.get("content")
        if m.get("role") in ("user", "assistant") and isinstance(content, str) and content.strip():
            if m["role"] == "user" and not tokens(content):
                continue
            out.append((m["role"], content))
    return out


def reference(path: Path = DEV_SET) -> UserSide | None:
    """The same metrics on the user turns of the τ-bench airline dev trajectories (their users
    are an LLM too, tau-bench's simulator: a reference, not a human baseline); None when absent."""
    import json

    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return user_side(transcript_turns(t["traj"]) for t in data["trajectories"])
