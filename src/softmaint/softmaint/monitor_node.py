"""
Monitor: shows the suite's predictions and decisions live and summarises a run against truth.

Subscribes to predictions, decisions and (from the sim robot) ground truth; logs one line per
prediction and every change of decision. When it stops it writes summary.json, timeline.png
(urgency against truth, uncertainty, decisions over time), one close-up per injected fault
(fault_N_HEAD_LABEL.png: predicted class, urgency, uncertainty and decisions around its onset)
and summary.md, which embeds them, into `report_dir`. Given the parameter files the agent runs
with (`params_files`), the summary also judges every decision, for as long as it held,
against the level the truth implies under the agent's thresholds.
"""
from pathlib import Path
from typing import Tuple

import numpy as np
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.parameter import Parameter
from softmaint_core import topics
from softmaint_core.messages import stamp_seconds
from softmaint_core.profiles import AGENT, agent_thresholds, load_parameter_files
from softmaint_core.taxonomy import DAMAGE_TYPES, FATIGUE_LEVELS
from softmaint_core.timeline import (against_truth_lines, Decided, Predicted, summary_json,
                                     Timeline, Truth)
from softmaint_core.timeline_plot import plot_faults, plot_timeline
from softmaint_interfaces.msg import GroundTruth, MaintenanceDecision, MaintenancePrediction
from softmaint_ros.node_main import run_node
from softmaint_ros.qos import LATCHED

NODE_NAME = 'softmaint_monitor'


class Monitor(Node):
    """Collects a Timeline of the run and writes its summary on shutdown."""

    def __init__(self):
        super().__init__(NODE_NAME)
        self.declare_parameter('report_dir', 'reports/latest', ParameterDescriptor(
            description='directory of summary.json, summary.md and the figures',
            read_only=True))
        # No default: an empty list would be read as a byte array.
        self.declare_parameter('params_files', Parameter.Type.STRING_ARRAY, ParameterDescriptor(
            description="the suite's parameter files as the agent reads them, later ones "
            'overriding earlier ones (bringup passes the profile overlay after the base file): '
            'the agent thresholds in them (as at start; a later `ros2 param set` on the agent '
            'is not followed) judge the decisions against the truth (unset = not judged)',
            read_only=True))
        self.params_files = self.get_parameter_or(
            'params_files', Parameter('params_files', value=[])).value
        self.thresholds = self._thresholds()
        self.timeline = Timeline()
        self.truth = None
        self.create_subscription(MaintenancePrediction, topics.PREDICTION, self.on_prediction, 10)
        self.create_subscription(MaintenanceDecision, topics.DECISION, self.on_decision, LATCHED)
        self.create_subscription(GroundTruth, topics.GROUND_TRUTH, self.on_truth, 10)
        if self.thresholds is not None:
            self.get_logger().info('ready; decisions judged against the truth with the agent '
                                   f"thresholds of {', '.join(self.params_files)}")
        else:
            self.get_logger().info('ready; decisions not judged against the truth')

    def _thresholds(self):
        """
        Return the agent's thresholds as the parameter files set them at start, or None.

        A file the monitor cannot read this way (a wildcard or namespaced node key, which the
        agent itself accepts) leaves the decisions unjudged rather than stopping the run.
        """
        if not self.params_files:
            return None
        try:
            return agent_thresholds(load_parameter_files(self.params_files)[AGENT])
        except (OSError, ValueError) as err:        # ProfileError is a ValueError
            self.get_logger().warning(f'decisions not judged against the truth: {err}')
            return None

    def on_truth(self, msg: GroundTruth) -> None:
        """Record ground truth (levels and types the taxonomy has)."""
        if not (0 <= msg.fatigue_level < len(FATIGUE_LEVELS)
                and 0 <= msg.damage_type < len(DAMAGE_TYPES)):
            self.get_logger().warning(
                f'ground truth skipped: fatigue level {msg.fatigue_level}, damage type '
                f'{msg.damage_type} where the taxonomy has {len(FATIGUE_LEVELS)} and '
                f'{len(DAMAGE_TYPES)}', throttle_duration_sec=5.0)
            return
        self.truth = msg
        self.timeline.truth.append(Truth(stamp_seconds(msg.header.stamp), msg.fatigue_level,
                                         msg.damage_type, msg.urgency))

    def on_prediction(self, msg: MaintenancePrediction) -> None:
        """Record a prediction and show it next to the truth."""
        if (len(msg.fatigue_probs), len(msg.damage_probs)) != (len(FATIGUE_LEVELS),
                                                               len(DAMAGE_TYPES)):
            self.get_logger().warning(
                f'prediction skipped: {len(msg.fatigue_probs)} fatigue and '
                f'{len(msg.damage_probs)} damage probabilities where the taxonomy has '
                f'{len(FATIGUE_LEVELS)} and {len(DAMAGE_TYPES)}', throttle_duration_sec=5.0)
            return
        fatigue, damage = int(np.argmax(msg.fatigue_probs)), int(np.argmax(msg.damage_probs))
        self.timeline.predictions.append(Predicted(
            stamp_seconds(msg.header.stamp), fatigue, damage, msg.urgency, msg.uncertainty))
        truth = ''
        if self.truth is not None:
            truth = (f' | truth {FATIGUE_LEVELS[self.truth.fatigue_level]:>6} '
                     f'{self.truth.damage_name:<18} urgency {self.truth.urgency:.2f}')
        missing = sorted({m.name for m in msg.reconstructed})
        self.get_logger().info(
            f'predicted {FATIGUE_LEVELS[fatigue]:>6} {DAMAGE_TYPES[damage]:<18} '
            f'p={max(msg.damage_probs):.2f} urgency {msg.urgency:.2f}±{msg.urgency_std:.2f} '
            f'uncertainty {msg.uncertainty:.2f}'
            f'{" missing " + ",".join(missing) if missing else ""}{truth}')

    def on_decision(self, msg: MaintenanceDecision) -> None:
        """Record a decision; show it when it changes."""
        last = self.timeline.decisions[-1].action if self.timeline.decisions else None
        level = next((kv.value for kv in msg.evidence if kv.key == 'level'), '')
        decided = Decided(stamp_seconds(msg.header.stamp), msg.action_name, level)
        error = decided.error()
        if error:              # counted, it would end the report at shutdown
            self.get_logger().warning(f'decision skipped: {error}', throttle_duration_sec=5.0)
            return
        self.timeline.decisions.append(decided)
        if msg.action_name != last:
            self.get_logger().info(f'DECISION {msg.action_name.upper()} '
                                   f'(priority {msg.priority}): {msg.reason}')

    def write_report(self) -> Tuple[Path, dict]:
        """Write summary.json, summary.md and timeline.png; return the directory and summary."""
        out = Path(self.get_parameter('report_dir').value)
        out.mkdir(parents=True, exist_ok=True)
        summary = self.timeline.summary(self.thresholds)
        (out / 'summary.json').write_text(summary_json(summary))
        figures = []
        if self.timeline.predictions:
            figures.append(plot_timeline(self.timeline, out / 'timeline.png',
                                         'softmaint run: urgency, uncertainty and decisions '
                                         'against ground truth').name)
            figures += [path.name for path in plot_faults(self.timeline, out)]
        (out / 'summary.md').write_text(summary_markdown(summary, figures))
        return out, summary


def _seconds_or_dash(value) -> str:
    return '-' if value is None else f'{value:.1f}'


def summary_markdown(summary: dict, figures=()) -> str:
    """Human-readable summary of a run, embedding its figures (file names beside it)."""
    lines = ['# softmaint run summary', '',
             f"{summary['predictions']} predictions, {summary['decision_changes']} decision "
             f"changes, urgency MAE against truth {summary['urgency_mae']:.3f}", '',
             '| fault onset [s into the run] | head | became | detected after [s] '
             '| acted on after [s] |',
             '|---|---|---|---|---|']
    t0 = summary['start']
    for onset in summary['onsets']:
        lines.append(f"| {onset['stamp'] - t0:.1f} | {onset['head']} | {onset['label']} | "
                     f"{_seconds_or_dash(onset['detected_after'])} | "
                     f"{_seconds_or_dash(onset['acted_after'])} |")
    lines += ['', '| decision | seconds |', '|---|---|']
    lines += [f'| {action} | {secs:.1f} |'
              for action, secs in summary['decision_seconds'].items()]
    if 'decisions_against_truth' in summary:
        lines += [''] + against_truth_lines(summary['decisions_against_truth'])
    lines += [line for name in figures for line in ('', f'![{name}]({name})')]
    return '\n'.join(lines) + '\n'


def write_report(node: Monitor) -> None:
    """Write the run's summary and plot, and log the summary."""
    out, summary = node.write_report()
    node.get_logger().info(f'{summary_markdown(summary)}\nreport: {out}/summary.md (with its '
                           'figures)')


def main(args=None):
    """Run the monitor until shutdown, then write its report."""
    return run_node(Monitor, NODE_NAME, args, finish=write_report)


if __name__ == '__main__':
    raise SystemExit(main())
