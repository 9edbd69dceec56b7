"""
The durable maintenance log: every decision, acknowledgement, model change and emergency stop.

One SQLite file in WAL mode (readers never block the writer). Decisions are committed with
synchronous=NORMAL, which survives a crash of the process; acknowledgements, model changes and
emergency stops with synchronous=FULL, which also survives losing power, so nothing an operator
acknowledged is lost. Evidence is stored as JSON. Safe to share between threads.
"""
import csv
from dataclasses import asdict, dataclass
import json
import math
from pathlib import Path
import sqlite3
import threading
from typing import Iterable, List, Optional, Sequence, TextIO

# Where the agent writes and softmaint-log reads unless told otherwise.
DEFAULT_PATH = '~/.local/share/softmaint/maintenance.db'
KINDS = ('decision', 'acknowledgement', 'model_change', 'emergency_stop')
# Kinds committed with synchronous=FULL.
DURABLE_KINDS = ('acknowledgement', 'model_change', 'emergency_stop')
COLUMNS = ('id', 'stamp', 'kind', 'action', 'summary', 'request_id', 'model_id', 'evidence')

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stamp REAL NOT NULL,            -- event time [s since the epoch]
    kind TEXT NOT NULL,             -- one of KINDS
    action TEXT NOT NULL,           -- action name (decision, acknowledgement) or '' (others)
    summary TEXT NOT NULL,          -- one sentence for a human
    request_id TEXT NOT NULL,       -- assistance request it opens or answers, or ''
    model_id TEXT NOT NULL,         -- model behind it, or ''
    evidence TEXT NOT NULL          -- JSON object
);
CREATE INDEX IF NOT EXISTS events_by_stamp ON events (stamp);
CREATE INDEX IF NOT EXISTS events_by_request ON events (request_id, kind);
"""


class LogError(RuntimeError):
    """The log file cannot be opened or written as a maintenance log."""


class RequestError(ValueError):
    """An acknowledgement for an unknown or already answered request."""


@dataclass(frozen=True)
class Entry:
    """One row of the log."""

    id: int  # noqa: A003 (the column's name)
    stamp: float
    kind: str
    action: str
    summary: str
    request_id: str
    model_id: str
    evidence: dict


class MaintenanceLog:
    """Append-only maintenance log over one SQLite file."""

    def __init__(self, path, create: bool = True):
        """
        Open the log at `path`; raise LogError on failure.

        With `create` the file and its table are made when missing; without, the file must
        already be a maintenance log and is not modified by opening it.
        """
        self.path = Path(path).expanduser().absolute()
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._conn = self._connect(str(self.path))
                mode = self._conn.execute('PRAGMA journal_mode=WAL').fetchone()[0]
                if mode.lower() != 'wal':
                    raise LogError(f'{self.path}: SQLite refused WAL mode (got {mode})')
                self._conn.executescript(SCHEMA)
            else:
                if not self.path.is_file():
                    raise LogError(f'maintenance log {self.path} does not exist')
                self._conn = self._connect(self.path.as_uri() + '?mode=rw', uri=True)
                if not self._conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                                          "AND name = 'events'").fetchone():
                    raise LogError(f'{self.path} is not a maintenance log (no events table)')
            self._conn.execute('PRAGMA synchronous=NORMAL')
        except (sqlite3.Error, OSError) as err:
            raise LogError(f'cannot open maintenance log {self.path}: {err}') from err
        self._lock = threading.Lock()

    @staticmethod
    def _connect(target: str, uri: bool = False) -> sqlite3.Connection:
        return sqlite3.connect(target, timeout=10.0, isolation_level=None, uri=uri,
                               check_same_thread=False)

    def close(self) -> None:
        """Close the file (a checkpoint folds the WAL into it)."""
        with self._lock:
            self._conn.close()

    def __enter__(self):
        """Use as a context manager that closes the log."""
        return self

    def __exit__(self, *exc):
        """Close the log."""
        self.close()

    def append(self, kind: str, stamp: float, action: str = '', summary: str = '',
               request_id: str = '', model_id: str = '', evidence: Optional[dict] = None
               ) -> int:
        """Commit one event; return its id. Durable kinds are fsynced before returning."""
        if kind not in KINDS:
            raise ValueError(f'kind must be one of {KINDS}, got {kind!r}')
        if not math.isfinite(stamp):
            raise ValueError(f'stamp must be finite, got {stamp}')
        row = (float(stamp), kind, action, summary, request_id, model_id,
               json.dumps(evidence or {}, sort_keys=True))
        with self._lock:
            return self._commit(lambda: self._insert(row), durable=kind in DURABLE_KINDS)

    def acknowledge(self, request_id: str, stamp: float, action: str, summary: str,
                    evidence: dict) -> int:
        """
        Record the answer to an open assistance request; fsynced before returning.

        Raises RequestError when no decision opened `request_id` or it was answered already;
        the check and the write are one transaction.
        """
        row = (float(stamp), 'acknowledgement', action, summary, request_id, '',
               json.dumps(evidence, sort_keys=True))

        def check_and_insert():
            status = self._request_status(request_id)
            if status != 'open':
                raise RequestError(f'request {request_id!r} is {status}')
            return self._insert(row)

        with self._lock:
            return self._commit(check_and_insert, durable=True)

    def request_status(self, request_id: str) -> str:
        """Return 'unknown', 'open' or 'answered'."""
        with self._lock:
            return self._request_status(request_id)

    def query(self, kinds: Sequence[str] = (), since: Optional[float] = None,
              until: Optional[float] = None, request_id: Optional[str] = None,
              limit: Optional[int] = None, newest_first: bool = False) -> List[Entry]:
        """
        Entries in time order, filtered by kind, stamp range [since, until] and request.

        With newest_first the order is reversed, so `limit` keeps the newest entries.
        """
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f'unknown kinds {sorted(unknown)}; known: {KINDS}')
        clauses, params = [], []
        if kinds:
            clauses.append(f'kind IN ({",".join("?" * len(kinds))})')
            params.extend(kinds)
        for clause, value in (('stamp >= ?', since), ('stamp <= ?', until),
                              ('request_id = ?', request_id)):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        sql = f'SELECT {", ".join(COLUMNS)} FROM events'
        if clauses:
            sql += ' WHERE ' + ' AND '.join(clauses)
        sql += ' ORDER BY stamp DESC, id DESC' if newest_first else ' ORDER BY stamp, id'
        if limit is not None:
            sql += ' LIMIT ?'
            params.append(int(limit))
        with self._lock:
            rows = self._read(sql, params)
        try:
            return [Entry(*row[:-1], evidence=json.loads(row[-1])) for row in rows]
        except ValueError as err:
            raise LogError(f'cannot read maintenance log {self.path}: evidence is not '
                           f'JSON ({err})') from err

    def count(self) -> int:
        """Return the number of entries."""
        with self._lock:
            return self._read('SELECT COUNT(*) FROM events')[0][0]

    def _read(self, sql: str, params=()) -> list:
        """Rows of a query; a damaged or unreadable file is a LogError like a failed write."""
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as err:
            raise LogError(f'cannot read maintenance log {self.path}: {err}') from err

    def _request_status(self, request_id: str) -> str:
        kinds = {kind for (kind,) in self._read(
            'SELECT DISTINCT kind FROM events WHERE request_id = ?', (request_id,))}
        if 'acknowledgement' in kinds:
            return 'answered'
        return 'open' if request_id and 'decision' in kinds else 'unknown'

    def _insert(self, row) -> int:
        cursor = self._conn.execute(
            'INSERT INTO events (stamp, kind, action, summary, request_id, model_id, evidence) '
            'VALUES (?, ?, ?, ?, ?, ?, ?)', row)
        return cursor.lastrowid

    def _commit(self, work, durable: bool):
        """Run `work` in one write transaction (caller holds the lock)."""
        try:
            if durable:
                self._conn.execute('PRAGMA synchronous=FULL')
            try:
                self._conn.execute('BEGIN IMMEDIATE')
                try:
                    result = work()
                except BaseException:
                    if self._conn.in_transaction:   # SQLite rolls back by itself on a full disk
                        self._conn.execute('ROLLBACK')
                    raise
                self._conn.execute('COMMIT')
                return result
            finally:
                if durable:
                    self._conn.execute('PRAGMA synchronous=NORMAL')
        except sqlite3.Error as err:
            raise LogError(f'cannot write maintenance log {self.path}: {err}') from err


def write_json(entries: Iterable[Entry], stream: TextIO) -> None:
    """Write entries as one JSON array of objects."""
    json.dump([asdict(e) for e in entries], stream, indent=2)
    stream.write('\n')


def write_csv(entries: Iterable[Entry], stream: TextIO) -> None:
    """Write entries as CSV with a header; the evidence column holds JSON."""
    writer = csv.writer(stream)
    writer.writerow(COLUMNS)
    for e in entries:
        writer.writerow([e.id, repr(e.stamp), e.kind, e.action, e.summary, e.request_id,
                         e.model_id, json.dumps(e.evidence, sort_keys=True)])


WRITERS = {'json': write_json, 'csv': write_csv}
