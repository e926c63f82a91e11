"""Kernel-level partitions: each replica in a network namespace, links cut with iptables.

Opt-in with ``GAMEDAY_LAB_NETNS=1`` (root on Linux, with ``ip`` and ``iptables``; the
default userspace fault proxy needs none of this). ``gameday lab up`` then creates, for
a lab on port base B (addresses from :class:`lab.layout.LabLayout`):

- a bridge ``gdB-br`` on the host holding the lab's gateway address (``10.231.x.1/26``),
  where the fault proxy's ``service-broker`` link listens;
- per replica N a namespace ``gdB-rN`` and a veth pair: ``gdB-rN`` on the host (a port of
  the bridge) and ``eth0`` in the namespace, which holds the replica's service address
  (HAProxy calls it) and admin address (Prometheus and probes call it). The namespace
  has no route beyond the lab's /26.

The lab records this in ``<state dir>/netns.json`` before creating anything, so that
``gameday lab down`` deletes exactly what was created, even after a crash. Host links
carry the alias ``gameday-lab:B``; a link of the same name without it is never touched.

A partition is a pair of iptables DROP rules *inside* namespaces (the host's own tables
are never changed), commented ``gameday-lab:<link>``:

- ``lb-replica-N``: in ``gdB-rN``, everything to and from the replica's service address
  and port — HAProxy's connections and any other client's time out (packets vanish);
  the admin address stays reachable, as the userspace mode's direct replica port does;
- ``service-broker``: in every namespace, everything to and from the broker link.

Unlike the userspace mode, nothing is refused or closed: connects time out and open
connections stall, as in a real partition. HAProxy reaches the replicas directly, so
the fault proxy has no ``lb-replica-N`` links to degrade in this mode (its
``service-broker`` link still takes toxics).

Packet loss on a link is the same pair of rules with the ``statistic`` match
(``-m statistic --mode random --probability P``), commented ``gameday-lab-loss:<link>``:
the kernel drops each packet either way independently with probability P (in steps of
1/2^31), and the rule's own packet counter counts the drops (``iptables -v -S``), the
fault's evidence. A packet the replica sends and its own OUTPUT rule drops is a failed
send to its TCP, which tries again on its retransmission (or zero-window probe) timer,
at least 200 ms later, as after a loss on the wire; a packet from the broker dropped on
INPUT is a plain loss. ``heal`` removes the loss rules of a link with its cut.

Every command runs with a timeout; a failure raises :class:`NetnsError` quoting it.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gameday.contract import SERVICE_BROKER_LINK
from lab.layout import LabLayout

__all__ = ["LossRule", "NetnsError", "Rule", "Tools", "check_probability", "create",
           "cut_links", "drop_packets", "dropped_packets", "heal", "loss_rules",
           "missing_requirements", "parse_loss_rules", "partition", "partition_rules",
           "recorded_layout", "remove", "require_tools"]

COMMAND_TIMEOUT_S = 5.0
NS_DEVICE = "eth0"
MARK = "gameday-lab"
LOSS_MARK = "gameday-lab-loss"
RECORD_FILE = "netns.json"
_MAX_DUPLICATES = 16


class NetnsError(RuntimeError):
    """A namespace, link or rule could not be set up or removed; the message says why."""


@dataclass(frozen=True)
class Tools:
    """Paths of the commands netns mode runs."""

    ip: str
    iptables: str


@dataclass(frozen=True)
class Rule:
    """One iptables rule of a partition: namespace, chain and match (without -j)."""

    namespace: str
    chain: str
    match: tuple[str, ...]


@dataclass(frozen=True)
class LossRule:
    """A packet-loss rule as ``iptables -v -S`` lists it: its chain, its number in the
    chain (from 1), its link, its drop probability and the packets it has dropped."""

    chain: str
    number: int
    link: str
    probability: float
    dropped_packets: int


def missing_requirements(system: str, euid: int, found: Mapping[str, str | None]) -> list[str]:
    """What netns mode lacks on this machine, in words; empty when it can run (pure)."""
    missing = [] if system == "Linux" else [f"Linux (this is {system})"]
    if euid != 0:
        missing.append(f"root (running as user id {euid})")
    packages = {"ip": "iproute2", "iptables": "iptables"}
    missing += [f"the `{cmd}` command (apt-get install -y {packages[cmd]})"
                for cmd in ("ip", "iptables") if not found.get(cmd)]
    return missing


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def require_tools() -> Tools:
    """The commands netns mode needs; NetnsError naming what is missing otherwise."""
    found = {name: _which(name) for name in ("ip", "iptables")}
    euid = os.geteuid() if hasattr(os, "geteuid") else -1
    missing = missing_requirements(platform.system(), euid, found)
    if missing:
        raise NetnsError(
            f"GAMEDAY_LAB_NETNS=1 (replicas in network namespaces) needs {'; '.join(missing)}. "
            "Unset GAMEDAY_LAB_NETNS to use the default userspace fault proxy, which needs "
            "none of this."
        )
    return Tools(ip=str(found["ip"]), iptables=str(found["iptables"]))


def _run(argv: Sequence[str], timeout_s: float = COMMAND_TIMEOUT_S,
         ok_codes: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    command = shlex.join(argv)
    try:
        result = subprocess.run(list(argv), capture_output=True, text=True,
                                timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise NetnsError(f"`{command}` did not finish within {timeout_s:g} s") from None
    except OSError as exc:
        raise NetnsError(f"`{command}` could not run: {exc}") from None
    if result.returncode not in ok_codes:
        output = (result.stderr.strip() or result.stdout.strip() or "no output")
        raise NetnsError(f"`{command}` failed (exit {result.returncode}): {output}")
    return result


def _alias(layout: LabLayout) -> str:
    return f"{MARK}:{layout.port_base}"


def _host_links(layout: LabLayout) -> list[str]:
    return [layout.netns_name(n) for n in layout.replica_names()] + [layout.netns_bridge()]


def _link_aliases(tools: Tools) -> dict[str, str]:
    """Every host link's name and alias ('' when it has none)."""
    out = _run([tools.ip, "-j", "link", "show"]).stdout
    return {link["ifname"]: link.get("ifalias", "") for link in json.loads(out or "[]")}


def _namespaces(tools: Tools) -> set[str]:
    out = _run([tools.ip, "-j", "netns", "list"]).stdout
    return {ns["name"] for ns in json.loads(out or "[]")}


def _record(layout: LabLayout) -> None:
    body = {"port_base": layout.port_base, "replica_count": layout.replica_count}
    layout.state_dir.mkdir(parents=True, exist_ok=True)
    (layout.state_dir / RECORD_FILE).write_text(json.dumps(body) + "\n", encoding="utf-8")


def recorded_layout(state_dir: Path) -> LabLayout | None:
    """The netns layout the lab in ``state_dir`` was brought up with; None if none."""
    try:
        body = json.loads((state_dir / RECORD_FILE).read_text(encoding="utf-8"))
        return LabLayout(state_dir, int(body["port_base"]), int(body["replica_count"]),
                         netns=True)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NetnsError(f"{state_dir / RECORD_FILE} is unreadable ({exc}); delete the lab's "
                         f"gd*-r* namespaces and links by hand, then that file") from None


def _check_address_space(layout: LabLayout, tools: Tools) -> None:
    subnet = str(layout.netns_subnet())
    used = json.loads(_run([tools.ip, "-j", "-4", "addr", "show", "to", subnet]).stdout or "[]")
    routes = json.loads(_run([tools.ip, "-j", "-4", "route", "show", "match",
                              layout.netns_gateway()]).stdout or "[]")
    taken = [f"address on {link['ifname']}" for link in used if link.get("addr_info")]
    taken += [f"route {r['dst']} via {r.get('dev', '?')}" for r in routes if r["dst"] != "default"]
    if taken:
        raise NetnsError(f"{subnet} (for the lab on port base {layout.port_base}) is already "
                         f"in use on this host: {', '.join(taken)}; set GAMEDAY_LAB_PORT_BASE "
                         f"to another base (the subnet is chosen by base modulo 1024)")


def _check_names_free(layout: LabLayout, tools: Tools) -> None:
    aliases = _link_aliases(tools)
    taken = [name for name in _host_links(layout) if name in aliases]
    if taken:
        raise NetnsError(f"network links {', '.join(taken)} exist without the alias "
                         f"{_alias(layout)} this lab marks its own with: set "
                         f"GAMEDAY_LAB_PORT_BASE to another base, or `ip link del` them if "
                         f"a lab that crashed while creating them left them")


def _setup_commands(layout: LabLayout, ip: str) -> list[list[str]]:
    bridge, prefix = layout.netns_bridge(), f"/{layout.netns_subnet().prefixlen}"
    commands = [[ip, "link", "add", bridge, "type", "bridge"],
                [ip, "link", "set", "dev", bridge, "alias", _alias(layout)],
                [ip, "addr", "add", layout.netns_gateway() + prefix, "dev", bridge],
                [ip, "link", "set", "dev", bridge, "up"]]
    for name in layout.replica_names():
        ns = layout.netns_name(name)
        commands += [
            [ip, "netns", "add", ns],
            [ip, "link", "add", ns, "type", "veth", "peer", "name", NS_DEVICE, "netns", ns],
            [ip, "link", "set", "dev", ns, "alias", _alias(layout), "master", bridge, "up"],
            [ip, "-n", ns, "addr", "add", layout.replica_service_host(name) + prefix,
             "dev", NS_DEVICE],
            [ip, "-n", ns, "addr", "add", layout.replica_host(name) + prefix, "dev", NS_DEVICE],
            [ip, "-n", ns, "link", "set", "dev", "lo", "up"],
            [ip, "-n", ns, "link", "set", "dev", NS_DEVICE, "up"],
        ]
    return commands


def create(layout: LabLayout, tools: Tools) -> None:
    """Create the bridge, namespaces and veths of a netns layout (removing stale ones of
    this lab first); on failure, remove whatever was created and raise NetnsError."""
    remove(layout, tools)
    _check_names_free(layout, tools)
    _check_address_space(layout, tools)
    _record(layout)
    try:
        for command in _setup_commands(layout, tools.ip):
            _run(command)
    except NetnsError:
        remove(layout, tools)
        raise


def remove(layout: LabLayout, tools: Tools) -> list[str]:
    """Delete this lab's veths, namespaces and bridge (only links carrying its alias, only
    namespaces of its plan), then its record; returns what was deleted. Idempotent."""
    aliases, namespaces = _link_aliases(tools), _namespaces(tools)
    deleted = []
    for link in _host_links(layout):
        if aliases.get(link) == _alias(layout):
            _run([tools.ip, "link", "del", "dev", link])
            deleted.append(f"link {link}")
    for ns in (layout.netns_name(n) for n in layout.replica_names()):
        if ns in namespaces:
            _run([tools.ip, "netns", "del", ns])
            deleted.append(f"namespace {ns}")
    (layout.state_dir / RECORD_FILE).unlink(missing_ok=True)
    return deleted


def _comment(link: str, mark: str = MARK) -> tuple[str, ...]:
    return ("-m", "comment", "--comment", f"{mark}:{link}")


def _link_matches(layout: LabLayout, link: str) -> list[Rule]:
    """Both directions of ``link`` as uncommented rules (pure); NetnsError if unknown."""
    if link == SERVICE_BROKER_LINK:
        gateway, port = layout.netns_gateway(), str(layout.port("service_broker_link"))
        return [rule for name in layout.replica_names() for rule in (
            Rule(layout.netns_name(name), "OUTPUT", ("-d", gateway, "-p", "tcp", "--dport", port)),
            Rule(layout.netns_name(name), "INPUT", ("-s", gateway, "-p", "tcp", "--sport", port)))]
    for name in layout.replica_names():
        if link == layout.lb_link_name(name):
            address, port = layout.replica_service_host(name), str(layout.replica_port(name))
            return [Rule(layout.netns_name(name), "INPUT",
                         ("-d", address, "-p", "tcp", "--dport", port)),
                    Rule(layout.netns_name(name), "OUTPUT",
                         ("-s", address, "-p", "tcp", "--sport", port))]
    valid = [SERVICE_BROKER_LINK] + [layout.lb_link_name(n) for n in layout.replica_names()]
    raise NetnsError(f"unknown link {link!r}: valid links are {', '.join(valid)}")


def partition_rules(layout: LabLayout, link: str) -> list[Rule]:
    """The iptables rules that cut ``link`` (pure); NetnsError for an unknown link."""
    return [Rule(r.namespace, r.chain, (*r.match, *_comment(link)))
            for r in _link_matches(layout, link)]


def check_probability(probability: float) -> float:
    """``probability`` as a float in (0, 1], or NetnsError naming the valid range (pure)."""
    if isinstance(probability, bool) or not isinstance(probability, int | float) or not (
            0 < probability <= 1):
        raise NetnsError(f"probability={probability!r} is out of range: valid is 0 < p <= 1")
    return float(probability)


def loss_rules(layout: LabLayout, link: str, probability: float) -> list[Rule]:
    """The iptables rules that drop each packet of ``link``, either way, with
    ``probability`` (pure); NetnsError for an unknown link or probability."""
    chance = f"{check_probability(probability):.11f}"
    return [Rule(r.namespace, r.chain, (*r.match, "-m", "statistic", "--mode", "random",
                                        "--probability", chance,
                                        *_comment(link, LOSS_MARK)))
            for r in _link_matches(layout, link)]


def _option(words: Sequence[str], name: str) -> str | None:
    """The word after ``name`` in ``words``, or None."""
    return words[words.index(name) + 1] if name in words[:-1] else None


def parse_loss_rules(listing: str) -> list[LossRule]:
    """The loss rules in the output of ``iptables -v -S`` (pure): lines ``-A CHAIN ...
    --probability P ... --comment "gameday-lab-loss:LINK" -c PACKETS BYTES -j DROP``;
    NetnsError for a loss rule whose probability or counter cannot be read."""
    rules: list[LossRule] = []
    numbers: dict[str, int] = {}
    for line in listing.splitlines():
        words = shlex.split(line)
        if len(words) < 2 or words[0] != "-A":
            continue
        chain = words[1]
        numbers[chain] = numbers.get(chain, 0) + 1
        comment = _option(words, "--comment") or ""
        if not comment.startswith(f"{LOSS_MARK}:"):
            continue
        try:
            rules.append(LossRule(chain, numbers[chain], comment.removeprefix(f"{LOSS_MARK}:"),
                                  float(_option(words, "--probability") or "nan"),
                                  int(_option(words, "-c") or "")))
        except ValueError:
            raise NetnsError(f"cannot read the drop probability and packet counter of the "
                             f"loss rule {line.strip()!r}") from None
    return rules


def _iptables(tools: Tools, rule: Rule, op: str, ok_codes: tuple[int, ...] = (0,)) -> int:
    argv = [tools.ip, "netns", "exec", rule.namespace, tools.iptables, "-w", "3",
            op, rule.chain, *rule.match, "-j", "DROP"]
    return _run(argv, ok_codes=ok_codes).returncode


def _present(tools: Tools, rule: Rule) -> bool:
    return _iptables(tools, rule, "-C", ok_codes=(0, 1)) == 0


def partition(layout: LabLayout, link: str, tools: Tools) -> None:
    """Cut ``link`` with DROP rules in the lab's namespaces; a no-op if already cut."""
    for rule in partition_rules(layout, link):
        if not _present(tools, rule):
            _iptables(tools, rule, "-I")


def _loss_in(ns: str, tools: Tools) -> list[LossRule]:
    """The loss rules in namespace ``ns``, with their counters."""
    argv = [tools.ip, "netns", "exec", ns, tools.iptables, "-w", "3", "-v", "-S"]
    return parse_loss_rules(_run(argv).stdout)


def _namespaces_of(layout: LabLayout, link: str) -> list[str]:
    return sorted({rule.namespace for rule in _link_matches(layout, link)})


def _remove_loss(layout: LabLayout, link: str, tools: Tools) -> None:
    """Delete every loss rule of ``link``, whatever its probability; idempotent."""
    for ns in _namespaces_of(layout, link):
        for _ in range(_MAX_DUPLICATES):
            rules = [r for r in _loss_in(ns, tools) if r.link == link]
            if not rules:
                break
            _run([tools.ip, "netns", "exec", ns, tools.iptables, "-w", "3", "-D",
                  rules[-1].chain, str(rules[-1].number)])


def drop_packets(layout: LabLayout, link: str, probability: float, tools: Tools) -> None:
    """Drop each packet of ``link``, either way, with ``probability``, with statistic
    rules in the lab's namespaces (replacing a loss of another probability on it)."""
    wanted = loss_rules(layout, link, probability)
    present = {(r.chain, round(r.probability, 9)) for ns in _namespaces_of(layout, link)
               for r in _loss_in(ns, tools) if r.link == link}
    if present != {(r.chain, round(float(probability), 9)) for r in wanted}:
        _remove_loss(layout, link, tools)
    for rule in wanted:
        if not _present(tools, rule):
            _iptables(tools, rule, "-I")


def dropped_packets(layout: LabLayout, link: str, tools: Tools) -> int:
    """The packets the loss rules of ``link`` have dropped since they were put in place
    (their own counters, summed over the lab's namespaces); NetnsError when a namespace
    of the link holds no loss rule for it (no loss in place: nothing measured)."""
    total = 0
    for ns in _namespaces_of(layout, link):
        rules = [r for r in _loss_in(ns, tools) if r.link == link]
        if not rules:
            raise NetnsError(f"no packet loss is in place on link {link} in namespace {ns}: "
                             f"read its dropped packets while the loss is on")
        total += sum(r.dropped_packets for r in rules)
    return total


def heal(layout: LabLayout, link: str, tools: Tools) -> None:
    """Delete exactly the rules that cut ``link`` (every copy) and every loss rule of
    it; idempotent."""
    for rule in partition_rules(layout, link):
        for _ in range(_MAX_DUPLICATES):
            if not _present(tools, rule):
                break
            _iptables(tools, rule, "-D")
    _remove_loss(layout, link, tools)


def _cut_in(ns: str, tools: Tools) -> set[str]:
    argv = [tools.ip, "netns", "exec", ns, tools.iptables, "-w", "3", "-S"]
    marks = (word.strip('"') for word in _run(argv).stdout.split())
    return {m.removeprefix(f"{MARK}:") for m in marks if m.startswith(f"{MARK}:")}


def cut_links(layout: LabLayout, tools: Tools) -> list[str]:
    """Partitions and packet loss still in place and namespaces missing, in words; empty
    when clean."""
    namespaces, problems = _namespaces(tools), []
    for ns in (layout.netns_name(n) for n in layout.replica_names()):
        if ns not in namespaces:
            problems.append(f"network namespace {ns} is missing")
            continue
        problems += [f"link {link} is cut (iptables DROP rules in namespace {ns})"
                     for link in sorted(_cut_in(ns, tools))]
        problems += [f"link {r.link} drops {r.probability:.3%} of its packets ({r.chain}, "
                     f"iptables statistic rule in namespace {ns})" for r in _loss_in(ns, tools)]
    return problems
