"""The lab renders any service spec: its command, environment, stop, paths and names."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from gameday.contract import MetricNaming
from gameday.service_spec import load_spec
from gameday.targets.lab import LabTarget, reference_spec_path
from lab.layout import LabLayout
from lab.render import Executables, RenderError, ServiceProgram, all_files, rules_yml
from lab.sabotage import Sabotage

EXE = Executables("/venv/bin/python", "/usr/sbin/haproxy", "/usr/bin/prometheus", "/sbin/ip")
ROOT = Path(__file__).resolve().parents[2]
NODE = ROOT / "examples" / "services" / "node-opossum" / "service.yaml"


def _spec_file(tmp_path: Path, **changes: object) -> Path:
    raw = yaml.safe_load(NODE.read_text(encoding="utf-8"))
    raw.update(workdir=str(NODE.parent), **changes)
    path = tmp_path / "service.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def _program_line(conf: str, name: str, key: str) -> str:
    block = conf.split(f"[program:{name}]\n", 1)[1].split("\n\n", 1)[0]
    lines = [line for line in block.splitlines() if line.startswith(f"{key}=")]
    assert len(lines) == 1, block
    return lines[0].removeprefix(f"{key}=")


def test_the_replicas_run_the_specs_command_in_its_directory(tmp_path: Path) -> None:
    spec = _spec_file(tmp_path, env={"MODE": "100% \"fast\"", "PORT_AGAIN": "{port}"},
                      stop={"signal": "SIGINT", "grace_s": 7}, replicas=2)
    layout = LabLayout(tmp_path / "state", port_base=30000, replica_count=2)
    lab = LabTarget(layout, service=load_spec(spec))
    conf = all_files(layout, EXE, tmp_path, lab.program())["supervisord.conf"]
    command = _program_line(conf, "replica-2", "command")
    assert shlex.split(command) == ["node", "server.js", "--host", "127.0.0.1", "--port",
                                    "30022", "--broker-url", "http://127.0.0.1:30010",
                                    "--name", "replica-2"]
    assert _program_line(conf, "replica-2", "directory") == str(NODE.parent)
    assert _program_line(conf, "replica-1", "environment") == (
        'GAMEDAY_ADMIN_TOKEN="",MODE="100%% \\"fast\\"",PORT_AGAIN="30021"')
    assert _program_line(conf, "replica-1", "stopsignal") == "INT"
    assert _program_line(conf, "replica-1", "stopwaitsecs") == "7"
    assert "[program:replica-3]" not in conf


def test_checks_scrapes_and_names_follow_the_spec(tmp_path: Path) -> None:
    spec = _spec_file(tmp_path, paths={"health": "/healthz", "ready": "/readyz",
                                       "metrics": "/prom"},
                      metrics={"broker_orders_total": "orders_total"},
                      labels={"status": "outcome"})
    layout = LabLayout(tmp_path / "state", port_base=30000)
    files = all_files(layout, EXE, tmp_path, LabTarget(layout, service=load_spec(spec))
                      .program())
    assert "option httpchk GET /readyz" in files["haproxy.cfg"]
    jobs = yaml.safe_load(files["prometheus.yml"])["scrape_configs"]
    assert [j.get("metrics_path") for j in jobs if j["job_name"] == "broker-integration"] == [
        "/prom"]
    rules = yaml.safe_load(files["rules.yml"])["groups"][0]["rules"]
    availability = next(r["expr"] for r in rules
                        if r["record"] == "gameday:sla_availability:30s")
    assert "orders_total{" in availability and 'outcome=~"filled|rejected"' in availability
    assert "broker_orders_total" not in files["rules.yml"]


def test_the_reference_service_keeps_its_log_file_and_takes_sabotage(tmp_path: Path) -> None:
    layout = LabLayout(tmp_path / "state", port_base=30000)
    program = LabTarget(layout).program()
    assert program.takes_sabotage and program.spec_path is None
    conf = all_files(layout, EXE, tmp_path, program,
                     Sabotage(frozenset({"no-breaker"})))["supervisord.conf"]
    argv = shlex.split(_program_line(conf, "replica-1", "command"))
    assert argv[argv.index("--log-file") + 1] == f"{layout.log_dir}/replica-1.log"
    assert "--failure-threshold" in argv
    assert load_spec(reference_spec_path()).name == "reference"


def test_sabotage_of_the_replicas_is_refused_for_another_service(tmp_path: Path) -> None:
    layout = LabLayout(tmp_path / "state", port_base=30000)
    program = LabTarget(layout, service=load_spec(_spec_file(tmp_path))).program()
    assert not program.takes_sabotage and program.spec_path == tmp_path / "service.yaml"
    with pytest.raises(RenderError, match="reference service only"):
        all_files(layout, EXE, tmp_path, program, Sabotage(frozenset({"retry-storm"})))
    files = all_files(layout, EXE, tmp_path, program, Sabotage(frozenset({"no-lb-retries"})))
    assert "retries 0" in files["haproxy.cfg"]


def test_identity_naming_leaves_the_rules_as_the_contract_writes_them() -> None:
    assert rules_yml() == rules_yml(MetricNaming({"broker_orders_total": "broker_orders_total"}))
    assert "broker_orders_total" in rules_yml()


def test_a_program_fills_every_placeholder() -> None:
    program = ServiceProgram(("{python}", "-m", "svc", "--log", "{log_dir}/{name}.log"),
                             Path("/srv"), env={"URL": "{broker_url}", "H": "{host}:{port}"})
    values = {"python": "py", "host": "h", "port": "1", "broker_url": "http://b",
              "name": "replica-1", "log_dir": "/logs"}
    assert program.argv(values) == ["py", "-m", "svc", "--log", "/logs/replica-1.log"]
    assert program.environment(values) == {"URL": "http://b", "H": "h:1"}


def test_a_fault_bypass_points_the_replicas_at_the_broker_itself(tmp_path: Path) -> None:
    layout = LabLayout(tmp_path / "state", port_base=30000)
    program = LabTarget(layout).program()
    bypass = Sabotage(frozenset({"fault-bypass"}))
    conf = all_files(layout, EXE, tmp_path, program, bypass)["supervisord.conf"]
    argv = shlex.split(_program_line(conf, "replica-1", "command"))
    assert argv[argv.index("--broker-url") + 1] == layout.url("broker")
    normal = all_files(layout, EXE, tmp_path, program, Sabotage())["supervisord.conf"]
    argv = shlex.split(_program_line(normal, "replica-1", "command"))
    assert argv[argv.index("--broker-url") + 1] == layout.broker_link_url()
