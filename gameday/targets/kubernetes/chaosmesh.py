"""Pure helpers of the kubernetes target's gray faults: the Chaos Mesh objects it creates.

Chaos Mesh (https://chaos-mesh.org) is an existing, trusted engine: its controller and
daemon do the privileged work, gameday only creates and deletes its objects, in the
service's namespace (API group ``chaos-mesh.org/v1alpha1``):

| gameday fault | Chaos Mesh object | its name |
|---|---|---|
| ``freeze`` | NetworkChaos ``loss`` 100 % on the pods | ``gameday-freeze-<selector>`` |
| ``cpu-throttle`` | StressChaos, CPU stressors in the pods | ``gameday-cpu-throttle-<selector>`` |
| ``replica-link-degrade`` | NetworkChaos ``delay`` on one pod | ``gameday-degrade-<link>`` |

Every object carries the labels ``app.kubernetes.io/managed-by=gameday`` and
``gameday.io/fault=<fault>`` (and ``gameday.io/link=<link>`` for a link), so that the
leftovers check finds them by label, and the undo deletes it by name (a name the same
fault on the same selector or link always gets again). No object sets a ``duration``:
it lasts until gameday deletes it.

Why these objects:

- **freeze** must leave the process alive with its sockets open while it answers
  nothing. PodChaos ``pod-failure`` swaps the container's image for ``pause``: the
  process is gone and connections are refused, a different failure. Chaos Mesh has no
  SIGSTOP for pods (only chaosd's process attack, for physical machines). A NetworkChaos
  ``loss`` of 100 % drops every packet the pod sends: the process runs on with its
  sockets, but no answer, no SYN-ACK and none of its own calls (to the broker) leave
  it, so callers and health probes time out, as with a frozen process. What differs:
  the process still uses CPU and its timers run, so it catches up at once when thawed.
- **cpu-throttle** cannot lower the container's CFS quota through Chaos Mesh. A
  StressChaos runs ``workers`` busy CPU stressors inside the container's cgroup, so they
  share its CPU limit with the service: with a limit of L cores and W workers at 100 %
  load, a CPU-bound service thread gets about L / (W + 1). gameday picks
  W = ceil(L / cores) - 1 (:func:`stress_workers`). This starves the container by
  competition within its limit, not by a lower quota: the service is slowed only as much
  as it wants the CPU, and a container without a CPU limit cannot be throttled this way.
- **replica-link-degrade** is a Toxiproxy latency toxic in the lab. On Kubernetes the
  load balancer is the Service (no proxy sits on one replica's link), so a NetworkChaos
  ``delay`` on that one pod delays what it sends: its answers to the load balancer,
  like the toxic's ``downstream`` stream, but also its own calls (to the broker).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gameday.contract import (
    CPU_THROTTLE_FAULT,
    FREEZE_FAULT,
    REPLICA_LINK_DEGRADE_FAULT,
    ConfigError,
)
from gameday.targets.kubernetes.objects import MANAGED_BY

__all__ = [
    "API_VERSION",
    "CHAOS_MESH_RELEASE",
    "FAULT_LABEL",
    "FAULT_RESOURCES",
    "GROUP",
    "LINK_LABEL",
    "NETWORK_CHAOS",
    "PLURALS",
    "STRESS_CHAOS",
    "VERSION",
    "degrade_name",
    "delay_chaos",
    "freeze_chaos",
    "injected_pods",
    "leftover_problems",
    "object_name",
    "plural",
    "stress_chaos",
    "stress_workers",
    "unsupported",
]

GROUP = "chaos-mesh.org"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
NETWORK_CHAOS = "networkchaos"
STRESS_CHAOS = "stresschaos"
CHAOS_MESH_RELEASE = "2.8"
"""The Chaos Mesh release whose CRDs the objects are validated against (2.8.3)."""

FAULT_LABEL = "gameday.io/fault"
LINK_LABEL = "gameday.io/link"
SELECTOR_ANNOTATION = "gameday.io/selector"

FAULT_RESOURCES = {FREEZE_FAULT: NETWORK_CHAOS, CPU_THROTTLE_FAULT: STRESS_CHAOS,
                   REPLICA_LINK_DEGRADE_FAULT: NETWORK_CHAOS}
"""The Chaos Mesh resource each fault is made of."""

PLURALS = (NETWORK_CHAOS, STRESS_CHAOS)
_KINDS = {NETWORK_CHAOS: "NetworkChaos", STRESS_CHAOS: "StressChaos"}
_NAME_CHARS = re.compile(r"[^a-z0-9]+")
_SLUG_CHARS = 30
MAX_WORKERS = 64


def object_name(fault: str, selector: str) -> str:
    """The name of ``fault``'s object on the pods of ``selector`` (pure): readable, and
    distinct for distinct selectors (a hash of the selector ends it)."""
    slug = _NAME_CHARS.sub("-", selector.lower()).strip("-")[:_SLUG_CHARS].strip("-")
    digest = hashlib.sha256(selector.encode()).hexdigest()[:8]
    return f"gameday-{fault}-{slug}-{digest}" if slug else f"gameday-{fault}-{digest}"


def plural(body: Mapping[str, Any]) -> str:
    """The resource (plural) of a Chaos Mesh object built here."""
    return next(name for name, kind in _KINDS.items() if kind == body["kind"])


def degrade_name(link: str) -> str:
    """The name of the NetworkChaos that degrades ``link`` (``lb-replica-N``)."""
    return f"gameday-degrade-{link}"


def _chaos(resource: str, name: str, labels: Mapping[str, str],
           annotations: Mapping[str, str], spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": _KINDS[resource],
            "metadata": {"name": name, "labels": {**MANAGED_BY, **labels},
                         "annotations": dict(annotations)},
            "spec": spec}


def _pods_of(namespace: str, pods: Sequence[str]) -> dict[str, Any]:
    """Chaos Mesh's selector of exactly ``pods``: the pods ``selector`` matched when the
    fault was injected (the lab's ``name=replica-N`` is the N-th pod then; a replacement
    pod is not faulted, as a restarted replica process would not be frozen)."""
    return {"mode": "all", "selector": {"pods": {namespace: list(pods)}}}


def freeze_chaos(namespace: str, selector: str, pods: Sequence[str]) -> dict[str, Any]:
    """NetworkChaos dropping every packet ``pods`` (those ``selector`` matched) send:
    ``loss`` 100 %, fully correlated."""
    spec = {"action": "loss", **_pods_of(namespace, pods),
            "loss": {"loss": "100", "correlation": "100"}}
    return _chaos(NETWORK_CHAOS, object_name(FREEZE_FAULT, selector),
                  {FAULT_LABEL: FREEZE_FAULT}, {SELECTOR_ANNOTATION: selector}, spec)


def stress_workers(limit_cores: float, cores: float) -> int:
    """How many busy CPU workers leave a CPU-bound thread about ``cores`` of a container
    limited to ``limit_cores`` (pure): ceil(limit / cores) - 1, at least 1; ConfigError
    when ``cores`` is not below the limit or more than 64 workers would be needed."""
    if cores >= limit_cores:
        raise ConfigError(f"cores={cores:g} is not below the pods' CPU limit "
                          f"({limit_cores:g} cores): nothing to throttle")
    workers = max(1, math.ceil(limit_cores / cores - 1e-9) - 1)
    if workers > MAX_WORKERS:
        raise ConfigError(f"cores={cores:g} of a {limit_cores:g}-core limit needs {workers} "
                          f"stress workers (at most {MAX_WORKERS}): ask for more cores")
    return workers


def stress_chaos(namespace: str, selector: str, pods: Sequence[str],
                 workers: int) -> dict[str, Any]:
    """StressChaos running ``workers`` CPU stressors at 100 % load in the first
    container of each of ``pods`` (those ``selector`` matched)."""
    spec = {**_pods_of(namespace, pods),
            "stressors": {"cpu": {"workers": workers, "load": 100}}}
    return _chaos(STRESS_CHAOS, object_name(CPU_THROTTLE_FAULT, selector),
                  {FAULT_LABEL: CPU_THROTTLE_FAULT}, {SELECTOR_ANNOTATION: selector}, spec)


def _milliseconds(toxic: Mapping[str, Any], name: str) -> str:
    value = (toxic.get("attributes") or {}).get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"latency toxic attribute {name}={value!r}: valid is a number of "
                          "milliseconds >= 0")
    return f"{float(value):.3f}".rstrip("0").rstrip(".") + "ms"


def delay_chaos(namespace: str, link: str, pod: str, toxic: Mapping[str, Any]) -> dict[str, Any]:
    """NetworkChaos delaying what ``pod`` sends by the latency toxic's ``latency`` (and
    ``jitter``) milliseconds; ConfigError for any other toxic, the upstream stream or a
    toxicity below 1 (NetworkChaos delays every packet)."""
    if toxic.get("type") != "latency" or toxic.get("stream", "downstream") != "downstream":
        raise ConfigError(f"on the kubernetes target a replica link takes only a latency "
                          f"toxic on the downstream stream (a Chaos Mesh delay on the pod's "
                          f"answers), not {toxic.get('type')} {toxic.get('stream')}")
    if float(toxic.get("toxicity", 1.0)) != 1.0:
        raise ConfigError("on the kubernetes target a replica link's latency applies to "
                          "every packet: toxicity must be 1")
    spec = {"action": "delay", "mode": "all", "selector": {"pods": {namespace: [pod]}},
            "delay": {"latency": _milliseconds(toxic, "latency"),
                      "jitter": _milliseconds(toxic, "jitter"), "correlation": "0"}}
    return _chaos(NETWORK_CHAOS, degrade_name(link),
                  {FAULT_LABEL: REPLICA_LINK_DEGRADE_FAULT, LINK_LABEL: link}, {}, spec)


def injected_pods(chaos: Mapping[str, Any] | None) -> set[str]:
    """The pods Chaos Mesh reports the object injected into (pure): its status's
    ``experiment.containerRecords`` in phase ``Injected``, whose ``id`` is
    ``namespace/pod`` (or ``namespace/pod/container``). None (no object): none. This is
    Chaos Mesh's own record that its daemon applied the fault, the evidence a lab takes
    from the kernel's cgroup files."""
    status = (chaos or {}).get("status") or {}
    records = (status.get("experiment") or {}).get("containerRecords") or []
    return {str(r.get("id", "")).split("/")[1] for r in records
            if isinstance(r, Mapping) and r.get("phase") == "Injected"
            and str(r.get("id", "")).count("/") >= 1}


def unsupported(served: Iterable[str] | None, why_unknown: str = "") -> dict[str, str]:
    """The faults that cannot be injected, with why (pure): those whose resource is not
    among ``served`` (the ``chaos-mesh.org/v1alpha1`` resources the API server serves;
    None: it serves no such group, or ``why_unknown`` says why it could not be asked)."""
    names = set(served or ())
    install = (f"install Chaos Mesh {CHAOS_MESH_RELEASE} (its CRDs and controller; see "
               "deploy/kubernetes/README.md)")
    reasons = {}
    for fault, resource in FAULT_RESOURCES.items():
        if why_unknown:
            reasons[fault] = f"cannot tell whether Chaos Mesh is installed: {why_unknown}"
        elif resource not in names:
            reasons[fault] = (f"Chaos Mesh is not installed in this cluster (the API server "
                              f"serves no {resource}.{GROUP}): {install}")
    return reasons


def leftover_problems(objects: Iterable[Mapping[str, Any]]) -> list[str]:
    """Each gameday Chaos Mesh object still there, in words (pure)."""
    problems = []
    for item in objects:
        meta = item.get("metadata") or {}
        labels = meta.get("labels") or {}
        what = labels.get(LINK_LABEL) or (meta.get("annotations") or {}).get(
            SELECTOR_ANNOTATION, "?")
        problems.append(f"{item.get('kind', 'Chaos Mesh object')} {meta.get('name')} "
                        f"({labels.get(FAULT_LABEL, '?')} of {what}) is in place")
    return problems
