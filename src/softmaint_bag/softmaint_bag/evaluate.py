"""
Offline evaluation of a bag: ingestion -> student -> agent policy over the recorded messages.

No DDS and no waiting: messages go in receive (bag time) order into the same WindowAssembler,
message readers and health configuration the ingestion node uses; windows are assembled at
every multiple of hop within the bag, like the node's hop timer (global grid on its clock), each
before the messages received at or after its end; the same StudentModel and postprocessing
predict; the agent's policy decides with the thresholds of the same parameter file. Replaying the
bag with `softmaint-play --clock` into the live suite on use_sim_time gives the same predictions.

Bad input never passes silently: an unreadable bag or a sensor topic of the wrong type is a
BagError; messages that cannot be decoded are counted per topic; rejected samples are counted
by reason (as on the node's /diagnostics); topics the suite does not read are listed.
"""
from dataclasses import dataclass, field
import itertools
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
from softmaint_core import topics
from softmaint_core.agent import AgentCore, AgentSettings, safe_action_of, summarise
from softmaint_core.decisions import Decision
from softmaint_core.messages import message_readers, push_message, stamp_seconds
from softmaint_core.settings import Thresholds
from softmaint_core.timeline import Decided, Predicted, Timeline, Truth
from softmaint_core.window import HealthConfig, WindowAssembler
import yaml

from .reading import Bag, BagError

# (message type, topic relative to the robot namespace) of the sim's ground truth; the
# sensors' are topics.SENSORS, as the ingestion node reads them.
TRUTH = ('softmaint_interfaces/msg/GroundTruth', topics.GROUND_TRUTH)


class EvaluationError(ValueError):
    """Evaluation cannot run as asked (bad parameter file); the text says why."""


@dataclass(frozen=True)
class Params:
    """What the offline pipeline takes from the suite's parameter file."""

    health: HealthConfig = HealthConfig()
    joint_names: Tuple[str, ...] = topics.BEND_JOINTS
    actuator_names: Tuple[str, ...] = topics.ACTUATORS
    agent: AgentSettings = AgentSettings()


def load_params(path: Optional[Path]) -> Params:
    """Read the ingestion and agent sections of a parameter YAML (None: the nodes' defaults)."""
    if path is None:
        return Params()
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise EvaluationError(f'cannot read parameter file {path}: {err}') from err

    def section(node):
        return (data.get(node) or {}).get('ros__parameters') or {}

    ingestion, agent = section('softmaint_ingestion'), section('softmaint_agent')
    health_fields = HealthConfig.__dataclass_fields__
    try:
        health = HealthConfig(**{k: v for k, v in ingestion.items() if k in health_fields})
        health.validate()
        defaults = AgentSettings()
        settings = AgentSettings(
            thresholds=Thresholds.from_mapping(agent.get('thresholds') or {}),
            stale_timeout=float(agent.get('stale_timeout', defaults.stale_timeout)),
            startup_grace=float(agent.get('startup_grace', defaults.startup_grace)),
            stale_action=safe_action_of(str(agent.get('stale_action',
                                                      defaults.stale_action.label))))
    except (TypeError, ValueError, KeyError) as err:
        raise EvaluationError(f'parameter file {path}: {err}') from err
    return Params(health=health,
                  joint_names=tuple(ingestion.get('joint_names', Params.joint_names)),
                  actuator_names=tuple(ingestion.get('actuator_names', Params.actuator_names)),
                  agent=settings)


class OfflineAgent:
    """An AgentCore on a replayed timeline, recording what the node would have published."""

    def __init__(self, params: Params, started: float):
        ids = (f'req-offline-{i:04d}' for i in itertools.count(1))
        self.core = AgentCore(params.agent, started, lambda: next(ids))
        self.changes: List[Tuple[float, Decision]] = []

    def watch(self, now: float) -> None:
        """Run the watchdog ticks up to `now`."""
        for tick, step in self.core.watch_until(now):
            self._record(tick, step)

    def predict(self, stamp: float, summary) -> Decision:
        """Decision for one prediction at `stamp` (after the ticks before it)."""
        self.watch(stamp)
        return self._record(stamp, self.core.predict(stamp, summary))

    def _record(self, stamp: float, step) -> Decision:
        if step.changed:
            self.changes.append((stamp, step.decision))
        return step.decision


@dataclass
class WindowResult:
    """One window of the replay: its inputs' availability, prediction and decision."""

    end_ns: int
    available: Tuple[str, ...]
    prediction: Optional[object] = None      # softmaint_core.postprocess.Prediction
    decision: Optional[Decision] = None


@dataclass
class Evaluation:
    """Everything an offline replay produced."""

    bag: str
    model_id: str
    windows: List[WindowResult] = field(default_factory=list)
    timeline: Timeline = field(default_factory=Timeline)
    changes: List[Tuple[float, Decision]] = field(default_factory=list)
    messages: Dict[str, int] = field(default_factory=dict)       # read per sensor topic
    undecodable: Dict[str, int] = field(default_factory=dict)    # per topic
    rejected: Dict[str, Dict[str, int]] = field(default_factory=dict)  # source -> reason
    # channel -> windows where it left the model's training range (window.out_of_training_range)
    out_of_range: Dict[str, int] = field(default_factory=dict)
    missing_topics: List[str] = field(default_factory=list)
    ignored_topics: List[str] = field(default_factory=list)
    skipped_no_input: int = 0
    bag_seconds: float = 0.0
    thresholds: Optional[Thresholds] = None     # the policy's: decisions judged against truth
    wall_seconds: float = 0.0


def _topic_name(namespace: str, relative: str) -> str:
    return '/' + '/'.join(p for p in (namespace.strip('/'), relative) if p)


def plan_topics(bag: Bag, namespace: str) -> Tuple[Dict[str, str], List[str], List[str]]:
    """Return bag topic -> source (or 'truth'), the missing sensor topics, the ignored ones."""
    wanted = {_topic_name(namespace, t): (source, msgtype)
              for source, (msgtype, t) in topics.SENSORS.items()}
    wanted[_topic_name(namespace, TRUTH[1])] = ('truth', TRUTH[0])
    found = bag.topics
    for name, topic in found.items():
        if name in wanted and topic.msgtype != wanted[name][1]:
            raise BagError(f'topic {name} in {bag.path} has type {topic.msgtype}, the suite '
                           f'reads {wanted[name][1]} there')
    selected = {name: wanted[name][0] for name in found if name in wanted}
    missing = sorted(n for n, (s, _) in wanted.items() if s != 'truth' and n not in found)
    if not set(selected.values()) - {'truth'}:
        raise BagError(f'{bag.path} has none of the sensor topics {sorted(n for n in wanted)}; '
                       f'it has {sorted(found)} (wrong namespace? use --namespace)')
    return selected, missing, sorted(set(found) - set(selected))


def replay(path: Path, spec, params: Params, on_window, namespace: str = '',
           result: Optional[Evaluation] = None) -> Evaluation:
    """
    Feed bag `path` through a WindowAssembler for `spec` as the ingestion node does.

    Calls on_window(end_ns, window) at every multiple of hop within the bag, before the
    messages received at or after it; collects ground truth and the counts into `result`.
    """
    import time
    wall_start = time.perf_counter()
    assembler = WindowAssembler(spec, params.health)
    readers = message_readers(assembler, params.joint_names, params.actuator_names)
    hop_ns = round(spec.hop * 1e9)
    result = result if result is not None else Evaluation(bag=str(path), model_id='')
    with Bag(path) as bag:
        selected, result.missing_topics, result.ignored_topics = plan_topics(bag, namespace)
        next_end = -(-bag.start // hop_ns) * hop_ns          # first multiple of hop >= start
        for record in bag.records(sorted(selected)):
            while next_end <= record.stamp:
                on_window(next_end, assembler.assemble(next_end * 1e-9))
                next_end += hop_ns
            source = selected[record.topic]
            try:
                msg = bag.decode(record)
            except Exception:  # noqa: B902 - rosbags raises many types for bad CDR
                result.undecodable[record.topic] = result.undecodable.get(record.topic, 0) + 1
                continue
            result.messages[record.topic] = result.messages.get(record.topic, 0) + 1
            if source == 'truth':
                result.timeline.truth.append(Truth(
                    stamp_seconds(msg.header.stamp), int(msg.fatigue_level),
                    int(msg.damage_type), float(msg.urgency)))
            elif source in readers:
                push_message(assembler, readers, source, msg, record.stamp * 1e-9)
        while next_end <= bag.end:
            on_window(next_end, assembler.assemble(next_end * 1e-9))
            next_end += hop_ns
        result.bag_seconds = (bag.end - bag.start) * 1e-9
    result.rejected = {name: {r: n for r, n in health.rejected.items() if n}
                       for name, health in assembler.health(next_end * 1e-9).items()}
    result.wall_seconds = time.perf_counter() - wall_start
    return result


def bag_start(path: Path) -> float:
    """Return the start time of a bag [s]."""
    with Bag(path) as bag:
        return bag.start * 1e-9


def evaluate(path: Path, model, params: Params, namespace: str = '') -> Evaluation:
    """Replay bag `path` through ingestion, `model` (a StudentModel) and the policy."""
    result = Evaluation(bag=str(path), model_id=model.meta.model_id)
    agent = OfflineAgent(params, bag_start(path))

    def on_window(end_ns, window):
        result.windows.append(_window(window, model, agent, end_ns, result))

    replay(path, model.spec, params, on_window, namespace, result)
    result.changes = agent.changes
    result.timeline.decisions = [Decided(stamp, d.action.label, d.evidence.get('level', ''))
                                 for stamp, d in agent.changes]
    result.thresholds = params.agent.thresholds
    return result


def _window(window, model, agent: OfflineAgent, end_ns: int,
            result: Evaluation) -> WindowResult:
    """Predict and decide for the window ending at `end_ns`."""
    mask = [bool(a) for a in window.mask]
    names = model.spec.names
    for channel in (c for m in window.modalities for c in m.out_of_range):
        result.out_of_range[channel] = result.out_of_range.get(channel, 0) + 1
    item = WindowResult(end_ns, tuple(n for n, ok in zip(names, mask) if ok))
    agent.watch(end_ns * 1e-9)
    if not any(mask):     # the inference node publishes no prediction for such a window
        result.skipped_no_input += 1
        return item
    feeds = {m.name: m.data[None] for m in window.modalities}
    item.prediction, _ = model.predict(feeds, mask)
    summary = summarise(item.prediction, item.available, len(names))
    item.decision = agent.predict(end_ns * 1e-9, summary)
    result.timeline.predictions.append(Predicted(
        end_ns * 1e-9, int(np.argmax(item.prediction.fatigue_probs)),
        int(np.argmax(item.prediction.damage_probs)), float(item.prediction.urgency),
        float(item.prediction.uncertainty)))
    return item
