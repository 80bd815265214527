"""Simulated-failure suites: list, run (A/B over arms), generate failure variants, re-render reports.

``rein sim``: the simulator's own commands, found by ``rein`` through the ``rein.commands``
entry-point group (pyproject.toml), so the core never imports the simulator."""
from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Coroutine

# Seconds that trials cancelled by Ctrl-C get to unwind before the run stops waiting for them.
CANCEL_GRACE_S = 5.0


class _WithDefaults(argparse.HelpFormatter):
    """Each option's help ends with its default, when it has one the help does not already name."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.option_strings and not any(action.default is v for v in (None, False, argparse.SUPPRESS)) \
                and "default" not in text:
            text += " (default: %(default)s)"
        return text


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="sim_command", required=True)
    sub.add_parser("list", help="the shipped suites")
    sub.add_parser("schema", help="print the JSON Schema of a suite file")

    run = sub.add_parser("run", help="run a suite against an agent under the chosen arms", formatter_class=_WithDefaults)
    run.add_argument("suite", help="a shipped suite name, a suite/scenario YAML file, or a folder of them")
    run.add_argument("--agent", help="reference[:MODEL] (default: on the embedded model), scripted, "
                                     "http(s)://host/v1, or pkg.module:attr")
    run.add_argument("--user", choices=["scripted", "llm"], default="scripted", help="user simulator")
    run.add_argument("--user-model", help="model of the llm user simulator (default: the embedded model)")
    run.add_argument("--arms", default="bare,rein,prompt", help="comma list of bare, rein, prompt")
    run.add_argument("--policy", default="default", help="policy of the rein and prompt arms")
    run.add_argument("--rein-model", help="model for rein's own calls (a URL, a litellm model or 'local'); "
                                          "unset: the rein and prompt arms run the policy's rules only")
    run.add_argument("--trials", type=int, default=1, help="trials per scenario and arm (k)")
    run.add_argument("--concurrency", type=int, default=4, help="trials in flight at once")
    run.add_argument("--timeout", type=float, default=120.0, help="seconds per agent call")
    run.add_argument("--retries", type=int, default=1, help="retries of a timed-out or failed agent call")
    run.add_argument("--max-tokens", type=int, help="cap the reference agent's replies")
    run.add_argument("--only", help="comma list of error types to run (e.g. clean,vague_reference)")
    run.add_argument("--traits", help="also run every scenario with these user traits (a,b+c: a, then b and c)")
    run.add_argument("--seed", type=int, default=0, help="seed of the user traits' choices")
    run.add_argument("--judge-model", help="model that rates each dialogue's user satisfaction (beside the rules)")
    run.add_argument("--out", help="output folder (default runs/sim-SUITE); a re-run resumes it")
    run.add_argument("--quiet", action="store_true", help="no progress line")

    gen = sub.add_parser("generate", help="write failure variants of clean scenarios to a suite file",
                         formatter_class=_WithDefaults)
    gen.add_argument("source", help="a suite or scenario file (or shipped suite) of clean scenarios")
    gen.add_argument("--only", help="comma list of failure labels (default: every generator)")
    gen.add_argument("--out", help="file to write, its folder made if missing (default: stdout, nothing written)")
    gen.add_argument("--name", help="suite name (default: from --out or the source)")
    gen.add_argument("--without-clean", action="store_true", help="leave the clean scenarios out")
    gen.add_argument("--traits", help="write user-trait variants instead (a,b+c), of every scenario of the "
                                      "source(s); SOURCE may be a comma list of suites")
    gen.add_argument("--seed", type=int, default=0, help="seed of the user traits' choices")

    rep = sub.add_parser("report", help="re-render report.md, report.html and junit.xml from a run log")
    rep.add_argument("log", help="DIR/run.json (or DIR)")
    rep.add_argument("--out", help="folder for the reports (default: next to the log)")


def run(args: argparse.Namespace) -> int:
    from sim_tests.scenario import ScenarioError

    handlers = {"list": _list, "schema": _schema, "run": _run, "generate": _generate, "report": _report}
    try:
        return handlers[args.sim_command](args)
    except (ScenarioError, ValueError, FileNotFoundError) as e:
        print(f"rein sim: {e}", file=sys.stderr)
        return 2


def _list(args: argparse.Namespace) -> int:
    from collections import Counter

    from sim_tests.scenario import shipped_suites

    from sim_tests.suites import load_suite
    for name in shipped_suites():
        suite = load_suite(name)
        labels = Counter(s.label for s in suite.scenarios)
        traits = Counter(s.trait for s in suite.scenarios)
        print(f"{name:14} {len(suite.scenarios):3} scenarios  "
              f"{', '.join(f'{k} {v}' for k, v in labels.items())}")
        if len(traits) > 1:
            print(f"{'':14} users: {', '.join(f'{k} {v}' for k, v in traits.items())}")
        if suite.description:
            print(f"{'':14} {suite.description}")
    return 0


def _schema(args: argparse.Namespace) -> int:
    import json

    from sim_tests.scenario import schema

    print(json.dumps(schema(), indent=2))
    return 0


def _generate(args: argparse.Namespace) -> int:
    from sim_tests.failures import generate
    from sim_tests.scenario import Suite, dump_suite
    from sim_tests.suites import load_suite
    sources = [load_suite(name) for name in args.source.split(",")]
    source = Suite(name="+".join(s.name for s in sources), scenarios=[x for s in sources for x in s.scenarios])
    labels = args.only.split(",") if args.only else None
    scenarios = []
    if args.traits:  # user-trait variants of every scenario, failing ones included
        from sim_tests.traits import suite_with_traits

        kept = [s for s in source.scenarios if not labels or s.label in labels]
        scenarios = suite_with_traits(source.model_copy(update={"scenarios": kept}), args.traits, args.seed,
                                      cooperative=not args.without_clean).scenarios
    for clean in [] if args.traits else source.scenarios:
        if clean.failure is not None:
            continue
        if not args.without_clean:
            scenarios.append(clean)
        scenarios += generate(clean, labels)
    name = args.name or (Path(args.out).stem if args.out else f"{source.name}-variants")
    suite = Suite(name=name, description=f"Generated by `rein sim generate` from {source.name}.", scenarios=scenarios)
    command = " ".join(["rein sim generate", args.source, *(["--only", args.only] if args.only else []),
                        *(["--traits", args.traits, "--seed", str(args.seed)] if args.traits else [])])
    text = (f"# Generated by `{command}`; edit the {'' if args.traits else 'clean '}source and regenerate.\n"
            + dump_suite(suite))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
        print(f"rein sim: {len(scenarios)} scenarios written to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _report(args: argparse.Namespace) -> int:
    from sim_tests.log import RunLog
    from sim_tests.reports import text_table, write_reports

    path = Path(args.log)
    if path.is_dir():
        path = path / "run.json"
    log = RunLog.load(path)
    paths = write_reports(log, Path(args.out) if args.out else path.parent)
    print(text_table(log))
    print("reports: " + ", ".join(str(p) for p in paths.values()), file=sys.stderr)
    return 0


def _run(args: argparse.Namespace) -> int:
    from middleware.models import resolve_model
    from sim_tests.agents import aclose, load_agent
    from sim_tests.arms import make_arms
    from sim_tests.log import RunConfig
    from sim_tests.reports import text_table, write_reports
    from sim_tests.runner import Runner
    from sim_tests.suites import load_suite
    suite = load_suite(args.suite)
    if args.only:
        wanted = set(args.only.split(","))
        suite = suite.model_copy(update={"scenarios": [s for s in suite.scenarios if s.label in wanted]})
    if args.traits:
        from sim_tests.traits import suite_with_traits

        suite = suite_with_traits(suite, args.traits, args.seed)
    arm_names = [a.strip() for a in args.arms.split(",") if a.strip()]
    agent = load_agent(args.agent, max_tokens=args.max_tokens)
    needs_rein = any(a != "bare" for a in arm_names)
    # rein's own prompts go only to a model the operator named (never the agent under test).
    rein_model = resolve_model(args.rein_model) if needs_rein and args.rein_model else None
    arms = make_arms(arm_names, args.policy, rein_model)
    user_model = resolve_model(args.user_model) if args.user == "llm" else None
    judge_model = resolve_model(args.judge_model) if args.judge_model else None
    config = RunConfig(suite=suite.name, agent=args.agent or "reference (embedded model)", user=args.user,
                       arms=arm_names, policy=args.policy, trials=args.trials, concurrency=args.concurrency,
                       timeout_s=args.timeout, retries=args.retries, rein_model=args.rein_model,
                       user_model=args.user_model, judge_model=args.judge_model)
    out = Path(args.out or f"runs/sim-{suite.name}")
    runner = Runner(suite, agent, arms, config, out_dir=out, user_model=user_model,
                    progress=None if args.quiet else sys.stderr, judge_model=judge_model)
    interrupted = False
    # Everything imported so far lives as long as the process: keep the garbage collector off it.
    # With many trials in flight, full collections over that heap halved throughput.
    gc.freeze()

    async def main():
        try:
            return await runner.run()
        finally:
            await aclose(agent)

    try:
        interrupted = _until_ctrl_c(main())
    except KeyboardInterrupt:  # Ctrl-C before the loop took over the signal
        interrupted = True
    finally:
        gc.unfreeze()  # back to normal for whoever called us in-process
    log = runner.log
    if log is None:
        print("rein sim: interrupted before any trial ran", file=sys.stderr)
        return 130
    paths = write_reports(log, out)
    print(text_table(log))
    print("reports: " + ", ".join(str(p) for p in [out / "run.json", *paths.values()]), file=sys.stderr)
    if interrupted:
        print(f"rein sim: interrupted; {len(log.trials)} finished trials kept in {out} "
              f"(run the same command again to resume)", file=sys.stderr)
        _exit_if_threads_linger()
        return 130
    return _verdict(log)


def _verdict(log: Any) -> int:
    """0 only when every trial ran to a verdict: a run whose trials errored (no verdict) must not
    pass a CI job, and says how many did, and why the first did."""
    if log.status == "stopped":
        print(f"rein sim: stopped: {log.stopped_because}", file=sys.stderr)
        return 1
    errored = [t for t in log.trials if t.status == "error"]
    if errored:
        print(f"rein sim: {len(errored)} of {len(log.trials)} trials errored (no verdict); "
              f"the first: {errored[0].error}", file=sys.stderr)
        return 1
    return 0


def _until_ctrl_c(main: Coroutine[Any, Any, Any]) -> bool:
    """Run ``main``; True when Ctrl-C stopped it.

    The first Ctrl-C cancels the run (in-flight trials unwind, the log is written); the second
    ends the process at once (finished trials are already on disk, one line each). The handler is
    installed here rather than left to ``asyncio.run``: a process started from a background job
    inherits SIGINT as *ignored*, and asyncio only takes over a default handler — such a run
    ignored every Ctrl-C. Nor does it wait for the default executor, as ``asyncio.run`` does: an
    embedded-model call already running in a thread cannot be cancelled and may take minutes."""
    loop = asyncio.new_event_loop()
    task = loop.create_task(main)
    hits = 0

    def on_sigint(signum: int, frame: Any) -> None:
        nonlocal hits
        hits += 1
        if hits > 1:
            os.write(2, b"\nrein sim: second Ctrl-C, stopping now (finished trials are in trials.jsonl)\n")
            os._exit(130)
        os.write(2, b"\nrein sim: stopping; Ctrl-C again to quit at once\n")
        loop.call_soon_threadsafe(task.cancel)

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_sigint) if in_main else None
    try:
        loop.run_until_complete(task)
        loop.run_until_complete(loop.shutdown_default_executor())
        return False
    except asyncio.CancelledError:
        left = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in left:
            t.cancel()
        if left:
            loop.run_until_complete(asyncio.wait(left, timeout=CANCEL_GRACE_S))
        return True
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def _exit_if_threads_linger() -> None:
    """After an interrupted run has written its log: a model call still running in a worker
    thread would hold the interpreter's exit until it finished, so leave without it."""
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.current_thread()):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
