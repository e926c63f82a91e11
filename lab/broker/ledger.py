"""The broker's ledger: every fill, in SQLite, readable for reconciliation.

With a file path (``--ledger PATH``) the ledger survives a restart of the simulator,
including a SIGKILL: every fill is committed before its answer is sent. It is not synced
to disk (WAL journal, ``synchronous=OFF``): durable against a crash or kill of the
process, not of the machine — measured, this halves the cost of a fill (~36 µs) and
removes the checkpoint fsync stalls (up to 7 ms) that would hold up the event loop.
Without a path the ledger lives in memory for the life of the process. Fill ids are the ledger's own
increasing integers (as text), never reused.

:class:`FillQuery` is what ``GET /fills`` accepts: ``since`` and ``until`` in unix
seconds (``since <= filled_at < until``) and an optional ``client_order_id``;
:func:`parse_fill_query` validates the query string (pure).
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass

from lab.broker.orders import MAX_TEXT_CHARS, Fill, Order, is_unicode_text

__all__ = ["FillQuery", "InvalidQuery", "Ledger", "parse_fill_query"]

MEMORY = ":memory:"
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS fills (
        fill_seq INTEGER PRIMARY KEY AUTOINCREMENT,
        client_order_id TEXT NOT NULL,
        instrument TEXT NOT NULL,
        units INTEGER NOT NULL,
        price REAL NOT NULL,
        fill_price REAL NOT NULL,
        filled_at_s REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS fills_by_order ON fills (client_order_id)",
    "CREATE INDEX IF NOT EXISTS fills_by_time ON fills (filled_at_s)",
)
_COLUMNS = "fill_seq, client_order_id, instrument, units, price, fill_price, filled_at_s"
_Row = tuple[int, str, str, int, float, float, float]


class InvalidQuery(ValueError):
    """A ``GET /fills`` query string that cannot be read; ``field`` names the culprit."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class FillQuery:
    """Which fills to read: ``since_s <= filled_at < until_s`` (unix seconds), and only
    ``client_order_id``'s when it is set."""

    since_s: float = 0.0
    until_s: float = math.inf
    client_order_id: str | None = None


def _seconds(params: Mapping[str, str], name: str, default: float) -> float:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidQuery(f"{name} must be unix seconds, got {raw!r}", name) from None
    if math.isnan(value):
        raise InvalidQuery(f"{name} must be unix seconds, got {raw!r}", name)
    return value


def parse_fill_query(params: Mapping[str, str]) -> FillQuery:
    """Validate ``since``, ``until`` (unix seconds) and ``client_order_id``."""
    client_order_id = params.get("client_order_id")
    if client_order_id is not None and not (
        0 < len(client_order_id) <= MAX_TEXT_CHARS and is_unicode_text(client_order_id)
    ):
        raise InvalidQuery(f"client_order_id must be 1..{MAX_TEXT_CHARS} valid characters",
                           "client_order_id")
    since_s = _seconds(params, "since", 0.0)
    until_s = _seconds(params, "until", math.inf)
    if until_s < since_s:
        raise InvalidQuery("until must not be before since", "until")
    return FillQuery(since_s, until_s, client_order_id)


def _fill(row: _Row) -> Fill:
    seq, client_order_id, instrument, units, price, fill_price, filled_at_s = row
    order = Order(client_order_id, instrument, units, price)
    return Fill(str(seq), order, fill_price, filled_at_s)


class Ledger:
    """Fills in SQLite at ``path`` (``":memory:"`` = in memory only)."""

    def __init__(self, path: str = MEMORY) -> None:
        self._db = sqlite3.connect(path, isolation_level=None)  # autocommit
        if path != MEMORY:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=OFF")
        for statement in _SCHEMA:
            self._db.execute(statement)

    def first_fill(self, client_order_id: str) -> Fill | None:
        """The first fill booked for ``client_order_id``, if any."""
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM fills WHERE client_order_id = ? ORDER BY fill_seq LIMIT 1",
            (client_order_id,),
        ).fetchone()
        return None if row is None else _fill(row)

    def add(self, order: Order, fill_price: float, filled_at_s: float) -> Fill:
        """Book a new fill of ``order`` (committed when this returns)."""
        cursor = self._db.execute(
            "INSERT INTO fills (client_order_id, instrument, units, price, fill_price,"
            " filled_at_s) VALUES (?, ?, ?, ?, ?, ?)",
            (order.client_order_id, order.instrument, order.units, order.price,
             fill_price, filled_at_s),
        )
        assert cursor.lastrowid is not None
        return Fill(str(cursor.lastrowid), order, fill_price, filled_at_s)

    def fills(self, query: FillQuery) -> list[Fill]:
        """Fills matching ``query``, oldest first."""
        sql = f"SELECT {_COLUMNS} FROM fills WHERE filled_at_s >= ? AND filled_at_s < ?"
        args: list[object] = [query.since_s, query.until_s]
        if query.client_order_id is not None:
            sql += " AND client_order_id = ?"
            args.append(query.client_order_id)
        return [_fill(row) for row in self._db.execute(sql + " ORDER BY fill_seq", args)]

    def count(self) -> int:
        """How many fills the ledger holds."""
        return int(self._db.execute("SELECT COUNT(*) FROM fills").fetchone()[0])

    def close(self) -> None:
        """Close the database (the ledger is unusable afterwards)."""
        self._db.close()
