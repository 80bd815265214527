"""Scale-out proof: two `rein serve` processes share one PostgreSQL persona store behind the
same clients. A profile learned through one replica is read (admin endpoint) and applied (the
persona refiner) through the other; deleted through one, it is gone from both. Uses a real
PostgreSQL from Debian's packages (tests/pg.py); skipped, with the reason, where there is none."""
from __future__ import annotations

import time

import httpx
import pytest

from tests.fake_upstream import ThreadedUpstream
from tests.pg import postgres_dsn  # noqa: F401  (the session fixture)
from tests.test_ops_serve import start_rein, stop

ADMIN = {"x-rein-admin-key": "op-scale-key"}
URL = "/v1/chat/completions"


def chat(text: str, user: str) -> dict:
    return {"model": "m", "user": user, "messages": [{"role": "user", "content": text}]}


def poll(fn, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while True:
        result = fn()
        if result is not None or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


@pytest.fixture(scope="module")
def replicas(postgres_dsn):  # noqa: F811
    env = {"REIN_PERSONA_DB": postgres_dsn, "REIN_ADMIN_KEY": ADMIN["x-rein-admin-key"]}
    with ThreadedUpstream() as up:
        a, url_a = start_rein("--upstream", up.base_url, "--policy", "default", env=env)
        try:
            b, url_b = start_rein("--upstream", up.base_url, "--policy", "default", env=env)
        except BaseException:
            stop(a)
            raise
        try:
            yield url_a, url_b
        finally:
            stop(a)
            stop(b)


def test_a_profile_learned_through_one_replica_is_used_by_the_other(replicas):
    url_a, url_b = replicas
    user = f"u-scale-{time.monotonic_ns()}"
    with httpx.Client(timeout=15) as c:
        assert c.get(f"{url_b}/v1/rein/profiles/{user}", headers=ADMIN).status_code == 404
        # Before: replica B leaves the upstream's miles alone (the echo fake repeats the user turn).
        before = c.post(url_b + URL, json=chat("The trail is 5 miles long.", user))
        assert before.json()["choices"][0]["message"]["content"] == "Echo: The trail is 5 miles long."
        # The user states a preference through replica A; A learns it after replying.
        assert c.post(url_a + URL, json=chat("Please use metric units from now on.", user)).status_code == 200

        def stored():
            r = c.get(f"{url_b}/v1/rein/profiles/{user}", headers=ADMIN)
            return r.json() if r.status_code == 200 else None

        seen = poll(stored)
        assert seen is not None, "replica B never saw the profile replica A wrote"
        assert seen["profile"] == {"units": "metric"}
        # Replica B now applies it to the same user's replies.
        after = c.post(url_b + URL, json=chat("The trail is 5 miles long.", user))
        assert after.headers["x-rein-refined"] == "persona"
        assert "8 km" in after.json()["choices"][0]["message"]["content"]
        # Deleted through B, gone through A.
        assert c.delete(f"{url_b}/v1/rein/profiles/{user}", headers=ADMIN).status_code == 200
        assert c.get(f"{url_a}/v1/rein/profiles/{user}", headers=ADMIN).status_code == 404


def test_replicas_interleave_turns_of_many_users_without_losing_any(replicas):
    url_a, url_b = replicas
    users = [f"u-many-{i}-{time.monotonic_ns()}" for i in range(12)]
    with httpx.Client(timeout=15) as c:
        for i, user in enumerate(users):  # round-robin, as a load balancer would
            url = (url_a, url_b)[i % 2]
            text = "Please use metric units from now on." if i % 3 else "Please use imperial units from now on."
            assert c.post(url + URL, json=chat(text, user)).status_code == 200
        for i, user in enumerate(users):
            other = (url_b, url_a)[i % 2]  # read through the replica that did not write it
            r = poll(lambda: (lambda x: x.json() if x.status_code == 200 else None)(
                c.get(f"{other}/v1/rein/profiles/{user}", headers=ADMIN)))
            assert r is not None, user
            assert r["profile"] == {"units": "metric" if i % 3 else "imperial"}
