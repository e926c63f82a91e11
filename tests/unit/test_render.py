"""Rendered lab configs follow the port plan of one base."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from gameday.contract import ConfigError
from gameday.targets.lab import LabTarget
from lab.layout import LabLayout
from lab.render import Executables, all_files
from lab.stack import fault_proxy_choice, toxiproxy_server

EXE = Executables("/venv/bin/python", "/usr/sbin/haproxy", "/usr/bin/prometheus")


def test_every_port_derives_from_the_base(tmp_path: Path) -> None:
    layout = LabLayout(tmp_path, port_base=30000)
    files = all_files(layout, EXE, tmp_path, LabTarget(layout).program())
    assert "bind 127.0.0.1:30000" in files["haproxy.cfg"]
    for link_port, port in ((30011, 30021), (30012, 30022), (30013, 30023)):
        assert f"127.0.0.1:{link_port} check" in files["haproxy.cfg"]
        assert f'"127.0.0.1:{port}"' in files["prometheus.yml"]
        assert f"--port {port}" in files["supervisord.conf"]
    assert "127.0.0.1:30002" in files["supervisord.conf"]
    proxies = json.loads(files["proxies.json"])
    assert proxies[0] == {"name": "service-broker", "listen": "127.0.0.1:30010",
                          "upstream": "127.0.0.1:30004", "enabled": True}
    assert proxies[2] == {"name": "lb-replica-2", "listen": "127.0.0.1:30012",
                          "upstream": "127.0.0.1:30022", "enabled": True}
    assert "--broker-url http://127.0.0.1:30010" in files["supervisord.conf"]
    assert "$" not in files["supervisord.conf"].replace("$state", "")


def test_the_fault_proxy_program_runs_lab_faultproxy_or_toxiproxy(tmp_path: Path) -> None:
    layout = LabLayout(tmp_path, port_base=30000)
    program = LabTarget(layout).program()
    own = all_files(layout, EXE, tmp_path, program)["supervisord.conf"]
    assert (f"command=/venv/bin/python -m lab.faultproxy --host 127.0.0.1 --port 30003 "
            f"--config {tmp_path}/proxies.json\n") in own
    toxiproxy = dataclasses.replace(EXE, toxiproxy="/cache/toxiproxy v2/server")
    conf = all_files(layout, toxiproxy, tmp_path, program)["supervisord.conf"]
    assert (f"command='/cache/toxiproxy v2/server' -host 127.0.0.1 -port 30003 "
            f"-config {tmp_path}/proxies.json -proxy-metrics\n") in conf
    assert "lab.faultproxy" not in conf


def test_the_fault_proxy_choice_and_its_refusals(tmp_path: Path) -> None:
    assert fault_proxy_choice({}) == "faultproxy"
    assert fault_proxy_choice({"GAMEDAY_LAB_FAULT_PROXY": " toxiproxy "}) == "toxiproxy"
    with pytest.raises(ConfigError, match="valid are faultproxy, toxiproxy"):
        fault_proxy_choice({"GAMEDAY_LAB_FAULT_PROXY": "Toxiproxy"})
    with pytest.raises(ConfigError, match="GAMEDAY_ADMIN_TOKEN"):
        toxiproxy_server({"GAMEDAY_ADMIN_TOKEN": "x", "XDG_CACHE_HOME": str(tmp_path)})
    with pytest.raises(ConfigError, match="never built; `make setup`"):
        toxiproxy_server({"XDG_CACHE_HOME": str(tmp_path)})
