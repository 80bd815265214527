"""Every command and example in the README, run as written (README.md is read here, not copied).

Only what cannot run here is swapped, and each swap is listed: a placeholder agent
(``http://my-agent:8000/v1``, ``...``) and a hosted judge model become a fake OpenAI-compatible
upstream on loopback (no test reaches the network); ``runs/…`` and written files land in a
temporary folder; the client example's port is the one ``make run`` got here; benchmarks run
``--help`` (a real run takes minutes), ``make test`` and ``make sim`` are dry-run (``make -n``:
the first is this very suite, the second the embedded model for minutes). A command that none
of the rules below recognises fails the test, so a new README command needs its test.
"""
from __future__ import annotations

import contextlib
import glob
import io
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fake_upstream import ThreadedUpstream, free_port

from middleware.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"^```(\w+)\n(.*?)^```", README, re.S | re.M)
LINKED = ("examples", "tests", "sim_tests", "bench")


def commands() -> list[str]:
    out = []
    for lang, body in BLOCKS:
        if lang == "sh":
            out += [line.split("  #")[0].strip() for line in body.splitlines() if line.strip()]
    return out


def python_blocks() -> list[str]:
    return [body for lang, body in BLOCKS if lang == "python"]


@pytest.fixture
def here(tmp_path, monkeypatch):
    """A folder that sees the repository's example and data folders; what commands write stays in it."""
    for name in LINKED:
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def upstream():
    with ThreadedUpstream() as fake:
        yield fake.base_url


def localise(command: str, upstream: str) -> list[str]:
    command = command.replace("http://my-agent:8000/v1", upstream).replace("--agent ...", f"--agent {upstream}")
    command = command.replace("--judge-model anthropic/claude-sonnet-4-5", f"--judge-model {upstream}")
    return shlex.split(command)


def run_rein(args: list[str], capsys) -> tuple[int, str]:
    redirect = args.index(">") if ">" in args else None
    target = args[redirect + 1] if redirect is not None else None
    args = args[:redirect] if redirect is not None else args
    expanded = [m for a in args for m in (sorted(glob.glob(a)) if "*" in a else [a])]
    code = main(expanded)
    out = capsys.readouterr().out
    if target:
        Path(target).write_text(out)
    return code, out


def test_the_readme_has_its_commands_and_the_quick_start_is_two():
    assert commands()[:2] == ["make run", "make test"] and len(python_blocks()) == 2
    quick = README.split("## Quick start", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    assert [line.split("#")[0].strip() for line in quick.strip().splitlines()] == ["make run", "make test"]


def test_every_shell_command(here, upstream, capsys, monkeypatch):
    import uvicorn

    served = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.append(kw["port"]))
    for command in commands():
        args = localise(command, upstream)
        if args[0] == "make":
            if args[1] == "run":
                continue  # test_make_run_and_the_client_example runs it for real
            dry = subprocess.run(["make", "-n", "-C", str(ROOT), *args[1:]], capture_output=True, text=True)
            assert dry.returncode == 0 and dry.stdout.strip(), (command, dry.stderr)
        elif args[0] in ("rein", ".venv/bin/rein"):
            code, out = run_rein(args[1:], capsys)
            assert code == 0, command
        elif args[0] in ("pytest", ".venv/bin/pytest"):
            proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args[1:]],
                                  capture_output=True, text=True, timeout=600)
            assert proc.returncode == 0 and " passed" in proc.stdout, (command, proc.stdout[-2000:])
        elif args[0] == ".venv/bin/python" and args[1].startswith("bench/"):
            proc = subprocess.run([sys.executable, args[1], "--help"], capture_output=True, text=True, timeout=300)
            assert proc.returncode == 0 and "usage:" in proc.stdout, (command, proc.stderr[-2000:])
        else:
            pytest.fail(f"a README command with no rule in tests/test_readme.py: {command}")
    assert len(served) == 4  # the four `rein serve` examples started up (and said so) without a traceback
    assert Path("policy.schema.json").read_text().startswith("{")
    assert (here / "runs" / "retail" / "report.html").exists() and Path("runs/my-suite.yaml").exists()


def test_the_sdk_example(here):
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(python_blocks()[1], "README.md (SDK)", "exec"), {"__name__": "readme"})
    lines = printed.getvalue().splitlines()
    assert lines[0].startswith("Order A1234 has shipped; it came to $42.50. True")
    assert lines[1:] == ["True", "True"]  # report_of(out["messages"][-1]) after wrap_graph and create_agent


def test_make_run_and_the_client_example(here):
    """`make run` for real (the embedded model), then the README's OpenAI client against it."""
    port = free_port()
    proc = subprocess.Popen(["make", "-C", str(ROOT), "run", f"PORT={port}"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        while True:  # no deadline a busy machine could miss: the process ending is the failure
            assert proc.poll() is None, proc.stdout.read()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        example = python_blocks()[0].replace("127.0.0.1:8080", f"127.0.0.1:{port}")
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(example, "README.md (client)", "exec"), {"__name__": "readme"})
        assert printed.getvalue().strip()  # the embedded model said something
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(60)
