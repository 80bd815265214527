"""JUnit XML for CI: one test suite per arm, one test case per scenario trial."""
from __future__ import annotations

from xml.etree import ElementTree as ET

from sim_tests.log import RunLog


def render_junit(log: RunLog) -> str:
    root = ET.Element("testsuites", name=f"rein sim {log.config.suite}")
    for arm in dict.fromkeys(t.arm for t in log.trials):
        trials = [t for t in log.trials if t.arm == arm]
        suite = ET.SubElement(root, "testsuite", name=f"{log.config.suite}.{arm}", tests=str(len(trials)),
                              failures=str(sum(t.status == "failed" for t in trials)),
                              errors=str(sum(t.status == "error" for t in trials)),
                              time=f"{sum(t.duration_s for t in trials):.3f}")
        for t in trials:
            # The trait goes in the class name so CI groups failures by the kind of user.
            classname = f"{arm}.{t.label}" if t.trait == "cooperative" else f"{arm}.{t.trait}.{t.label}"
            case = ET.SubElement(suite, "testcase", classname=classname, name=f"{t.scenario_id}#{t.trial}",
                                 time=f"{t.duration_s:.3f}")
            if t.satisfaction:
                props = ET.SubElement(case, "properties")
                ET.SubElement(props, "property", name="trait", value=t.trait)
                for s in t.satisfaction:
                    ET.SubElement(props, "property", name=f"satisfaction.{s.source}", value=str(s.score))
            if t.lucky:  # passed by its outcome while breaking a rule: CI shows it without failing
                ET.SubElement(case, "system-out").text = "lucky pass: " + "; ".join(
                    s.detail for s in t.scores if s.process and not s.passed)
            if t.status == "error":
                ET.SubElement(case, "error", message=t.error or "error", type="TrialError").text = t.error
            elif t.status == "failed":
                bad = [s for s in t.scores if not s.passed]
                el = ET.SubElement(case, "failure", message="; ".join(s.name for s in bad), type="ScenarioFailed")
                el.text = "\n".join(f"{s.name}: {s.detail}" for s in bad)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
