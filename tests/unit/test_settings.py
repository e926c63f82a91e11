"""gameday.settings: one resolution of target, lab location, run directory and token."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gameday.contract import LAB_RECORD_FILE, ConfigError, MeasurementError
from gameday.settings import forget_default_lab, note_default_lab, resolve
from gameday.targets.lab import LabTarget


def _record(state_dir: Path, port_base: int, netns: bool = False) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    body = {"port_base": port_base, "replica_count": 3, "netns": netns}
    (state_dir / LAB_RECORD_FILE).write_text(json.dumps(body), encoding="utf-8")


def _env(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"XDG_STATE_HOME": str(tmp_path / "xdg"), **values}


def test_defaults(tmp_path: Path) -> None:
    settings = resolve(_env(tmp_path), cwd=tmp_path)
    assert settings.target == "lab"
    assert settings.lab.state_dir == tmp_path / ".lab"
    assert settings.lab.port_base == 18000
    assert settings.lab.netns is False
    assert settings.lab.recorded is False
    assert settings.run_dir == tmp_path / "reports"
    assert settings.admin_token is None
    layout = LabTarget.from_settings(settings).layout
    assert layout.url("prometheus") == "http://127.0.0.1:18002"
    assert layout.replica_names() == ["replica-1", "replica-2", "replica-3"]


def test_the_token_is_kept_out_of_repr(tmp_path: Path) -> None:
    settings = resolve(_env(tmp_path, GAMEDAY_ADMIN_TOKEN="s3cret-token"), cwd=tmp_path)
    assert settings.admin_token == "s3cret-token"
    assert "s3cret" not in repr(settings)


def test_the_nearest_lab_record_is_found_from_a_subdirectory(tmp_path: Path) -> None:
    _record(tmp_path / ".lab", 23000)
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    lab = resolve(_env(tmp_path), cwd=deep).lab
    assert (lab.state_dir, lab.port_base, lab.recorded) == (tmp_path / ".lab", 23000, True)


def test_the_noted_default_lab_is_found_from_anywhere(tmp_path: Path) -> None:
    repo, elsewhere = tmp_path / "repo", tmp_path / "elsewhere"
    elsewhere.mkdir()
    _record(repo / ".lab", 24000, netns=True)
    env = _env(tmp_path)
    note_default_lab(resolve(env, cwd=repo), env)
    lab = resolve(env, cwd=elsewhere).lab
    assert (lab.state_dir, lab.port_base, lab.netns) == (repo / ".lab", 24000, True)
    assert "last brought up" in lab.found_by
    forget_default_lab(resolve(env, cwd=repo), env)
    assert resolve(env, cwd=elsewhere).lab.state_dir == elsewhere / ".lab"


def test_an_explicit_lab_dir_is_never_noted(tmp_path: Path) -> None:
    env = _env(tmp_path, GAMEDAY_LAB_DIR=str(tmp_path / "mine"))
    note_default_lab(resolve(env, cwd=tmp_path), env)
    assert not (tmp_path / "xdg" / "gameday" / "default-lab").exists()


def test_explicit_port_base_must_agree_with_the_running_lab(tmp_path: Path) -> None:
    _record(tmp_path / "state", 25000)
    env = _env(tmp_path, GAMEDAY_LAB_DIR=str(tmp_path / "state"), GAMEDAY_LAB_PORT_BASE="26000")
    with pytest.raises(ConfigError, match=r"GAMEDAY_LAB_PORT_BASE=26000.*port base 25000"):
        resolve(env, cwd=tmp_path)


@pytest.mark.parametrize(("raw", "on"), [("1", True), ("on", True), ("0", False), ("", False)])
def test_netns_switch(raw: str, on: bool, tmp_path: Path) -> None:
    assert resolve(_env(tmp_path, GAMEDAY_LAB_NETNS=raw), cwd=tmp_path).lab.netns is on


@pytest.mark.parametrize(("env", "message"), [
    ({"GAMEDAY_LAB_NETNS": "maybe"}, r"GAMEDAY_LAB_NETNS=.maybe.*1/true/yes/on"),
    ({"GAMEDAY_LAB_PORT_BASE": "abc"}, r"GAMEDAY_LAB_PORT_BASE='abc' is not an integer"),
    ({"GAMEDAY_TARGET": "k8s"}, r"GAMEDAY_TARGET='k8s'.*valid targets are lab, kubernetes"),
    ({"GAMEDAY_LAB_DIR": " "}, r"GAMEDAY_LAB_DIR is empty"),
    ({"GAMEDAY_ADMIN_TOKEN": "two words"}, r"visible ASCII"),
])
def test_bad_settings_name_what_is_valid(env: dict[str, str], message: str,
                                         tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve(_env(tmp_path, **env), cwd=tmp_path)


@pytest.mark.parametrize("base", ["80", "65530"])
def test_port_base_out_of_range_is_refused_with_the_valid_range(base: str,
                                                                 tmp_path: Path) -> None:
    settings = resolve(_env(tmp_path, GAMEDAY_LAB_PORT_BASE=base), cwd=tmp_path)
    with pytest.raises(ConfigError, match=r"GAMEDAY_LAB_PORT_BASE=\d+ is out of range"):
        LabTarget.from_settings(settings)


def test_a_file_as_lab_dir_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        resolve(_env(tmp_path, GAMEDAY_LAB_DIR=str(tmp_path / "f")), cwd=tmp_path)


def test_a_probe_of_a_lab_that_does_not_run_raises_naming_where_it_looked(
        tmp_path: Path) -> None:
    target = LabTarget.from_settings(resolve(_env(tmp_path), cwd=tmp_path))
    with pytest.raises(MeasurementError,
                       match=r"no lab is running: looked for the lab in .*GAMEDAY_LAB_DIR"):
        target.ready_replicas()


def test_the_service_comes_from_gameday_service_or_the_labs_record(tmp_path: Path) -> None:
    spec = tmp_path / "svc.yaml"
    spec.write_text("name: x\n", encoding="utf-8")
    assert resolve(_env(tmp_path), tmp_path).service is None
    assert resolve(_env(tmp_path, GAMEDAY_SERVICE="svc.yaml"), tmp_path).service == spec
    state = tmp_path / ".lab"
    state.mkdir()
    (state / "lab.json").write_text(json.dumps({"port_base": 18000, "service": str(spec)}),
                                    encoding="utf-8")
    assert resolve(_env(tmp_path), tmp_path).service == spec
    assert resolve(_env(tmp_path, GAMEDAY_SERVICE=str(spec)), tmp_path).service == spec


def test_gameday_service_must_name_a_file_and_agree_with_the_running_lab(
        tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"GAMEDAY_SERVICE='nope.yaml'.*is not a file"):
        resolve(_env(tmp_path, GAMEDAY_SERVICE="nope.yaml"), tmp_path)
    other = tmp_path / "other.yaml"
    other.write_text("name: y\n", encoding="utf-8")
    _record(tmp_path / ".lab", 18000)
    with pytest.raises(ConfigError, match=r"runs the reference service.*--service"):
        resolve(_env(tmp_path, GAMEDAY_SERVICE="other.yaml"), tmp_path)
