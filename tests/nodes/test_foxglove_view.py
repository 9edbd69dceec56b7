"""
Foxglove live view: a WebSocket client receives every stream of a short simulated run.

The slow test runs the sim robot and the suite with `softmaint-bringup foxglove:=true` as real
processes, connects a client speaking the Foxglove WebSocket protocol (JSON serverInfo and
advertise, a subscribe for every advertised channel, binary messageData frames: opcode 1,
subscription id, timestamp, payload) and waits until every channel delivered a message. The
fast tests check the shipped layout against the channels and the bringup argument.
"""
import collections
import json
from pathlib import Path
import re
import signal
import socket
import struct
import threading
import time

import pytest
from softmaint import bringup
from softmaint.foxglove_view_node import JSON_STREAMS
from softmaint_core import live_view
import yaml

REPO = Path(__file__).resolve().parents[2]
LAYOUT = REPO / 'config' / 'foxglove' / 'softmaint_layout.json'
# foxglove-sdk 0.30 accepts foxglove.sdk.v1 (same messages as foxglove.websocket.v1, which
# foxglove_bridge speaks); offered both, the server picks.
SUBPROTOCOLS = ['foxglove.websocket.v1', 'foxglove.sdk.v1']
MESSAGE_DATA = 1
CHANNELS = live_view.channel_topics()
RAW_IMAGE = 'foxglove.RawImage'


# ------------------------------------------------------------------ the shipped layout

def _layout_paths():
    """(panel id, topic, field path or '') of every topic the layout's panels read."""
    for panel, config in json.loads(LAYOUT.read_text())['configById'].items():
        paths = [config.get('imageMode', {}).get('imageTopic'), config.get('topicPath'),
                 config.get('topicToRender')] + [p['value'] for p in config.get('paths', [])]
        for path in filter(None, paths):
            topic, _, field = path.partition('.')
            yield panel, topic, field


def _panels(tree):
    return [tree] if isinstance(tree, str) else _panels(tree['first']) + _panels(tree['second'])


def test_layout_shows_every_channel_and_reads_only_fields_they_carry():
    layout = json.loads(LAYOUT.read_text())
    assert sorted(_panels(layout['layout'])) == sorted(layout['configById'])
    stream_of = {topic: stream for stream, topic in CHANNELS.items()}
    shown = set()
    for panel, topic, field in _layout_paths():
        assert topic in stream_of, f'{panel} reads {topic}, which the live view does not serve'
        shown.add(topic)
        if field:
            fields = JSON_STREAMS[stream_of[topic]].fields
            assert field in fields, f'{panel}: {topic} has no field {field}'
    assert shown == set(CHANNELS.values())


def test_records_of_the_real_messages_are_strict_json():
    """A field name the tables misspell raises here; NaN must not reach the JSON."""
    from builtin_interfaces.msg import Time
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
    from softmaint_interfaces.msg import (MaintenanceDecision, MaintenancePrediction,
                                          ReconstructedModality)
    messages = {
        'prediction': MaintenancePrediction(
            damage_classes=['none'], damage_probs=[float('nan')], urgency=0.3,
            reconstructed=[ReconstructedModality(name='camera', embedding=[0.1],
                                                 confidence=0.5)]),
        'decision': MaintenanceDecision(action_name='request_assistance', request_id='r1',
                                        evidence=[KeyValue(key='k', value='v')],
                                        prediction_stamp=Time(sec=3, nanosec=4)),
        'diagnostics': DiagnosticArray(status=[DiagnosticStatus(
            level=DiagnosticStatus.WARN, name='n', values=[KeyValue(key='k', value='v')])]),
    }
    messages['assistance'] = messages['decision']
    for stream, msg in messages.items():
        json.dumps(JSON_STREAMS[stream].record(msg), allow_nan=False)
    assert live_view.DIAGNOSTICS.record(messages['diagnostics'])['status'][0]['level'] == 1
    assert live_view.PREDICTION.record(messages['prediction'])['damage_probs'] == [None]


def test_bringup_starts_the_live_view_only_when_asked():
    assert 'softmaint_foxglove_view' not in [n.name for n in bringup.plan(bringup.resolve({}))]
    nodes = bringup.plan(bringup.resolve({'foxglove': 'true', 'foxglove_port': '9001'}))
    view = nodes[-1]
    assert (view.package, view.executable, view.name) == ('softmaint', 'foxglove_view',
                                                          'softmaint_foxglove_view')
    assert view.parameters == {'use_sim_time': False, 'port': 9001}
    with pytest.raises(ValueError, match='foxglove_port'):
        bringup.plan(bringup.resolve({'foxglove': 'true', 'foxglove_port': '70000'}))


@pytest.mark.slow
def test_a_taken_port_is_a_fatal_error_that_says_so(spawn):
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        proc = spawn(['-m', 'softmaint.foxglove_view_node', '--ros-args',
                      '-p', f'port:={taken.getsockname()[1]}'])
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, output
    assert 'cannot start the live view' in output and 'Address already in use' in output
    assert 'Traceback' not in output


# ------------------------------------------------------------------ a live run

class FoxgloveClient:
    """Subscribes to every channel a Foxglove WebSocket server advertises; keeps the payloads."""

    def __init__(self, ws):
        self.ws = ws
        self.server_info = None
        self.channels = {}          # channel id -> advertised channel
        self.subscribed = {}        # subscription id -> channel id
        self.payloads = collections.defaultdict(list)   # topic -> message payloads

    def _handle(self, frame) -> None:
        if isinstance(frame, bytes):
            if frame[0] == MESSAGE_DATA:
                subscription, _ = struct.unpack_from('<IQ', frame, 1)
                channel = self.channels[self.subscribed[subscription]]
                self.payloads[channel['topic']].append(frame[13:])
            return
        message = json.loads(frame)
        if message['op'] == 'serverInfo':
            self.server_info = message
        elif message['op'] == 'advertise':
            subscriptions = []
            for channel in message['channels']:
                self.channels[channel['id']] = channel
                subscriptions.append({'id': len(self.subscribed), 'channelId': channel['id']})
                self.subscribed[len(self.subscribed)] = channel['id']
            self.ws.send(json.dumps({'op': 'subscribe', 'subscriptions': subscriptions}))

    def until(self, condition, timeout: float) -> bool:
        """Handle frames until condition() holds or `timeout` seconds pass; return it."""
        deadline = time.monotonic() + timeout
        while not condition():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                self._handle(self.ws.recv(timeout=left))
            except TimeoutError:
                return condition()
        return True

    def silent(self):
        """Topics of advertised channels without a message yet."""
        return sorted(c['topic'] for c in self.channels.values()
                      if not self.payloads[c['topic']])


class Output:
    """Reads a process's output on a thread (so its pipe never fills) and finds a line."""

    def __init__(self, proc, pattern: str):
        self.lines, self.match = [], None
        self.found = threading.Event()
        self._pattern = re.compile(pattern)
        self._thread = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append(line)
            match = self._pattern.search(line)
            if match and not self.found.is_set():
                self.match = match
                self.found.set()
        self.found.set()   # the process ended: stop waiting

    def text(self, timeout: float) -> str:
        self._thread.join(timeout)
        return ''.join(self.lines)


@pytest.fixture
def params_file(tmp_path):
    """Return the shipped parameters with the agent logging to tmp_path, asking between windows."""
    params = yaml.safe_load((REPO / 'config' / 'softmaint.yaml').read_text())
    agent = params['softmaint_agent']['ros__parameters']
    agent['log_path'] = str(tmp_path / 'log.db')
    # Predictions come once a hop (1 s): a 0.3 s watchdog asks for assistance between them, so
    # the assistance channel carries requests whatever the policy makes of the sim's sensors.
    agent['stale_timeout'] = 0.3
    path = tmp_path / 'softmaint.yaml'
    path.write_text(yaml.safe_dump(params))
    return path


def _status_names(payloads):
    return [s['name'] for p in list(payloads[CHANNELS['diagnostics']])
            for s in json.loads(p)['status']]


@pytest.mark.slow
def test_a_foxglove_client_receives_every_channel_of_a_simulated_run(spawn, params_file):
    from websockets.sync.client import connect
    proc = spawn(['-m', 'softmaint.bringup', 'use_sim:=true', 'foxglove:=true',
                  'foxglove_port:=0', f'params_file:={params_file}'])
    output = Output(proc, r'live view on (ws://[\d.]+:\d+)')
    assert output.found.wait(60.0) and output.match, output.text(1.0)
    try:
        ws = connect(output.match.group(1), subprotocols=SUBPROTOCOLS, open_timeout=10,
                     max_size=None)
    except OSError as err:   # e.g. a node of the suite died and bringup stopped them all
        pytest.fail(f'cannot connect to the live view: {err}\n{output.text(10.0)}')
    with ws:
        client = FoxgloveClient(ws)
        assert ws.subprotocol in SUBPROTOCOLS
        assert client.until(lambda: len(client.channels) == len(CHANNELS), 10.0), \
            f'advertised {[c["topic"] for c in client.channels.values()]}'
        assert client.server_info['name'] == '/softmaint_foxglove_view'
        advertised = {c['topic']: c['schemaName'] for c in client.channels.values()}
        assert advertised == {
            CHANNELS['camera']: RAW_IMAGE, CHANNELS['tactile']: RAW_IMAGE,
            **{CHANNELS[stream]: json_stream.title
               for stream, json_stream in JSON_STREAMS.items()}}
        assert client.until(lambda: not client.silent(), 90.0), \
            f'no message on {client.silent()}\n{"".join(output.lines[-40:])}'
        # every node publishes its own status once a second: wait for ingestion's too
        assert client.until(lambda: any(name.startswith('softmaint_ingestion')
                                        for name in _status_names(client.payloads)), 30.0), \
            _status_names(client.payloads)
    payloads = client.payloads
    assert len(payloads[CHANNELS['camera']][0]) > 64 * 64 * 3   # the sim's 64x64 rgb8 frames
    prediction = json.loads(payloads[CHANNELS['prediction']][-1])
    assert 0.0 <= prediction['urgency'] <= 1.0 and prediction['model_id']
    assert json.loads(payloads[CHANNELS['decision']][-1])['action_name']
    assert json.loads(payloads[CHANNELS['assistance']][-1])['request_id']

    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    text = output.text(10.0)
    assert proc.returncode == 0, text
    assert 'Traceback' not in text, text


def test_a_stamp_that_is_not_a_time_is_an_input_error_not_an_overflow():
    """A negative second overflowed foxglove's unsigned Timestamp and ended the view node."""
    from types import SimpleNamespace

    from softmaint.foxglove_view_node import timestamp
    from softmaint_core.window import InputError

    def header(sec, nanosec=0):
        return SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=nanosec))
    assert timestamp(header(5, 7)).sec == 5
    for bad in (header(-1), header(1, 2_000_000_000)):
        with pytest.raises(InputError) as err:
            timestamp(bad)
        assert err.value.reason == 'bad_stamp'
