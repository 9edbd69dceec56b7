"""softmaint-log: query and export the agent's maintenance log from the command line."""
import csv
from datetime import datetime
import io
import json
import os
import shutil
import subprocess

import pytest
from softmaint_core.maintenance_log import MaintenanceLog


@pytest.fixture
def log_path(tmp_path):
    path = tmp_path / 'maintenance.db'
    with MaintenanceLog(path) as log:
        log.append('model_change', 1000.0, summary='student-a first seen', model_id='student-a')
        log.append('decision', 1001.0, 'request_assistance', 'Request assistance: ambiguous.',
                   request_id='req-1', model_id='student-a', evidence={'urgency': '0.300'})
        log.acknowledge('req-1', 1002.0, 'schedule_maintenance', 'ada chose it',
                        {'operator': 'ada'})
        log.append('decision', 1003.0, 'schedule_maintenance', 'Schedule maintenance.')
    return path


def run(*args, env=None):
    command = shutil.which('softmaint-log')
    assert command, 'softmaint-log is not on PATH: run make setup and source tools/env.sh'
    return subprocess.run([command, *map(str, args)], capture_output=True, text=True,
                          timeout=30, env=env)


def test_query_table_filters_and_json(log_path):
    proc = run('query', log_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:4] == ['id', 'time', 'kind', 'action']
    assert lines[-1] == '4 entries'
    assert 'acknowledgement' in lines[3] and 'req-1' in lines[3] and 'ada chose it' in lines[3]
    assert datetime.fromtimestamp(1001.0).isoformat(sep=' ', timespec='milliseconds') in lines[2]

    proc = run('query', log_path, '--kind', 'decision', '--since', '1001.5', '--json')
    entries = json.loads(proc.stdout)
    assert [(e['stamp'], e['action']) for e in entries] == [(1003.0, 'schedule_maintenance')]
    iso = datetime.fromtimestamp(1001.0).isoformat()
    proc = run('query', log_path, '--until', iso, '--request-id', 'req-1', '--json')
    assert [e['kind'] for e in json.loads(proc.stdout)] == ['decision']


def test_export_csv_and_json_files(log_path, tmp_path):
    out = tmp_path / 'out.csv'
    proc = run('export', log_path, out, '--kind', 'decision', '--kind', 'acknowledgement')
    assert proc.returncode == 0, proc.stderr
    assert 'wrote 3 entries' in proc.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r['kind'] for r in rows] == ['decision', 'acknowledgement', 'decision']
    assert json.loads(rows[0]['evidence']) == {'urgency': '0.300'}
    proc = run('export', log_path, '-')
    assert len(json.loads(proc.stdout)) == 4
    proc = run('export', log_path, tmp_path / 'out.txt')
    assert proc.returncode == 1 and 'use --format' in proc.stderr
    proc = run('export', log_path, tmp_path / 'out.txt', '--format', 'json')
    assert proc.returncode == 0 and len(json.loads((tmp_path / 'out.txt').read_text())) == 4


def test_log_defaults_to_the_agents_path(log_path, tmp_path):
    home = tmp_path / 'home'
    (home / '.local/share/softmaint').mkdir(parents=True)
    shutil.copy(log_path, home / '.local/share/softmaint/maintenance.db')
    env = {**os.environ, 'HOME': str(home)}
    proc = run('query', '--kind', 'acknowledgement', env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == '1 entries'
    proc = run('export', tmp_path / 'all.json', env=env)
    assert proc.returncode == 0 and len(json.loads((tmp_path / 'all.json').read_text())) == 4


def test_bad_input_gives_a_clear_error(tmp_path):
    proc = run('query', tmp_path / 'missing.db')
    assert proc.returncode == 1 and 'does not exist' in proc.stderr
    assert not (tmp_path / 'missing.db').exists()
    proc = run('query', tmp_path / 'missing.db', '--since', 'yesterday')
    assert proc.returncode == 2 and 'neither seconds since the epoch' in proc.stderr
    proc = run('query', tmp_path / 'missing.db', '--kind', 'note')
    assert proc.returncode == 2 and 'invalid choice' in proc.stderr
