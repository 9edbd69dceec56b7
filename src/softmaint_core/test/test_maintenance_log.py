"""Maintenance log: WAL, queries, export, acknowledgements, and surviving a SIGKILLed writer."""
import csv
import io
import json
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest
from softmaint_core.maintenance_log import (LogError, MaintenanceLog, RequestError, write_csv,
                                            write_json)


@pytest.fixture
def log(tmp_path):
    with MaintenanceLog(tmp_path / 'sub' / 'maintenance.db') as opened:
        yield opened


def test_wal_mode_and_round_trip(log):
    first = log.append('decision', 100.0, 'reduce_workload', 'Reduce workload: urgency 0.45.',
                       model_id='m1', evidence={'urgency': '0.450'})
    log.append('model_change', 101.0, summary='m2 replaced m1', model_id='m2')
    assert log.count() == 2
    entry = log.query()[0]
    assert entry.id == first and entry.action == 'reduce_workload'
    assert entry.evidence == {'urgency': '0.450'} and entry.model_id == 'm1'
    mode = sqlite3.connect(str(log.path)).execute('PRAGMA journal_mode').fetchone()[0]
    assert mode == 'wal'


def test_a_full_disk_says_so_and_the_log_goes_on_afterwards(log):
    pages = log._conn.execute('PRAGMA page_count').fetchone()[0]
    log._conn.execute(f'PRAGMA max_page_count={pages + 2}')     # a disk with two pages left
    with pytest.raises(LogError, match='database or disk is full'):
        for k in range(20):
            log.append('decision', 1.0 + k, 'reduce_workload', 'x' * 3000)
    written = log.count()
    log._conn.execute('PRAGMA max_page_count=100000')            # space freed
    log.append('acknowledgement', 99.0, 'reduce_workload', 'answered')
    assert log.count() == written + 1


def test_query_by_kind_time_and_request(log):
    for i, kind in enumerate(['decision', 'decision', 'emergency_stop', 'model_change']):
        log.append(kind, 10.0 + i, request_id='r1' if i == 1 else '')
    assert [e.stamp for e in log.query(kinds=['decision'])] == [10.0, 11.0]
    in_range = log.query(since=11.0, until=12.0)
    assert [e.kind for e in in_range] == ['decision', 'emergency_stop']
    assert [e.stamp for e in log.query(request_id='r1')] == [11.0]
    assert len(log.query(limit=3)) == 3
    assert [e.stamp for e in log.query(limit=2, newest_first=True)] == [13.0, 12.0]
    with pytest.raises(ValueError, match='unknown kinds'):
        log.query(kinds=['decisions'])
    with pytest.raises(ValueError, match='kind must be one of'):
        log.append('note', 1.0)
    with pytest.raises(ValueError, match='stamp must be finite'):
        log.append('decision', float('nan'))


def test_acknowledge_only_open_requests_once(log):
    log.append('decision', 1.0, 'request_assistance', request_id='req-a')
    assert log.request_status('req-a') == 'open'
    assert log.request_status('req-b') == 'unknown'
    assert log.request_status('') == 'unknown'
    log.acknowledge('req-a', 2.0, 'schedule_maintenance', 'ada: seen a crack',
                    {'operator': 'ada'})
    assert log.request_status('req-a') == 'answered'
    with pytest.raises(RequestError, match="'req-a' is answered"):
        log.acknowledge('req-a', 3.0, 'continue_monitoring', '', {})
    with pytest.raises(RequestError, match="'req-b' is unknown"):
        log.acknowledge('req-b', 3.0, 'continue_monitoring', '', {})
    assert [e.kind for e in log.query()] == ['decision', 'acknowledgement']


def test_export_csv_and_json(log):
    log.append('decision', 1.5, 'continue_monitoring', 'fine, "quoted", too',
               evidence={'a': '1'})
    log.append('acknowledgement', 2.5, 'reduce_workload', request_id='r')
    entries = log.query()
    text = io.StringIO()
    write_csv(entries, text)
    rows = list(csv.DictReader(io.StringIO(text.getvalue())))
    assert rows[0]['summary'] == 'fine, "quoted", too' and float(rows[0]['stamp']) == 1.5
    assert json.loads(rows[0]['evidence']) == {'a': '1'} and rows[1]['request_id'] == 'r'
    text = io.StringIO()
    write_json(entries, text)
    assert json.loads(text.getvalue())[1]['kind'] == 'acknowledgement'


def test_missing_or_foreign_files_are_refused(tmp_path):
    with pytest.raises(LogError, match='does not exist'):
        MaintenanceLog(tmp_path / 'nope.db', create=False)
    junk = tmp_path / 'junk.db'
    junk.write_bytes(b'this is not a database' * 100)
    with pytest.raises(LogError, match='cannot open maintenance log'):
        MaintenanceLog(junk)
    other = tmp_path / 'other.db'
    conn = sqlite3.connect(str(other))
    conn.execute('CREATE TABLE things (x)')
    conn.commit()
    conn.close()
    before = other.read_bytes()
    with pytest.raises(LogError, match='is not a maintenance log'):
        MaintenanceLog(other, create=False)
    assert other.read_bytes() == before


def test_a_damaged_file_is_a_log_error_for_reads_too(tmp_path):
    """An operator's list_requests on a failing SD card must get an answer, not end the agent."""
    path = tmp_path / 'maintenance.db'
    with MaintenanceLog(path) as log:
        for k in range(200):
            log.append('decision', float(k), 'reduce_workload', 'x' * 200, evidence={'k': 'v'})
    data = bytearray(path.read_bytes())
    data[3 * 4096:5 * 4096] = b'\xff' * (2 * 4096)           # two pages of the table
    path.write_bytes(bytes(data))
    with MaintenanceLog(path) as log:
        for read in (log.count, log.query, lambda: log.request_status('req-1')):
            with pytest.raises(LogError, match='cannot read maintenance log .* malformed'):
                read()


WRITER = textwrap.dedent("""
    import sys
    from softmaint_core.maintenance_log import MaintenanceLog
    log = MaintenanceLog(sys.argv[1])
    log.append('decision', 1.0, 'request_assistance', request_id='req-k')
    if sys.argv[2] == 'ack':
        row = log.acknowledge('req-k', 2.0, 'immediate_shutdown', 'ada stops it', {'n': 1})
        print(row, flush=True)
        sys.stdin.read()            # wait to be killed, the log still open
    else:
        for i in range(1000000):
            print(log.append('decision', 3.0 + i, 'continue_monitoring',
                             evidence={'i': i, 'pad': 'x' * 500}), flush=True)
""")


def _writer(path, mode):
    return subprocess.Popen([sys.executable, '-c', WRITER, str(path), mode],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def _kill(proc):
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL


def test_acknowledgement_survives_sigkill_right_after_it_returns(tmp_path):
    path = tmp_path / 'maintenance.db'
    proc = _writer(path, 'ack')
    try:
        row = int(proc.stdout.readline())
    finally:
        _kill(proc)
    with MaintenanceLog(path) as log:
        acks = log.query(kinds=['acknowledgement'])
        assert [(e.id, e.request_id, e.evidence) for e in acks] == [(row, 'req-k', {'n': 1})]
        assert log.request_status('req-k') == 'answered'


def test_sigkill_during_writes_loses_no_committed_row(tmp_path):
    path = tmp_path / 'maintenance.db'
    proc = _writer(path, 'flood')
    try:
        committed = [int(proc.stdout.readline()) for _ in range(300)]
    finally:
        _kill(proc)                  # most likely in the middle of the next transaction
    check = sqlite3.connect(str(path))
    assert check.execute('PRAGMA integrity_check').fetchone()[0] == 'ok'
    check.close()
    with MaintenanceLog(path) as log:
        ids = {e.id for e in log.query(kinds=['decision'])}
    assert set(committed) <= ids
    assert len(ids) >= len(committed) + 1    # plus the request decision
