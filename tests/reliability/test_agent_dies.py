"""
The agent dies mid-write: SIGKILL the agent process while it writes its maintenance log.

Predictions alternate so that every one changes the decision (continue -> schedule ->
request_assistance, one window each), so the agent commits a log row for nearly every
prediction, and the test answers every request it sees through softmaint/acknowledge. At a
random moment after the first accepted answer the agent is killed, then restarted on the same
log, KILLS times. Every acknowledgement the agent accepted (fsynced before the service returns)
must be in the log, and the log must pass SQLite's integrity check and open in the next agent.
"""
import os
from pathlib import Path
import random
import signal
import sqlite3
import sys
import time

from agent_operator import AMBIGUOUS, CALM, HIGH, Operator, prediction
import pytest
from reliability_runs import record_run

CONFIG = Path(__file__).resolve().parents[2] / 'config' / 'softmaint.yaml'
AGENT = [sys.executable, '-m', 'softmaint.agent_node', '--ros-args', '--params-file',
         str(CONFIG), '-p', 'stale_timeout:=30.0', '-p', 'thresholds.escalate_windows:=1',
         '-p', 'thresholds.deescalate_windows:=1', '-p', 'thresholds.ambiguity_spread:=2']
KILLS = 20
# Every prediction changes the decision; the third opens a new assistance request.
CYCLE = (CALM, HIGH, AMBIGUOUS)
# The kill comes up to this long after the first answer the agent accepted [s].
MAX_KILL_DELAY = 1.0
SEED = 17


def _check(path: Path) -> str:
    """Return SQLite's verdict on the log file (opening it recovers the WAL)."""
    connection = sqlite3.connect(str(path))
    try:
        return connection.execute('PRAGMA integrity_check').fetchone()[0]
    finally:
        connection.close()


@pytest.mark.slow
def test_sigkill_mid_write_loses_no_acknowledged_record(ros_context, start_child, tmp_path):
    from softmaint_core.maintenance_log import MaintenanceLog
    from softmaint_interfaces.msg import MaintenanceDecision
    rng = random.Random(SEED)
    log_path = tmp_path / 'maintenance.db'
    operator = Operator(ros_context)
    accepted = {}           # request id -> note of every answer the agent accepted
    asked, pending = set(), []
    integrity, crashes, flood_s = [], 0, 0.0

    def collect():
        """Move answered calls out of `pending`; note the accepted ones."""
        for future, request_id, note in [p for p in pending if p[0].done()]:
            pending.remove((future, request_id, note))
            if future.result().accepted:
                accepted[request_id] = note

    def handshake():
        """Send a window the agent never saw; return whether a decision answered it."""
        operator.stamp += 1
        operator.publisher.publish(prediction(operator.stamp))
        return operator.spin_until(lambda: operator.decisions[-1:] and operator.decisions[
            -1].prediction_stamp.sec == operator.stamp, 0.5)

    def flood(kill_delay):
        """Feed predictions and answer requests until kill_delay after the first acceptance."""
        first_accepted, start = None, time.monotonic()
        while first_accepted is None or time.monotonic() < first_accepted + kill_delay:
            assert time.monotonic() < start + 30.0, 'no answer was accepted in 30 s'
            operator.stamp += 1
            operator.publisher.publish(prediction(operator.stamp,
                                                  **CYCLE[operator.stamp % len(CYCLE)]))
            operator.executor.spin_once(timeout_sec=0.002)
            for request_id in {d.request_id for d in operator.decisions[-5:]} - asked - {''}:
                asked.add(request_id)
                note = f'answer {len(asked)}'
                future = operator.acknowledge.call_async(operator.acknowledgement(
                    request_id, MaintenanceDecision.SCHEDULE_MAINTENANCE, note=note))
                pending.append((future, request_id, note))
            accepted_before = len(accepted)
            collect()
            if first_accepted is None and len(accepted) > accepted_before:
                first_accepted = time.monotonic()
        return time.monotonic() - start

    try:
        for kill in range(KILLS):
            agent = start_child(f'agent {kill}', [*AGENT, '-p', f'log_path:={log_path}'])
            try:
                agent.wait_for('ready: logging to', 60.0)
            except RuntimeError:
                if agent.proc.poll() is None:
                    raise
                record_run('agent_kill', 1)
                pytest.fail(f'the agent did not start after {kill} kills: {agent.tail()}')
            subscribed = time.monotonic() + 30.0
            while not handshake():                  # until the new agent is subscribed
                assert agent.proc.poll() is None and time.monotonic() < subscribed, agent.tail()
            flood_s += flood(rng.uniform(0.0, MAX_KILL_DELAY))
            crashes += agent.proc.poll() is not None         # it died before the kill
            os.kill(agent.proc.pid, signal.SIGKILL)
            agent.proc.wait(10.0)
            collect()       # answers still on their way are collected in the next round
            integrity.append(_check(log_path))
        with MaintenanceLog(log_path, create=False) as log:
            logged = {e.request_id: e.evidence['note']
                      for e in log.query(kinds=['acknowledgement'])}
            decisions = len(log.query(kinds=['decision']))
    finally:
        operator.close()
    lost = sorted(r for r, note in accepted.items() if logged.get(r) != note)
    record_run('agent_kill', crashes, log_records_lost=len(lost), log_kills=KILLS,
               log_acknowledged=len(accepted),
               log_decisions_per_s=round(decisions / flood_s, 1))
    print(f'{KILLS} SIGKILLs of the agent: {len(accepted)} accepted answers, {len(lost)} lost; '
          f'{decisions} decisions logged in {flood_s:.1f} s of load '
          f'({decisions / flood_s:.0f}/s)')
    assert crashes == 0
    assert integrity == ['ok'] * KILLS
    assert len(accepted) >= KILLS
    assert not lost, f'{len(lost)} accepted answers missing from the log, e.g. {lost[:3]}'
