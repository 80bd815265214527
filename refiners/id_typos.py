"""An id with two neighbouring characters swapped, the commonest typo in an id: ``W5442250`` for
``W5442520``. The factuality check fixes one a reply writes when exactly one tool id is that swap;
coherence flags one the reply writes beside the id the user said."""
from __future__ import annotations

from typing import Iterator


def swaps(a: str) -> Iterator[str]:
    """``a`` with two different neighbours swapped, each way."""
    return (a[:i] + a[i + 1] + a[i] + a[i + 2:] for i in range(len(a) - 1) if a[i] != a[i + 1])


def transposed(a: str, b: str) -> bool:
    """``b`` is ``a`` with two neighbouring characters swapped."""
    if len(a) != len(b) or a == b:
        return False
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
