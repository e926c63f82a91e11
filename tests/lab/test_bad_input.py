"""Bad input to every ``gameday`` command: exit 2, one clear message, no traceback — and,
for ``gameday run``, nothing started and nothing injected (checked on a running lab)."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.labs import ROOT, RunningLab
from support.refusals import assert_refused, text

from gameday.faults.record import InjectionLog

BASE = yaml.safe_load((ROOT / "experiments" / "broker-down.yaml").read_text())
Mutation = Callable[[dict[str, Any]], None]
# A lab that never runs: commands refused for bad input must not need one.
def step(experiment: dict[str, Any], name: str) -> dict[str, Any]:
    """The method's activity called ``name``."""
    return next(a for a in experiment["method"] if isinstance(a, dict) and a["name"] == name)


PARTITION, OPENED, TRIP, P95 = ("take-broker-link-down", "breaker-opened-within-bound",
                                "time-to-trip", "p95-latency-during-outage")


def _args(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda e: step(e, name)["provider"].setdefault("arguments", {})


def _action(module: str, func: str, **arguments: Any) -> dict[str, Any]:
    return {"type": "action", "name": f"bad-{func}", "provider": {
        "type": "python", "module": module, "func": func, "arguments": arguments}}


partition_args, opened_args, p95_args = _args(PARTITION), _args(OPENED), _args(P95)


def sla_report_args(experiment: dict[str, Any]) -> dict[str, Any]:
    return experiment["steady-state-hypothesis"]["probes"][0]["provider"]["arguments"]


def traffic_args(experiment: dict[str, Any]) -> dict[str, Any]:
    return experiment["controls"][0]["provider"]["arguments"]


# name -> (how broker-down.yaml is spoiled, what the message must say)
EXPERIMENTS: dict[str, tuple[Mutation, str]] = {
    "unknown-argument": (lambda e: sla_report_args(e).update(windw="30s"),
                         "probes.sla.report: unknown argument 'windw' (did you mean "
                         "window_s?): valid are window_s, source"),
    "unknown-link": (lambda e: partition_args(e).update(link="service-brokr"),
                     "unknown link 'service-brokr' (did you mean service-broker?): valid "
                     "links are service-broker, lb-replica-1"),
    "qty-many": (lambda e: e["method"].insert(0, _action("actions.pods", "kill", qty="many")),
                 "actions.pods.kill: argument qty='many' is not a number"),
    "match-everything": (lambda e: e["method"].insert(0, _action(
        "actions.pods", "kill", selector="*")), "selector '*' would match everything"),
    "unknown-module": (lambda e: step(e, OPENED)["provider"].update(module="probes.breakr"),
                       "module 'probes.breakr' does not exist (did you mean probes.breaker?)"),
    "unknown-function": (lambda e: step(e, OPENED)["provider"].update(func="opened_withn"),
                         "probes.breaker has no function 'opened_withn' (did you mean "
                         "opened_within?)"),
    "foreign-module": (lambda e: e["method"].append({"type": "probe", "name": "x", "provider": {
        "type": "python", "module": "nosuchpkg.mod", "func": "f"}}),
        "Chaos Toolkit: could not find Python module 'nosuchpkg.mod'"),
    "unknown-config-key": (lambda e: opened_args(e).update(seconds="${breaker_open_within}"),
                           "argument seconds='${breaker_open_within}': no configuration key "
                           "breaker_open_within (did you mean breaker_open_within_s?)"),
    "bad-pause": (lambda e: step(e, TRIP)["pauses"].update(after="${outage_rst_s}"),
                  "pauses: no configuration key outage_rst_s (did you mean outage_rest_s?)"),
    "window-out-of-range": (lambda e: p95_args(e).update(window_s=1),
                            "window_s=1.0 is out of range: valid is 2..3600 seconds"),
    "unknown-source": (lambda e: p95_args(e).update(source="server"),
                       "unknown source 'server': valid are prometheus, client"),
    "unknown-toxic": (lambda e: e["method"].insert(0, _action(
        "actions.network", "degrade", toxic="latncy")), "unknown toxic 'latncy': valid are"),
    "broker-mode": (lambda e: e["method"].insert(0, _action(
        "actions.broker", "fail", mode="error", latency_ms=5)),
        "'latency_ms' is not a parameter of mode error; valid: status, probability"),
    "broker-status-type": (lambda e: e["method"].insert(0, _action(
        "actions.broker", "fail", mode="error", status="503")),
        "argument status='503' is not a whole number or null"),
    "traffic-argument": (lambda e: traffic_args(e).update(rate_rpss=100),
                         "controls.traffic: unknown argument 'rate_rpss' (did you mean "
                         "rate_rps?)"),
    "traffic-workers": (lambda e: traffic_args(e).update(workers="two"),
                        "argument workers='two' is not a whole number"),
    "control-module": (lambda e: e["controls"][0]["provider"].update(module="controls.trafic"),
                       "module 'controls.trafic' does not exist (did you mean controls.traffic?)"),
    "private-module": (lambda e: e["controls"][0]["provider"].update(module="gameday.__main__"),
                       "control 'gameday-traffic': module 'gameday.__main__' is private"),
    "safeguard-probe": (lambda e: e["controls"][1]["provider"]["arguments"]["probes"][0][
        "provider"]["arguments"].update(selectr="x"),
        "probe 'enough-replicas-alive': probes.replicas.enough_ready: unknown argument "
        "'selectr'"),
    "arguments-not-mapping": (lambda e: step(e, PARTITION)["provider"].update(arguments=["x"]),
                              "arguments must be a mapping of name: value"),
    "provider-not-mapping": (lambda e: step(e, PARTITION).update(provider="actions.network"),
                             "provider must be a mapping"),
    "activity-not-mapping": (lambda e: e["method"].insert(0, "partition the broker"),
                             "method item #1 must be a mapping (one of the activities)"),
    "method-not-list": (lambda e: e.update(method="partition"),
                        "method must be a list of activities, not 'partition'"),
    "no-title": (lambda e: e.pop("title"), "needs a title (a non-empty string)"),
    "no-description": (lambda e: e.pop("description"), "needs a description"),
    "tags-not-list": (lambda e: e.update(tags="broker"), "tags must be a list of non-empty"),
    "configuration-not-mapping": (lambda e: e.update(configuration=["a"]),
                                  "configuration must be a mapping of key: value"),
    "order-not-number": (lambda e: e["extensions"][0].update(order="first"),
                         "the order of the gameday extension must be a number"),
    "no-tolerance": (lambda e: e["steady-state-hypothesis"]["probes"][1].pop("tolerance"),
                     "Chaos Toolkit: hypothesis probe must have a tolerance entry"),
    "timeout-not-number": (lambda e: step(e, PARTITION).update(timeout="soon"),
                           "Chaos Toolkit: activity timeout must be a number"),
    "several-at-once": (lambda e: (partition_args(e).update(link="nope"),
                                   opened_args(e).update(secs=3), e.pop("description")),
                        "3 problems found before the run"),
}

# file name -> (content, what the message must say)
FILES: dict[str, tuple[bytes, str]] = {
    "invalid.yaml": (b"title: [unclosed\n", "is not valid YAML/JSON: line 2, column 1"),
    "invalid.json": (b'{"title": "x", "method": [}', "is not valid YAML/JSON: line 1"),
    "empty.yaml": (b"", "empty.yaml is empty"),
    "list.yaml": (b"- 1\n- 2\n", "is a list with no method"),
    "scalar.yaml": (b"hello\n", "is a string with no method"),
    "no-method.yaml": (b"title: t\ndescription: d\n", "is a mapping with no method"),
    "binary.yaml": (b"\xff\xfe\x00bad", "cannot be read: 'utf-8' codec can't decode"),
    "incident-fault.yaml": (b"incident: X\nfault: broken\n", "fault must be a mapping"),
    "incident-sla.yaml": (b"incident: X\nfault: {kind: broker-errors, duration_s: 10}\n"
                          b"promised: {sla: [1]}\n", "promised.sla must be a mapping"),
    "incident-kind.yaml": (b"incident: X\nfault: {kind: dns, duration_s: 10}\n",
                           "fault kind 'dns' is unknown: valid are broker-link-down"),
    "incident-field.yaml": (b"incident: X\nfalt: {kind: broker-errors}\n",
                            "fields ['falt'] are unknown"),
    "incident-number.yaml": (b"incident: X\nfault: {kind: broker-errors, duration_s: ten}\n",
                             "duration_s='ten' is not a number (valid: 5..3600)"),
}

GOOD = str(ROOT / "experiments" / "broker-down.yaml")
# extra `gameday run` arguments -> what the message must say
RUN_ARGUMENTS: dict[str, tuple[list[str], str]] = {
    "missing-file": (["experiments/nope.yaml"], "experiment experiments/nope.yaml does not exist"),
    "directory": (["experiments"], "experiments is a directory: name the experiment files"),
    "var-no-equals": ([GOOD, "--var", "x"], "--var 'x' is invalid: expected key=value"),
    "var-no-key": ([GOOD, "--var", "=1"], "--var '=1' is invalid: expected key=value"),
    "var-no-value": ([GOOD, "--var", "x="], "--var 'x=' has no value: expected key=value"),
    "var-bad-key": ([GOOD, "--var", "a-b=1"], "--var 'a-b=1' is invalid"),
    "var-unknown-key": ([GOOD, "--var", "sla_windw_s=5"],
                        "--var sla_windw_s: no selected experiment has this configuration key "
                        "(did you mean sla_window_s?)"),
    "var-word-for-number": ([GOOD, "--var", "sla_window_s=abc"],
                            "--var sla_window_s='abc' is not a number"),
    "var-nan": ([GOOD, "--var", "sla_window_s=nan"], "--var sla_window_s='nan' is not a number"),
    "var-out-of-range": ([GOOD, "--var", "sla_window_s=1"], "window_s=1.0 is out of range"),
    "var-negative-pause": ([GOOD, "--var", "outage_hold_s=-5"],
                           "pauses after=-5 (from ${outage_hold_s}) is not a number of "
                           "seconds >= 0"),
    "unknown-tag": (["--tag", "nope"], "no experiment has tag nope: known tags are"),
    "unknown-target": ([GOOD, "--target", "mars"], "invalid choice: 'mars'"),
    "junit-directory": ([GOOD, "--junit", "experiments"], "--junit experiments is a directory"),
    "reports-file": ([GOOD, "--reports", GOOD], "is a file: name a directory"),
}


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every spoiled experiment and bad file, in one directory."""
    directory = tmp_path_factory.mktemp("bad")
    for name, (mutate, _) in EXPERIMENTS.items():
        experiment = copy.deepcopy(BASE)
        mutate(experiment)
        (directory / f"{name}.yaml").write_text(yaml.safe_dump(experiment, sort_keys=False))
    for name, (content, _) in FILES.items():
        (directory / name).write_bytes(content)
    return directory


@pytest.fixture(scope="module")
def since_unix(lab: RunningLab) -> float:
    """When this module's bad runs began (nothing may be injected from then on)."""
    return time.time()


@pytest.mark.lab
@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_a_spoiled_experiment_is_refused_before_the_run(
        lab: RunningLab, bad_files: Path, since_unix: float, tmp_path: Path, name: str) -> None:
    result = lab.gameday("run", "--reports", str(tmp_path), str(bad_files / f"{name}.yaml"))
    assert_refused(result, EXPERIMENTS[name][1])
    assert "nothing was started" in result.stderr


@pytest.mark.lab
@pytest.mark.parametrize("name", sorted(FILES))
def test_a_bad_file_is_refused(lab: RunningLab, bad_files: Path, since_unix: float,
                               tmp_path: Path, name: str) -> None:
    result = lab.gameday("run", "--reports", str(tmp_path), str(bad_files / name))
    assert_refused(result, FILES[name][1])


@pytest.mark.lab
@pytest.mark.parametrize("name", sorted(RUN_ARGUMENTS))
def test_bad_run_arguments_are_refused(lab: RunningLab, since_unix: float, tmp_path: Path,
                                       name: str) -> None:
    args, message = RUN_ARGUMENTS[name]
    assert_refused(lab.gameday("run", "--reports", str(tmp_path), *args), message)


@pytest.mark.lab
def test_nothing_was_injected_by_the_bad_runs(lab: RunningLab, since_unix: float) -> None:
    log = InjectionLog(lab.state_dir)
    assert log.pending() == []
    assert [e for e in log.entries() if e.get("at_unix", 0) >= since_unix] == []
    doctor = lab.gameday("lab", "doctor")
    assert doctor.returncode == 0, text(doctor)
