"""
Checks of what the nodes receive from the ROS graph, each refusal with a reason code.

Sensor samples are checked in window.py and messages.py (shared with offline bag evaluation).
This module checks the rest: the window the student receives, the prediction the agent
receives, the agent's services and Inspect goals, and the model path of a reload. Messages are
read by duck typing, so the core stays ROS-free. A refusal raises Rejected(reason, text), and
RejectCounts counts refusals per input and reason for /diagnostics
(`rejected.<input>.<reason>`). Refusal texts are cut to TEXT_LIMIT characters and names, ids
and notes are bounded, so a hostile megabyte string cannot flood a log line, a reply or the
maintenance log.
"""
from dataclasses import fields
import math
from pathlib import Path
import re
import threading
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .agent import summarise
from .decisions import PredictionSummary
from .maintenance_log import KINDS
from .messages import stamp_error, stamp_seconds
from .settings import LEVELS
from .spec import InputSpec, MODALITIES
from .taxonomy import DAMAGE_TYPES, FATIGUE_LEVELS, policy_class_error
from .window import Status

TEXT_LIMIT = 200          # characters of a refusal's text
MAX_NAME = 256            # characters of an id, a name or a kind
MAX_NOTE = 4096           # characters of an operator's note
MAX_CLASSES = 64          # class names per head of a prediction
MAX_PATH = 4096           # characters of a model path (PATH_MAX on Linux)
MAX_HISTORY = 1000        # log entries one softmaint/list_requests reply may hold
# A stamp further ahead of the receiver's clock than this [s] is refused. Generous: nodes
# following /clock see each clock message at slightly different times.
FUTURE_TOLERANCE = 1.0
# Largest magnitude of a normalised window value (standard deviations of training): far
# below float32 overflow in the model. What a sensor can physically read is ingestion's
# check (window.py).
MAX_NORMALISED = 1e6

WINDOW_REASONS = ('spec_mismatch', 'bad_stamp', 'future_stamp', 'duplicate', 'out_of_order',
                  'modalities', 'mask', 'status', 'shape', 'size', 'non_finite',
                  'out_of_range', 'masked_data', 'non_finite_output')
RELOAD_REASONS = ('path', 'not_found', 'unsigned', 'signature', 'metadata', 'onnx', 'graph',
                  'test_inference', 'io', 'spec_change')
# PredictionSummary.validate begins its message with the field's name: the reason.
SUMMARY_FIELDS = tuple(f.name for f in fields(PredictionSummary))
PREDICTION_REASONS = ('bad_stamp', 'future_stamp', 'duplicate', 'out_of_order', 'model',
                      'classes', 'modalities', 'urgency', 'uncertainty', 'urgency_std',
                      'fatigue_probs', 'damage_probs', 'fatigue_set', 'damage_set', 'invalid')
ACKNOWLEDGE_REASONS = ('request_id', 'operator_name', 'note', 'action', 'fatigue_label',
                       'damage_label', 'urgency_label', 'request', 'log')
LIST_REQUESTS_REASONS = ('history_limit', 'history_kinds', 'log')
INSPECT_REASONS = ('duration', 'min_windows', 'busy', 'too_few_windows', 'duplicate_goal_id',
                   'cancel_unknown_goal', 'cancel_finished_goal', 'cancel_repeated',
                   'cancel_nothing', 'result_unknown_goal', 'abandoned_goal')


def brief(text: str, limit: int = TEXT_LIMIT) -> str:
    """Return `text` cut to `limit` characters, saying how long it was."""
    text = str(text)
    return text if len(text) <= limit else f'{text[:limit]}... ({len(text)} characters)'


class Rejected(ValueError):
    """An input refused; `reason` is a short code, the text (cut short) says what was wrong."""

    def __init__(self, reason: str, message: str):
        super().__init__(brief(message))
        self.reason = reason


class RejectCounts:
    """Refusals since start per input and reason, for /diagnostics; safe across threads."""

    def __init__(self, reasons: Mapping[str, Sequence[str]]):
        # every known key from the start, so a dashboard sees zeros rather than nothing
        self._counts = {(name, reason): 0 for name, known in reasons.items() for reason in known}
        self._lock = threading.Lock()

    def count(self, name: str, reason: str) -> int:
        """Count one refusal of input `name`; return how many of its kind so far."""
        with self._lock:
            key = (name, reason)
            self._counts[key] = self._counts.get(key, 0) + 1
            return self._counts[key]

    def total(self, name: str) -> int:
        """Return the refusals of input `name`."""
        with self._lock:
            return sum(n for (input_name, _), n in self._counts.items() if input_name == name)

    def values(self) -> Dict[str, str]:
        """Return `rejected.<input>.<reason>` -> count as text, for diagnostic key values."""
        with self._lock:
            return {f'rejected.{name}.{reason}': str(n)
                    for (name, reason), n in self._counts.items()}


def stamp_of(stamp) -> float:
    """Seconds of a builtin_interfaces/Time; Rejected('bad_stamp') when it is not a time."""
    error = stamp_error(stamp)
    if error is not None:
        raise Rejected('bad_stamp', error)
    return stamp_seconds(stamp)


class StreamOrder:
    """
    The newest stamp of a stream: later ones must be newer and not from the future.

    A repeated stamp would count one window twice in the agent's hysteresis, an older one
    would decide on the past. When the receiver's own clock goes back (a restarted simulation,
    a bag replayed again), a new timeline starts. (Its clock being behind the newest stamp
    says nothing: a stamp may be up to FUTURE_TOLERANCE ahead.)
    """

    def __init__(self):
        self.newest: Optional[float] = None
        self._last_now: Optional[float] = None

    def check(self, stamp: float, now: float) -> None:
        """Raise Rejected unless a message stamped `stamp` may follow, received at `now`."""
        if stamp > now + FUTURE_TOLERANCE:
            raise Rejected('future_stamp', f'stamp {stamp:.3f} s is {stamp - now:.3f} s ahead '
                           f'of the clock ({now:.3f} s)')
        if self._last_now is not None and now < self._last_now:
            self._new_timeline()
        self._last_now = now
        if self.newest is None:
            return
        if stamp == self.newest:
            raise Rejected('duplicate', f'stamp {stamp:.3f} s was received already')
        if stamp < self.newest:
            raise Rejected('out_of_order', f'stamp {stamp:.3f} s is older than the newest '
                           f'({self.newest:.3f} s)')

    def accept(self, stamp: float) -> None:
        """Take `stamp` as the newest (after check)."""
        self.newest = stamp

    def _new_timeline(self) -> None:
        self.newest = None


class WindowStream(StreamOrder):
    """Order of the sensor windows and the windows lost in transit between accepted ones."""

    def __init__(self):
        super().__init__()
        self._sequence: Optional[int] = None
        self._rejected_since = 0

    def rejected(self) -> None:
        """Note a window that arrived but was refused (it is not lost)."""
        self._rejected_since += 1

    def _new_timeline(self) -> None:
        super()._new_timeline()     # no gap is counted across a clock that went back
        self._sequence, self._rejected_since = None, 0

    def accept_window(self, stamp: float, sequence: int, hop: float) -> int:
        """
        Take an accepted window; return how many windows were lost since the previous one.

        Sequence gaps count, bounded by the windows that fit between the stamps (a hostile
        sequence number cannot claim billions lost) and less the windows refused meanwhile.
        A sequence that restarts (ingestion restarted) loses nothing.
        """
        lost = 0
        if self._sequence is not None and sequence > self._sequence + 1:
            fit = max(0, round((stamp - self.newest) / hop) - 1)
            lost = max(0, min(sequence - self._sequence - 1, fit) - self._rejected_since)
        self.accept(stamp)
        self._sequence, self._rejected_since = sequence, 0
        return lost


# ---------------------------------------------------------------- student: sensor windows

def window_feeds(window, spec: InputSpec, order: StreamOrder, now: float
                 ) -> Tuple[float, Dict[str, np.ndarray], List[bool]]:
    """
    Check a SensorWindow received at `now` against the model's spec and the stream's order.

    Return its stamp, the model inputs [1, *shape] and the mask; raise Rejected. Modalities
    that are not available go to the model as zeros and must arrive as zeros (or empty).
    """
    if window.spec_id != spec.spec_id:
        raise Rejected('spec_mismatch', f'built for input spec {window.spec_id!r}, the model '
                       f'takes {spec.spec_id!r}')
    stamp = stamp_of(window.header.stamp)
    names = [tensor.name for tensor in window.modalities]
    if tuple(names) != spec.names:
        raise Rejected('modalities', f'modalities {names} are not those of the spec '
                       f'{list(spec.names)}')
    if len(window.available) != len(names):
        raise Rejected('mask', f'{len(window.available)} availability flags for '
                       f'{len(names)} modalities')
    feeds, mask = {}, []
    for tensor, modality, flag in zip(window.modalities, spec.modalities, window.available):
        feeds[modality.name] = _tensor_feed(tensor, modality, bool(flag))[None]
        mask.append(bool(flag))
    order.check(stamp, now)
    return stamp, feeds, mask


def _tensor_feed(tensor, modality, flag: bool) -> np.ndarray:
    """Model input of one ModalityTensor (without the batch axis); raise Rejected."""
    if tensor.status not in set(Status):
        raise Rejected('status', f'{modality.name}: status {tensor.status} is not a '
                       'ModalityTensor constant')
    available = tensor.status == Status.AVAILABLE
    if flag != available:
        raise Rejected('mask', f'{modality.name}: available={flag} but status '
                       f'{tensor.status}')
    if tuple(tensor.shape) != modality.shape:
        raise Rejected('shape', f'{modality.name}: shape {list(tensor.shape)} is not '
                       f'{list(modality.shape)}')
    data = np.asarray(tensor.data, dtype=np.float32)
    if not available:
        if np.any(data != 0.0):          # NaN too: a model must not see it, even masked
            raise Rejected('masked_data', f'{modality.name} is not available but carries '
                           'data other than zeros')
        return np.zeros(modality.shape, np.float32)
    if data.size != math.prod(modality.shape):
        raise Rejected('size', f'{modality.name}: {data.size} values for shape '
                       f'{list(modality.shape)}')
    if not np.all(np.isfinite(data)):
        raise Rejected('non_finite', f'{modality.name}: values are not finite')
    if np.abs(data).max() > MAX_NORMALISED:
        raise Rejected('out_of_range', f'{modality.name}: a value of '
                       f'{np.abs(data).max():.3g} standard deviations')
    return data.reshape(modality.shape)


# ---------------------------------------------------------------- student: reloads

def model_path(text: str) -> Path:
    """Return the model file a reload names; Rejected('path' or 'not_found') otherwise."""
    if not text.strip():
        raise Rejected('path', 'model_path is empty')
    if len(text) > MAX_PATH:
        raise Rejected('path', f'model_path {brief(text, 80)!r} is longer than {MAX_PATH} '
                       'characters')
    try:
        path = Path(text).expanduser()
    except RuntimeError as err:     # '~user/...' of a user this machine does not have
        raise Rejected('path', f'model_path {brief(text, 80)!r}: {err}') from err
    try:
        found = path.is_file()
    except OSError as err:               # a name longer than the file system allows
        raise Rejected('path', f'model_path {brief(text, 80)!r}: {err.strerror}') from err
    if not found:
        raise Rejected('not_found', f'model file {brief(text, 80)!r} not found (or not a '
                       'regular file)')
    return path


# ---------------------------------------------------------------- agent: predictions

def prediction_summary(msg, order: StreamOrder, now: float) -> Tuple[float, PredictionSummary]:
    """
    Check a MaintenancePrediction received at `now`; return its stamp and the policy input.

    Raises Rejected saying which field is wrong: the stamp, model, class names and modality
    names are checked here, the numbers through agent.summarise (PredictionSummary.validate
    names the field in its message), then the stream's order.
    """
    stamp = stamp_of(msg.header.stamp)
    if not _is_name(msg.model_id) or not re.fullmatch(r'[0-9a-f]{64}', msg.model_sha256):
        raise Rejected('model', f'model_id {brief(msg.model_id, 80)!r} / model_sha256 '
                       f'{brief(msg.model_sha256, 80)!r}: a printable id and 64 hex digits')
    for head in ('fatigue', 'damage'):
        classes = list(getattr(msg, f'{head}_classes'))
        if len(classes) > MAX_CLASSES or len(set(classes)) != len(classes) or \
                not all(map(_is_name, classes)):
            raise Rejected('classes', f'{head}_classes must be distinct printable names, got '
                           f'{len(classes)}: {brief(classes, 80)}')
    classes_error = policy_class_error(msg.fatigue_classes, msg.damage_classes)
    if classes_error:
        raise Rejected('classes', classes_error)
    available = list(msg.input_modalities)
    names = available + [r.name for r in msg.reconstructed]
    if not names or len(set(names)) != len(names) or not set(names) <= set(MODALITIES):
        raise Rejected('modalities', 'input_modalities and reconstructed must name distinct '
                       f'modalities of {MODALITIES}, got {brief(names, 80)}')
    try:
        summary = summarise(msg, tuple(available), len(names), tuple(msg.fatigue_classes),
                            tuple(msg.damage_classes))
    except ValueError as err:
        field = str(err).split(' ', 1)[0]
        raise Rejected(field if field in SUMMARY_FIELDS else 'invalid', str(err)) from err
    order.check(stamp, now)
    return stamp, summary


def _is_name(text: str) -> bool:
    return 0 < len(text) <= MAX_NAME and text.isprintable()


# ---------------------------------------------------------------- agent: services, action

def check_acknowledgement(request) -> None:
    """Raise Rejected when an AcknowledgeAssistance request cannot be an answer."""
    if not request.request_id:
        raise Rejected('request_id', 'request_id is empty')
    if not _is_name(request.request_id):
        raise Rejected('request_id', f'request_id {brief(request.request_id, 80)!r} is not a '
                       f'printable id of at most {MAX_NAME} characters')
    if not request.operator_name.strip():
        raise Rejected('operator_name', 'operator_name is empty: the log must say who answered')
    if not _is_name(request.operator_name):
        raise Rejected('operator_name', f'operator_name {brief(request.operator_name, 80)!r} '
                       f'must be printable and at most {MAX_NAME} characters')
    if len(request.note) > MAX_NOTE or not request.note.replace('\n', ' ').replace(
            '\t', ' ').isprintable():
        raise Rejected('note', f'note of {len(request.note)} characters: at most {MAX_NOTE}, '
                       'printable (lines and tabs allowed)')
    if request.action not in LEVELS:
        raise Rejected('action', f'action {request.action} must be one of '
                       + ', '.join(f'{int(a)} ({a.label})' for a in LEVELS))
    if not -1 <= request.fatigue_label < len(FATIGUE_LEVELS):
        raise Rejected('fatigue_label', f'fatigue_label {request.fatigue_label} must be -1 or '
                       'a fatigue class index')
    if not -1 <= request.damage_label < len(DAMAGE_TYPES):
        raise Rejected('damage_label', f'damage_label {request.damage_label} must be -1 or a '
                       'damage class index')
    if not (math.isnan(request.urgency_label) or 0.0 <= request.urgency_label <= 1.0):
        raise Rejected('urgency_label', f'urgency_label {request.urgency_label} must be NaN or '
                       'in [0, 1]')


def check_list_request(request) -> None:
    """Raise Rejected when a ListAssistanceRequests request asks for what is not served."""
    if request.history_limit > MAX_HISTORY:
        raise Rejected('history_limit', f'history_limit must be at most {MAX_HISTORY}')
    kinds = list(request.history_kinds)
    unknown = [kind for kind in kinds if kind not in KINDS]
    if len(kinds) > len(KINDS) or unknown:
        raise Rejected('history_kinds', f'history_kinds must be at most {len(KINDS)} of {KINDS}, '
                       f'got {brief(unknown or kinds, 80)}')


def check_inspect_goal(duration: float, min_windows: int, longest: float) -> None:
    """Raise Rejected unless an Inspect goal's duration is in (0, longest] and min_windows > 0."""
    if not 0.0 < duration <= longest:    # NaN fails too
        raise Rejected('duration', f'duration {duration} s must be in (0, {longest}] '
                       '(max_inspection_duration)')
    if min_windows < 1:
        raise Rejected('min_windows', 'min_windows must be > 0')


class ActionRequestAudit:
    """
    The action requests a ROS action server refuses by itself, each with a reason code.

    rclpy's ActionServer answers a goal whose id is in use, a cancel it cannot act on and a
    result request for an unknown goal without calling the node; a goal whose result nobody
    asked for before the server forgot it was abandoned by its client. This record of accepted
    goals tells the node so it can count them: the server reports goals accepted, requests
    taken (before it answers them) and goals expired; goals are ids (bytes) with a status
    (action_msgs/GoalStatus values). Safe across threads.
    """

    ACTIVE = (1, 2)                # STATUS_ACCEPTED, STATUS_EXECUTING
    CANCELING = 3

    def __init__(self):
        self._status_of = {}       # goal id -> callable returning its current status
        self._result_asked = set()
        self._lock = threading.Lock()

    def accepted(self, goal_id: bytes, status) -> None:
        """Note an accepted goal; status() returns its current GoalStatus value."""
        with self._lock:
            self._status_of[goal_id] = status

    def goal_refusal(self, goal_id: bytes) -> Optional[str]:
        """Return why a goal request will be refused by the server, or None."""
        with self._lock:
            return 'duplicate_goal_id' if goal_id in self._status_of else None

    def cancel_refusal(self, goal_id: bytes) -> Optional[str]:
        """Return why a cancel request (goal id; all zeros: every goal) will do nothing."""
        with self._lock:
            if not any(goal_id):
                active = [s for s in self._status_of.values() if s() in self.ACTIVE]
                return None if active else 'cancel_nothing'
            if goal_id not in self._status_of:
                return 'cancel_unknown_goal'
            status = self._status_of[goal_id]()
        if status == self.CANCELING:
            return 'cancel_repeated'
        return None if status in self.ACTIVE else 'cancel_finished_goal'

    def result_refusal(self, goal_id: bytes) -> Optional[str]:
        """Note a result request; return why it will get no result, or None."""
        with self._lock:
            if goal_id not in self._status_of:
                return 'result_unknown_goal'
            self._result_asked.add(goal_id)
            return None

    def expired(self, goal_id: bytes) -> Optional[str]:
        """Forget an expired goal; return 'abandoned_goal' if nobody asked for its result."""
        with self._lock:
            known = self._status_of.pop(goal_id, None) is not None
            asked = goal_id in self._result_asked
            self._result_asked.discard(goal_id)
        return 'abandoned_goal' if known and not asked else None
