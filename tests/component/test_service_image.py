"""deploy/kubernetes and the resilience workflow: offline schema validation (Kubernetes
1.37, kubernetes-validate's bundled schemas, strict), least-privilege RBAC, hardened
containers, and SLA recording rules that cannot drift from ``gameday.measurements.sla``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOT_IN_THE_SERVICE_IMAGE = ("chaoslib", "chaostoolkit", "chaosk8s", "chaosaddons", "kubernetes",
                            "yaml", "hdrh", "supervisor", "probes", "actions", "controls")


def _gameday_modules_copied() -> tuple[str, ...]:
    """The gameday modules the service's Dockerfile copies into its image."""
    dockerfile = (ROOT / "deploy" / "docker" / "service.Dockerfile").read_text()
    [line] = [line for line in dockerfile.splitlines()
              if line.startswith("COPY gameday/") and line.endswith(" /app/gameday/")]
    sources = line.split()[1:-1]
    return tuple(source.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
                 for source in sources)


def test_the_service_runs_on_what_its_image_copies(tmp_path: Path) -> None:
    """Import the service's entry point (and the broker simulator's) with every module the
    image leaves out made unimportable: of gameday only what the image copies (the
    contract and the HTTP/1.1 client), and none of the runner's libraries."""
    copied = _gameday_modules_copied()
    assert set(copied) == {"gameday", "gameday.contract", "gameday.http1"}
    blocker = (
        "import sys, importlib.abc\n"
        f"BLOCKED = {NOT_IN_THE_SERVICE_IMAGE!r}\n"
        f"COPIED = {copied!r}\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        top = name.split('.')[0]\n"
        "        gameday_part = top == 'gameday' and name not in COPIED\n"
        "        if top in BLOCKED or gameday_part:\n"
        "            raise ImportError(f'{name} is not in the service image')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import lab.service.__main__, lab.broker.__main__\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", blocker], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.stdout.strip() == "ok", done.stderr


