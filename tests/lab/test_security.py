"""Admin API security: loopback only, a bearer token when GAMEDAY_ADMIN_TOKEN is set, and
the token never written anywhere.

The pure parts are in tests/unit/test_admin_token.py. Here a lab of its own (its own
port base, state and reports directories) runs with a random, distinctive token: both
admin APIs refuse requests without it or with another one, every client of the project
sends it, two experiments (a broker failure through the broker simulator's admin API, a
partition through the fault proxy) run through `gameday run` and get reports, and at
the end every file under the lab's state directory, the run and reports directories
(journals, Chaos Toolkit logs, traffic files, HTML) and every file of the project
touched meanwhile, plus everything the CLI printed, is searched for the token, its
base64 forms and the `Bearer <token>` header: there must be no hit.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support.labs import ROOT, PortBases, RunningLab, lab_env
from support.secrets import files, holders, needles

from gameday.clients.toxiproxy import Toxiproxy
from gameday.contract import InjectionError, MeasurementError
from gameday.settings import resolve
from gameday.targets.lab import LabTarget
from lab.supervisor_client import SupervisorClient

EXPERIMENTS = ("experiments/broker-errors.yaml", "experiments/broker-down.yaml")
# --- pure parts ----------------------------------------------------------------------


@dataclass
class SecuredLab:
    """A lab started with an admin token, and everything its CLI printed."""

    lab: RunningLab
    token: str
    base: Path
    started_s: float
    outputs: list[str] = field(default_factory=list)
    status: dict[str, object] = field(default_factory=dict)

    def gameday(self, *args: str, env: dict[str, str] | None = None,
                timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
        """Run the CLI (with the token unless ``env`` says otherwise), keeping its output."""
        result = subprocess.run(
            [sys.executable, "-m", "gameday", *args], cwd=ROOT, env=env or self.lab.env,
            capture_output=True, text=True, timeout=timeout_s, check=False,
        )
        self.outputs += [f"gameday {' '.join(args)}: stdout", result.stdout,
                         f"gameday {' '.join(args)}: stderr", result.stderr]
        return result

    def url(self, key: str) -> str:
        """A URL from ``gameday lab status --json`` (as the lab came up)."""
        if not self.status:
            self.status = json.loads(self.gameday("lab", "status", "--json").stdout)
        return str(self.status[key])


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory,
            port_bases: PortBases) -> Iterator[SecuredLab]:
    """The whole lab, up with a fresh random token for this module."""
    token = f"gdtok-{secrets.token_hex(20)}-Zq9"
    base = tmp_path_factory.mktemp("secured-lab")
    env = {**lab_env(base / "state", port_bases.take(), base / "run"), "GAMEDAY_ADMIN_TOKEN": token}
    env.pop("GAMEDAY_LAB_SABOTAGE", None)
    secured = SecuredLab(RunningLab(env, base / "state"), token, base, time.time())
    up = secured.gameday("lab", "up", timeout_s=120)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        yield secured
    finally:
        down = secured.gameday("lab", "down", timeout_s=60)
        assert down.returncode == 0, down.stdout + down.stderr


def call(method: str, url: str, headers: dict[str, str] | None = None,
         body: object = None) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, raw body) of one request; 4xx/5xx do not raise."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def _listening_hosts(port: int) -> set[str]:
    """The local IPv4/IPv6 addresses with a socket listening on ``port`` (Linux /proc)."""
    hosts = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:
                hosts.add(address)
    return hosts


def test_admin_apis_listen_on_loopback_only(secured: SecuredLab) -> None:
    for key in ("fault_proxy_url", "broker_admin_url"):
        port = int(secured.url(key).rsplit(":", 1)[1])
        assert _listening_hosts(port) == {"0100007F"}, f"{key} must bind 127.0.0.1 only"


def _admin_routes(secured: SecuredLab) -> list[tuple[str, str, object]]:
    proxy = secured.url("fault_proxy_url")
    admin = secured.url("broker_admin_url")
    return [
        ("GET", proxy + "/proxies", None),
        ("POST", proxy + "/proxies/service-broker/toxics", {"type": "latency"}),
        ("POST", proxy + "/proxies/service-broker", {"enabled": False}),
        ("POST", proxy + "/reset", None),
        ("GET", admin + "/admin/mode", None),
        ("POST", admin + "/admin/mode", {"mode": "hang"}),
        ("POST", admin + "/admin/reset", {}),
        ("DELETE", admin + "/admin/mode", None),
    ]


@pytest.mark.parametrize("sent", [None, "Bearer wrong-token", "Basic TOKEN", "TOKEN",
                                  "Bearer TOKENx", "Bearer"])
def test_admin_apis_refuse_a_missing_or_wrong_token(secured: SecuredLab, sent: str | None) -> None:
    headers = {} if sent is None else {"Authorization": sent.replace("TOKEN", secured.token)}
    for method, url, body in _admin_routes(secured):
        status, answer_headers, raw = call(method, url, headers, body)
        assert status == 401, (method, url, raw)
        assert answer_headers["WWW-Authenticate"].startswith("Bearer"), answer_headers
        answer = json.loads(raw)
        assert answer["status"] == 401 and "GAMEDAY_ADMIN_TOKEN" in answer["error"]
        assert secured.token not in raw.decode() and "wrong-token" not in raw.decode()
    good = {"Authorization": f"Bearer {secured.token}"}
    proxies = json.loads(call("GET", secured.url("fault_proxy_url") + "/proxies", good)[2])
    assert proxies["service-broker"]["enabled"] is True, "a refused request changed nothing"
    assert proxies["service-broker"]["toxics"] == []
    mode = call("GET", secured.url("broker_admin_url") + "/admin/mode", good)
    assert json.loads(mode[2]) == {"mode": "normal"}


def test_admin_apis_accept_the_token(secured: SecuredLab) -> None:
    good = {"Authorization": f"Bearer {secured.token}"}
    for method, url, body in _admin_routes(secured):
        if body in ({"enabled": False}, {"mode": "hang"}):
            continue  # would break the lab for the experiments that follow
        status, _, raw = call(method, url, good, body)
        assert status < 300, (method, url, raw)
        if "/toxics" in url:
            name = json.loads(raw)["name"]
            assert call("DELETE", f"{url}/{name}", good)[0] == 204


def test_metrics_and_version_stay_open_for_scrapes_and_readiness(secured: SecuredLab) -> None:
    proxy = secured.url("fault_proxy_url")
    assert call("GET", proxy + "/version")[0] == 200
    status, headers, raw = call("GET", proxy + "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert secured.token not in raw.decode()
    assert call("POST", proxy + "/version")[0] == 401, "only reading is open"


def test_browsers_are_refused_even_with_the_token(secured: SecuredLab) -> None:
    headers = {"Authorization": f"Bearer {secured.token}", "User-Agent": "Mozilla/5.0"}
    for url in (secured.url("fault_proxy_url") + "/proxies",
                secured.url("broker_admin_url") + "/admin/mode"):
        assert call("GET", url, headers)[0] == 403


def _in_env(secured: SecuredLab, monkeypatch: pytest.MonkeyPatch, token: str | None) -> LabTarget:
    for key, value in secured.lab.env.items():
        if key.startswith("GAMEDAY_"):
            monkeypatch.setenv(key, value)
    if token is None:
        monkeypatch.delenv("GAMEDAY_ADMIN_TOKEN")
    else:
        monkeypatch.setenv("GAMEDAY_ADMIN_TOKEN", token)
    return LabTarget.from_settings(resolve())


def test_clients_send_the_token(secured: SecuredLab, monkeypatch: pytest.MonkeyPatch) -> None:
    target = _in_env(secured, monkeypatch, secured.token)
    assert target.leftovers() == []
    toxiproxy = Toxiproxy(target.fault_proxy_url())
    toxiproxy.add_toxic("service-broker", {"name": "t", "type": "latency"})
    assert toxiproxy.remove_toxics("service-broker") == ["t"]
    target.partition("service-broker")
    target.heal("service-broker")
    assert target.leftovers() == []


@pytest.mark.parametrize("token", [None, "another-token"])
def test_clients_without_the_token_say_so(
    secured: SecuredLab, monkeypatch: pytest.MonkeyPatch, token: str | None
) -> None:
    target = _in_env(secured, monkeypatch, token)
    with pytest.raises(MeasurementError, match="GAMEDAY_ADMIN_TOKEN") as leftovers:
        target.leftovers()
    with pytest.raises(InjectionError, match="GAMEDAY_ADMIN_TOKEN") as partition:
        target.partition("service-broker")
    for error in (leftovers.value, partition.value):
        assert secured.token not in str(error) and "another-token" not in str(error)
    env = {**secured.lab.env, "GAMEDAY_ADMIN_TOKEN": token or ""}
    doctor = secured.gameday("lab", "doctor", env=env)
    assert doctor.returncode == 1 and "GAMEDAY_ADMIN_TOKEN" in doctor.stdout
    assert secured.gameday("lab", "doctor").returncode == 0


def _environ(pid: int) -> bytes:
    return Path(f"/proc/{pid}/environ").read_bytes()


def test_only_the_admin_servers_get_the_token(secured: SecuredLab) -> None:
    """Through supervisord's inherited environment, not through any file."""
    layout = LabTarget.from_settings(resolve(secured.lab.env)).layout
    processes = {p.name: p.pid for p in SupervisorClient(layout.socket_path).processes()}
    needle = f"GAMEDAY_ADMIN_TOKEN={secured.token}".encode()
    for name, pid in processes.items():
        has_it = needle in _environ(pid).split(b"\0")
        assert has_it is (name in ("broker", "faultproxy")), name


def test_experiments_pass_and_report_with_the_token(secured: SecuredLab) -> None:
    reports = secured.base / "reports"
    result = secured.gameday("run", *EXPERIMENTS, "--reports", str(reports))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert f"{len(EXPERIMENTS)} passed, 0 failed" in result.stdout
    journals = sorted(str(path) for path in reports.glob("*.journal.json"))
    assert len(journals) == len(EXPERIMENTS)
    report = secured.gameday("report", *journals, "--out", str(secured.base / "html"))
    assert report.returncode == 0, report.stdout + report.stderr
    assert list((secured.base / "html").glob("*.html"))
    status = secured.gameday("lab", "status", "--json")
    assert status.returncode == 0 and secured.token not in status.stdout + status.stderr
    assert secured.gameday("lab", "doctor").returncode == 0


# --- nothing holds the token (keep last) ---------------------------------------------


def test_no_file_or_output_holds_the_token(secured: SecuredLab) -> None:
    wanted = needles(secured.token)
    ours = list(files([secured.base]))
    assert len(ours) > 20, "the lab, run and reports must have written files"
    assert any(p.name.endswith(".journal.json") for p in ours), "an experiment must have run"
    assert any(p.name.endswith(".chaos.log") for p in ours)
    assert any(p.suffix == ".log" and "logs" in p.parts for p in ours)
    found = holders(iter(ours), wanted)
    found += holders(files([ROOT], since_s=secured.started_s - 1), wanted)
    assert found == [], "files holding the admin token:\n" + "\n".join(found)
    printed = "\n".join(secured.outputs)
    assert printed, "the CLI's output is checked too"
    assert [what for what, needle in wanted.items() if needle.decode() in printed] == []
