"""A replica's JSON log file (lab.service.logs): one line per record, rotated by size."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from lab.service.logs import JsonLines, RotatingJsonFile


class _CountingFormatter(JsonLines):
    def __init__(self) -> None:
        super().__init__("replica-9")
        self.calls = 0

    def format(self, record: logging.LogRecord) -> str:
        self.calls += 1
        return super().format(record)


def _record(number: int) -> logging.LogRecord:
    record = logging.LogRecord("lab.service", logging.INFO, __file__, 1, "order %s",
                               ("filled",), None)
    record.fields = {"event": "order", "n": number}
    return record


def test_each_record_is_one_json_line_formatted_once(tmp_path: Path) -> None:
    path = tmp_path / "replica.log"
    handler = RotatingJsonFile(path, max_bytes=1_000_000, kept=2)
    formatter = _CountingFormatter()
    handler.setFormatter(formatter)
    for number in range(5):
        handler.handle(_record(number))
    handler.close()

    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["n"] for line in lines] == [0, 1, 2, 3, 4]
    assert {line["replica"] for line in lines} == {"replica-9"}
    assert formatter.calls == 5


def test_the_file_rotates_before_a_line_would_reach_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "replica.log"
    path.write_text("x" * 100 + "\n")  # a file left by an earlier run counts
    handler = RotatingJsonFile(path, max_bytes=600, kept=2)
    handler.setFormatter(JsonLines("replica-9"))
    line_bytes = len(JsonLines("replica-9").format(_record(0))) + 1
    for number in range(20):
        handler.handle(_record(number))
    handler.close()

    files = [path, path.with_name("replica.log.1"), path.with_name("replica.log.2")]
    assert all(file.exists() for file in files)
    assert not path.with_name("replica.log.3").exists()
    assert all(file.stat().st_size < 600 for file in files)
    newest = [json.loads(line)["n"] for line in path.read_text().splitlines()]
    previous = [json.loads(line)["n"] for line in files[1].read_text().splitlines()]
    assert newest[-1] == 19
    assert previous[-1] + 1 == newest[0]  # no line lost at a rotation
    assert len(previous) == 600 // line_bytes - (0 if 600 % line_bytes else 1)
