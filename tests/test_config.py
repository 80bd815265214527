"""Start-up settings: each mistake is one line naming the setting, and a non-zero exit."""
from __future__ import annotations

import subprocess
import sys

import pytest

from middleware.cli import main
from middleware.config import Settings, SettingsError

BAD = [
    ({"REIN_PORT": "abc"}, [], "rein: REIN_PORT='abc': Input should be a valid integer"),
    ({"REIN_WORKERS": "two"}, [], "rein: REIN_WORKERS='two': Input should be a valid integer"),
    ({"REIN_MAX_BODY_BYTES": "lots"}, [], "rein: REIN_MAX_BODY_BYTES='lots': Input should be a valid integer"),
    ({}, ["--workers", "0"], "rein: --workers 0: Input should be greater than or equal to 1"),
    ({}, ["--port", "99999"], "rein: --port 99999: Input should be less than or equal to 65535"),
    ({"REIN_UPSTREAM_TIMEOUT_S": "-5"}, [], "rein: REIN_UPSTREAM_TIMEOUT_S='-5': Input should be greater than 0"),
    ({}, ["--upstream", "htp://agent:8000/v1"], "rein: --upstream htp://agent:8000/v1: 'htp://agent:8000/v1' "
                                                "is not a URL rein can call"),
    ({"REIN_UPSTREAM": "http//agent:8000/v1"}, [], "rein: REIN_UPSTREAM='http//agent:8000/v1': "
                                                   "'http//agent:8000/v1' is not a URL rein can call"),
    ({}, ["--upstream", "http://agent:80000/v1"], "Port out of range"),
    ({}, ["--middleware-model", "gpt4-mini"], "rein: --middleware-model gpt4-mini: 'gpt4-mini' names no model provider"),
    ({}, ["--upstream", "upstream"], "'upstream' names no model provider"),  # only the middleware model reuses it
]


@pytest.mark.parametrize(("env", "flags", "line"), BAD, ids=[" ".join(f) or next(iter(e)) for e, f, _ in BAD])
def test_a_bad_setting_is_one_line_and_exit_2(monkeypatch, capsys, env, flags, line):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["serve", *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rein: ") and line in err and err.count("\n") == 1, err


def test_the_real_process_exits_non_zero_with_that_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "middleware.cli", "serve"], env={"REIN_PORT": "abc", "PATH": ""},
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "rein: REIN_PORT='abc': Input should be a valid integer, unable to parse string as an integer"]


def test_a_bad_policy_stops_start_up_naming_the_file(tmp_path, capsys):
    pack = tmp_path / "mine.yaml"
    pack.write_text("name: mine\nextends: missing-pack\n")
    assert main(["serve", "--policy", str(pack)]) == 2
    assert capsys.readouterr().err.startswith(f"rein: {pack}: extends: unknown policy 'missing-pack'")


@pytest.mark.parametrize("spec", ["http://agent:8000/v1", "https://api.example.com/v1", "anthropic/claude-sonnet-4-5",
                                  "gpt-4o", "local"])
def test_good_model_settings_pass(spec):
    assert Settings.from_env(upstream=spec).upstream == spec
    assert Settings.from_env(middleware_model="upstream").middleware_model == "upstream"


def test_settings_errors_are_value_errors():
    with pytest.raises(SettingsError):
        Settings.from_env(port=0)
