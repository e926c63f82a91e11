"""Rendered lab configs follow the port plan of one base."""

from __future__ import annotations

import json
from pathlib import Path

from gameday.targets.lab import LabTarget
from lab.layout import LabLayout
from lab.render import Executables, all_files

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
