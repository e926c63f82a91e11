"""gameday's settings, resolved in one place: the target, where the lab is, the run
directory, the admin token.

Every command, probe, action and control reads them through :func:`resolve`, so they
all agree whatever the working directory:

- ``GAMEDAY_TARGET``: ``lab`` (default) or ``kubernetes``.
- The lab's location: ``GAMEDAY_LAB_DIR`` when set; otherwise the nearest ``.lab``
  holding a lab record (``lab.json``), looking in the working directory and then its
  parents, as git finds ``.git``; otherwise the lab last brought up at its default
  location (``gameday lab up`` without ``GAMEDAY_LAB_DIR`` notes where, in
  ``$XDG_STATE_HOME/gameday/default-lab``); otherwise ``./.lab`` (where ``lab up``
  starts one). The port base and the network-namespace switch come from the lab's
  record; ``GAMEDAY_LAB_PORT_BASE`` and ``GAMEDAY_LAB_NETNS`` choose them for ``lab up``
  and must agree with the record of a lab already running.
- ``GAMEDAY_SERVICE``: the service spec (see :mod:`gameday.service_spec`) of the service
  under test; for the lab, by default the one it was brought up with (its record), else
  the reference service. On Kubernetes it gives the metric and label names to query.
- ``GAMEDAY_RUN_DIR``: where journals, reports and traffic files go (``reports``).
- ``GAMEDAY_ADMIN_TOKEN``: see :func:`gameday.contract.admin_token`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gameday.contract import LAB_RECORD_FILE, ConfigError, admin_token

__all__ = [
    "DEFAULT_PORT_BASE",
    "TARGET_NAMES",
    "LabLocation",
    "Settings",
    "forget_default_lab",
    "note_default_lab",
    "resolve",
]

TARGET_NAMES = ("lab", "kubernetes")
DEFAULT_PORT_BASE = 18000
DEFAULT_LAB_DIR = ".lab"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


@dataclass(frozen=True)
class LabLocation:
    """Where the lab is and how it was found.

    Attributes:
        state_dir: the lab's state directory (configs, logs, TSDB, injected.jsonl).
        port_base: first port of the lab; every other port is an offset from it.
        netns: replicas in network namespaces of their own (root on Linux).
        found_by: how ``state_dir`` was chosen, in words (shown when nothing runs there).
        recorded: True when ``state_dir`` holds the record of a lab brought up there.
        service: the service spec the recorded lab runs (None: the reference service).
    """

    state_dir: Path
    port_base: int = DEFAULT_PORT_BASE
    netns: bool = False
    found_by: str = "the default ./.lab"
    recorded: bool = False
    service: Path | None = None

    def how_to_point(self) -> str:
        """One sentence: where gameday looked, and how to point it at another lab."""
        return (f"looked for the lab in {self.state_dir} ({self.found_by}); start one with "
                "`gameday lab up`, or set GAMEDAY_LAB_DIR (and GAMEDAY_LAB_PORT_BASE) to "
                "where it runs")


@dataclass(frozen=True)
class Settings:
    """Every setting gameday reads from its environment, resolved once."""

    target: str
    lab: LabLocation
    run_dir: Path
    service: Path | None = None
    admin_token: str | None = field(default=None, repr=False)


def resolve(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
    """The settings from ``environ`` (default: this process' environment) as seen from
    ``cwd`` (default: the working directory). ConfigError names every bad value."""
    env = os.environ if environ is None else environ
    here = Path.cwd() if cwd is None else cwd
    target = env.get("GAMEDAY_TARGET", "").strip() or "lab"
    if target not in TARGET_NAMES:
        raise ConfigError(f"GAMEDAY_TARGET={target!r} is not a target: valid targets are "
                          f"{', '.join(TARGET_NAMES)}")
    run_dir = env.get("GAMEDAY_RUN_DIR", "").strip() or "reports"
    lab = lab_location(env, here)
    return Settings(target=target, lab=lab, run_dir=(here / run_dir).resolve(),
                    service=_service(env, here, lab if target == "lab" else None),
                    admin_token=admin_token(env))


def _service(env: Mapping[str, str], cwd: Path, lab: LabLocation | None) -> Path | None:
    """The service spec: GAMEDAY_SERVICE, else (for the lab target) the one the lab's
    record names; it must agree with the record of a running lab."""
    raw = env.get("GAMEDAY_SERVICE", "").strip()
    recorded = None if lab is None else lab.service
    if not raw:
        return recorded
    path = (cwd / raw).resolve()
    if not path.is_file():
        raise ConfigError(f"GAMEDAY_SERVICE={raw!r}: {path} is not a file; name a service "
                          "spec (see docs/contract.md), or unset it for the reference service")
    if lab is not None and lab.recorded and recorded != path:
        raise ConfigError(f"GAMEDAY_SERVICE={raw!r}, but the lab in {lab.state_dir} runs "
                          f"{recorded or 'the reference service'}: unset it, or bring the "
                          "lab down and up again with --service")
    return path


def lab_location(env: Mapping[str, str], cwd: Path) -> LabLocation:
    """The lab's location from the environment, its record and the working directory."""
    state_dir, found_by = _state_dir(env, cwd)
    record = _read_record(state_dir)
    base = _port_base(env, record)
    netns = _netns(env, record)
    service = record.get("service") if record else None
    return LabLocation(state_dir, base, netns, found_by, recorded=record is not None,
                       service=Path(service) if isinstance(service, str) and service else None)


def _state_dir(env: Mapping[str, str], cwd: Path) -> tuple[Path, str]:
    raw = env.get("GAMEDAY_LAB_DIR")
    if raw is not None:
        if not raw.strip():
            raise ConfigError("GAMEDAY_LAB_DIR is empty: unset it for the default (./.lab) "
                              "or name the lab's state directory")
        state_dir = (cwd / raw).resolve()
        if state_dir.exists() and not state_dir.is_dir():
            raise ConfigError(f"GAMEDAY_LAB_DIR={raw!r} is a file: name a directory (it is "
                              "created when missing)")
        return state_dir, "GAMEDAY_LAB_DIR"
    for folder in (cwd.resolve(), *cwd.resolve().parents):
        if (folder / DEFAULT_LAB_DIR / LAB_RECORD_FILE).is_file():
            return folder / DEFAULT_LAB_DIR, f"the nearest {DEFAULT_LAB_DIR} from {cwd}"
    noted = _noted_default(env)
    if noted is not None and (noted / LAB_RECORD_FILE).is_file():
        return noted, f"the lab last brought up at its default location ({_pointer(env)})"
    return (cwd / DEFAULT_LAB_DIR).resolve(), f"the default ./{DEFAULT_LAB_DIR} in {cwd}"


def _read_record(state_dir: Path) -> dict[str, object] | None:
    path = state_dir / LAB_RECORD_FILE
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} is unreadable ({exc}): bring the lab down with "
                          "`gameday lab down` and up again") from None
    if not isinstance(body, dict):
        raise ConfigError(f"{path} is not a lab record: bring the lab down and up again")
    return body


def _port_base(env: Mapping[str, str], record: Mapping[str, object] | None) -> int:
    recorded = record.get("port_base") if record else None
    raw = env.get("GAMEDAY_LAB_PORT_BASE", "").strip()
    if not raw:
        return int(recorded) if isinstance(recorded, int) else DEFAULT_PORT_BASE
    try:
        base = int(raw)
    except ValueError:
        raise ConfigError(f"GAMEDAY_LAB_PORT_BASE={raw!r} is not an integer port number: "
                          "valid is 1024..65000") from None
    if isinstance(recorded, int) and recorded != base:
        raise ConfigError(f"GAMEDAY_LAB_PORT_BASE={base}, but the lab found there runs on "
                          f"port base {recorded}: unset it, or set GAMEDAY_LAB_DIR to the "
                          "lab you mean")
    return base


def _netns(env: Mapping[str, str], record: Mapping[str, object] | None) -> bool:
    raw = env.get("GAMEDAY_LAB_NETNS", "").strip().lower()
    if raw not in _TRUE + _FALSE:
        raise ConfigError(f"GAMEDAY_LAB_NETNS={raw!r} is not a switch: valid are "
                          "1/true/yes/on (namespaces, root only) or 0/false/no/off/unset")
    if record is not None and "GAMEDAY_LAB_NETNS" not in env:
        return bool(record.get("netns", False))
    return raw in _TRUE


def _pointer(env: Mapping[str, str]) -> Path:
    state_home = env.get("XDG_STATE_HOME", "").strip()
    base = Path(state_home) if state_home else Path.home() / ".local" / "state"
    return base / "gameday" / "default-lab"


def _noted_default(env: Mapping[str, str]) -> Path | None:
    try:
        text = _pointer(env).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return Path(text) if text else None


def note_default_lab(settings: Settings, environ: Mapping[str, str] | None = None) -> None:
    """After ``lab up`` at the default location (no ``GAMEDAY_LAB_DIR``), note where the lab
    is, so probes run from any directory find it. Best effort: a read-only home is fine."""
    env = os.environ if environ is None else environ
    if "GAMEDAY_LAB_DIR" in env:
        return
    pointer = _pointer(env)
    try:
        pointer.parent.mkdir(parents=True, exist_ok=True)
        pointer.write_text(f"{settings.lab.state_dir}\n", encoding="utf-8")
    except OSError:
        return


def forget_default_lab(settings: Settings, environ: Mapping[str, str] | None = None) -> None:
    """After ``lab down``: drop the note when it names this lab."""
    env = os.environ if environ is None else environ
    if _noted_default(env) == settings.lab.state_dir:
        _pointer(env).unlink(missing_ok=True)
