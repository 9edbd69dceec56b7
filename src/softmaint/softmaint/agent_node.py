"""
Maintenance agent node: turns the student's predictions into maintenance decisions.

Every MaintenancePrediction on softmaint/prediction goes through softmaint_core.agent.AgentCore
(the policy's hysteresis and assistance requests, and the watchdog), the same pipeline offline
bag evaluation runs. The node publishes the decision on softmaint/decision (latched) and the
workload limit on softmaint/workload_limit (latched) for every prediction and watchdog step and
every `decision_period`, calls the robot's std_srvs/Trigger emergency stop on a shutdown
(retrying until it is confirmed), and moves to a safe decision when predictions go stale. It
serves softmaint/inspect (watch for a while, report a considered decision) and
softmaint/acknowledge (an operator answers an assistance request), and writes every decision,
acknowledgement, model change and emergency stop to the durable maintenance log. What it
receives is checked in softmaint_core.inputs (a prediction's fields and order, answers, list
requests, inspect goals, and the action requests rclpy refuses by itself: AuditedActionServer);
every refusal is counted by reason on /diagnostics (`rejected.<input>.<reason>`).

Parameters `thresholds.*` (settings.Thresholds) and `actions.*` (settings.ActionSettings: what a
shutdown means here, how far away assistance is) are what an application profile overlay sets.
"""
from dataclasses import fields
import math
import threading
import time
from typing import Optional

from builtin_interfaces.msg import Time as TimeMsg
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
from rclpy.action import CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from softmaint_core import topics
from softmaint_core.agent import (AgentCore, AgentSettings, safe_action_of, SAFE_ACTIONS, Step,
                                  WATCHDOG_TICK)
from softmaint_core.inputs import (ACKNOWLEDGE_REASONS, check_acknowledgement,
                                   check_inspect_goal, check_list_request, INSPECT_REASONS,
                                   LIST_REQUESTS_REASONS, PREDICTION_REASONS,
                                   prediction_summary, RejectCounts, Rejected, StreamOrder)
from softmaint_core.inspection import aggregate
from softmaint_core.maintenance_log import DEFAULT_PATH, LogError, MaintenanceLog, RequestError
from softmaint_core.settings import Action, ActionSettings, Thresholds
from softmaint_interfaces.action import Inspect
from softmaint_interfaces.msg import MaintenanceDecision, MaintenancePrediction
from softmaint_interfaces.srv import AcknowledgeAssistance, ListAssistanceRequests
from softmaint_ros.audited_action_server import AuditedActionServer
from softmaint_ros.diagnostics import declare_diagnostics_parameters, hardware_id, key_values
from softmaint_ros.node_main import run_node
from softmaint_ros.qos import LATCHED
from std_msgs.msg import Float32
from std_srvs.srv import Trigger

from .agent_messages import decision_msg, log_entry_msg, request_msg
from .inspection_action import Inspection, inspection_result, partial_result

NODE_NAME = 'softmaint_agent'
THRESHOLD_PREFIX = 'thresholds.'
ACTIONS_PREFIX = 'actions.'
# How long an inspection waits for the next prediction before checking cancel and time [s].
INSPECTION_POLL = 0.1
# Inspections at a time: each holds an executor thread while it waits for predictions.
MAX_INSPECTIONS = 2


class AgentNode(Node):
    """Runs the maintenance policy on the student's predictions."""

    def __init__(self):
        super().__init__(NODE_NAME)
        self._declare_parameters()
        # the watchdog counts from the first clock it sees (see _on_watchdog)
        self._core = AgentCore(AgentSettings(), started=self._now())
        self._apply_parameters([])             # a ValueError stops start-up
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.add_post_set_parameters_callback(self._apply_parameters)
        self._log = MaintenanceLog(self.get_parameter('log_path').value)   # LogError too

        self._decision_msg: Optional[MaintenanceDecision] = None
        self._prediction_stamp, self._model_id, self._model_sha = TimeMsg(), '', ''
        self._counts = {'predictions': 0, 'rejected_predictions': 0, 'decisions': 0,
                        'acknowledgements': 0, 'inspections': 0}
        self._rejects = RejectCounts({'prediction': PREDICTION_REASONS,
                                      'acknowledge': ACKNOWLEDGE_REASONS,
                                      'list_requests': LIST_REQUESTS_REASONS,
                                      'inspect': INSPECT_REASONS})
        self._prediction_order = StreamOrder()
        self._estop = 'not needed'
        self._inspections = set()
        self._accepted_inspections = 0
        self._inspections_lock = threading.Lock()

        main = MutuallyExclusiveCallbackGroup()    # everything that changes the policy state
        self._decision_pub = self.create_publisher(MaintenanceDecision, topics.DECISION, LATCHED)
        self._workload_pub = self.create_publisher(Float32, topics.WORKLOAD_LIMIT, LATCHED)
        self._diagnostics = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, 10)
        self.create_subscription(MaintenancePrediction, topics.PREDICTION, self._on_prediction,
                                 10, callback_group=main)
        self.create_service(AcknowledgeAssistance, topics.ACKNOWLEDGE, self._on_acknowledge,
                            callback_group=main)
        self.create_service(ListAssistanceRequests, topics.LIST_REQUESTS,
                            self._on_list_requests, callback_group=main)
        estop_service = self.get_parameter('emergency_stop_service').value
        self._estop_client = (self.create_client(Trigger, estop_service, callback_group=main)
                              if estop_service else None)
        self.create_timer(WATCHDOG_TICK, self._on_watchdog, callback_group=main)
        self.create_timer(self.get_parameter('decision_period').value, self._on_period,
                          callback_group=main)
        self.create_timer(self.get_parameter('diagnostics_period').value,
                          self._publish_diagnostics, callback_group=main)
        self._inspect_server = AuditedActionServer(
            self, Inspect, topics.INSPECT, execute_callback=self._execute_inspection,
            on_refused=self._on_inspect_refused, goal_callback=self._on_inspect_goal,
            cancel_callback=self._on_inspect_cancel, callback_group=ReentrantCallbackGroup())
        if not estop_service:
            self.get_logger().warn('emergency_stop_service is empty: shutdown decisions will '
                                   'NOT stop the robot')
        self.get_logger().info(f'ready: logging to {self._log.path}, emergency stop '
                               f'{estop_service or "disabled"}')

    # ------------------------------------------------------------------ parameters

    def _declare_parameters(self) -> None:
        for spec in fields(Thresholds):
            low, high = spec.metadata['range']
            descriptor = ParameterDescriptor(description=spec.metadata['description'])
            if spec.type is int:
                descriptor.integer_range = [IntegerRange(from_value=low, to_value=high, step=1)]
            else:
                descriptor.floating_point_range = [
                    FloatingPointRange(from_value=float(low), to_value=float(high))]
            self.declare_parameter(THRESHOLD_PREFIX + spec.name, spec.default, descriptor)
        for spec in fields(ActionSettings):
            descriptor = ParameterDescriptor(description=spec.metadata['description'])
            choices = spec.metadata['choices']
            if choices is not None:
                descriptor.additional_constraints = f'one of {list(choices)}'
            else:
                low, high = spec.metadata['range']
                descriptor.floating_point_range = [
                    FloatingPointRange(from_value=float(low), to_value=float(high))]
            self.declare_parameter(ACTIONS_PREFIX + spec.name, spec.default, descriptor)
        self.declare_parameter('log_path', DEFAULT_PATH,
                               ParameterDescriptor(description='SQLite maintenance log file',
                                                   read_only=True))
        self.declare_parameter('stale_timeout', 3.0, ParameterDescriptor(
            description='seconds without a prediction after which the watchdog acts',
            floating_point_range=[FloatingPointRange(from_value=0.1, to_value=3600.0)]))
        self.declare_parameter('startup_grace', 5.0, ParameterDescriptor(
            description='extra seconds the watchdog waits for the first prediction (a whole '
                        'window of data, up to one hop and the model start come first)',
            floating_point_range=[FloatingPointRange(from_value=0.0, to_value=3600.0)]))
        self.declare_parameter('stale_action', Action.REQUEST_ASSISTANCE.label,
                               ParameterDescriptor(description='safe decision when predictions '
                                                   f'are stale: one of {SAFE_ACTIONS}'))
        self.declare_parameter('emergency_stop_service', topics.EMERGENCY_STOP,
                               ParameterDescriptor(description='std_srvs/Trigger service called '
                                                   'on immediate_shutdown; empty = none',
                                                   read_only=True))
        self.declare_parameter('decision_period', 1.0, ParameterDescriptor(
            description='period of republishing the current decision [s]', read_only=True,
            floating_point_range=[FloatingPointRange(from_value=0.05, to_value=3600.0)]))
        declare_diagnostics_parameters(self)
        self.declare_parameter('max_inspection_duration', 600.0, ParameterDescriptor(
            description='longest inspection a goal may ask for [s]',
            floating_point_range=[FloatingPointRange(from_value=1.0, to_value=86400.0)]))

    def _read_group(self, prefix: str, cls, changes=()):
        """Thresholds or ActionSettings (`cls`) from the `prefix`ed parameters and `changes`."""
        values = {spec.name: self.get_parameter(prefix + spec.name).value
                  for spec in fields(cls)}
        values.update({p.name[len(prefix):]: p.value for p in changes
                       if p.name.startswith(prefix)})
        return cls.from_mapping(values)

    def _on_set_parameters(self, parameters) -> SetParametersResult:
        try:
            # ThresholdError is a ValueError
            self._read_group(THRESHOLD_PREFIX, Thresholds, parameters)
            self._read_group(ACTIONS_PREFIX, ActionSettings, parameters)
            for parameter in parameters:
                if parameter.name == 'stale_action':
                    safe_action_of(parameter.value)
        except ValueError as err:
            return SetParametersResult(successful=False, reason=str(err))
        return SetParametersResult(successful=True)

    def _apply_parameters(self, parameters) -> None:
        """Take accepted values (also at start-up, where nothing validated them yet)."""
        self._core.settings = AgentSettings(
            thresholds=self._read_group(THRESHOLD_PREFIX, Thresholds),
            actions=self._read_group(ACTIONS_PREFIX, ActionSettings),
            stale_timeout=self.get_parameter('stale_timeout').value,
            startup_grace=self.get_parameter('startup_grace').value,
            stale_action=safe_action_of(self.get_parameter('stale_action').value))
        self._max_inspection = self.get_parameter('max_inspection_duration').value

    # ------------------------------------------------------------------ decisions

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds / 1e9

    def _on_prediction(self, msg: MaintenancePrediction) -> None:
        try:
            stamp, summary = prediction_summary(msg, self._prediction_order, self._now())
        except Rejected as err:
            self._counts['rejected_predictions'] += 1
            self._rejects.count('prediction', err.reason)
            self.get_logger().error(f'ignored prediction of window {msg.window_sequence}: {err}',
                                    throttle_duration_sec=5.0)
            return
        self._prediction_order.accept(stamp)
        self._counts['predictions'] += 1
        if self._core.stale:
            self.get_logger().info('predictions resumed')
        self._prediction_stamp = msg.header.stamp
        self._note_model(msg)
        self._take(self._core.predict(self._now(), summary))
        with self._inspections_lock:
            for inspection in self._inspections:
                inspection.add(summary)

    def _note_model(self, msg: MaintenancePrediction) -> None:
        if msg.model_sha256 == self._model_sha:
            return
        previous = self._model_id or 'none'
        self._record('model_change', '', f'predictions now come from {msg.model_id} '
                     f'(sha256 {msg.model_sha256[:12]}), before: {previous}',
                     {'sha256': msg.model_sha256, 'previous_model_id': self._model_id,
                      'previous_sha256': self._model_sha}, model_id=msg.model_id)
        self._model_id, self._model_sha = msg.model_id, msg.model_sha256

    def _on_watchdog(self) -> None:
        now = self._now()
        if not self._core.started:
            # sim time starts at 0 until the first /clock, and a replayed bag's clock starts at
            # its recording time: the watchdog counts from the first clock it sees
            self._core.started = now
            return
        step = self._core.watch(now)
        if step is None:
            return
        if step.became_stale:
            self.get_logger().warn(f'{step.decision.evidence["prediction_age"]} s without a '
                                   'prediction: moving to a safe decision '
                                   f'({self._core.settings.stale_action.label})')
        self._take(step)

    def _take(self, step: Step) -> None:
        """Publish the step's decision; log and act on it when it changed."""
        decision = step.decision
        self._decision_msg = decision_msg(decision, self.get_clock().now().to_msg(),
                                          self._prediction_stamp, self._model_id)
        # every window's decision, so a subscriber sees which prediction each one answers
        self._publish_decision()
        if not step.changed:
            return
        self._counts['decisions'] += 1
        log = (self.get_logger().warn if decision.priority >= 2 else self.get_logger().info)
        log(f'decision {decision.action.label}: {decision.reason}')
        self._record('decision', decision.action.label, decision.reason,
                     {**decision.evidence, 'basis': decision.basis,
                      'priority': decision.priority,
                      'workload_limit': decision.workload_limit},
                     request_id=decision.request_id, model_id=self._model_id)
        if decision.action != Action.IMMEDIATE_SHUTDOWN:
            self._estop = 'not needed'
        elif self._estop == 'not needed':    # not already shutting down: call the stop
            self._estop = 'not called'
            self._call_emergency_stop()

    def _publish_decision(self) -> None:
        self._decision_pub.publish(self._decision_msg)
        self._workload_pub.publish(Float32(data=self._decision_msg.workload_limit))

    def _on_period(self) -> None:
        if self._decision_msg is None:
            return
        self._publish_decision()
        if self._estop in ('not called', 'no server', 'refused'):
            self._call_emergency_stop()

    def _record(self, kind: str, action: str, summary: str, evidence: dict,
                **columns) -> None:
        """Append to the maintenance log; a failing disk must not stop the decisions."""
        try:
            self._log.append(kind, time.time(), action, summary, evidence=evidence, **columns)
        except LogError as err:
            self.get_logger().error(f'maintenance log: {err}', throttle_duration_sec=5.0)

    # ------------------------------------------------------------------ emergency stop

    def _call_emergency_stop(self) -> None:
        name = self.get_parameter('emergency_stop_service').value
        if self._estop_client is None:
            self.get_logger().error('immediate shutdown decided but no emergency stop service '
                                    'is configured: the robot was NOT stopped by the agent',
                                    throttle_duration_sec=5.0)
            return
        if not self._estop_client.service_is_ready():
            if self._estop != 'no server':
                self._record('emergency_stop', '', f'emergency stop service {name} has no '
                             'server: the robot was NOT stopped; retrying',
                             {'service': name, 'outcome': 'no server'})
            self._estop = 'no server'
            self.get_logger().error(f'immediate shutdown: emergency stop service {name!r} has '
                                    'no server, the robot was NOT stopped; retrying every '
                                    'decision period', throttle_duration_sec=5.0)
            return
        self._estop = 'pending'
        future = self._estop_client.call_async(Trigger.Request())
        future.add_done_callback(self._on_emergency_stop_done)

    def _on_emergency_stop_done(self, future) -> None:
        name = self.get_parameter('emergency_stop_service').value
        response = future.result()
        success = response is not None and response.success
        outcome = 'confirmed' if success else 'refused'
        message = response.message if response is not None else 'the call failed'
        if self._estop == 'pending':           # else the decision changed meanwhile
            self._estop = outcome
        meaning = self._core.settings.actions.shutdown_meaning
        summary = f'emergency stop {name} ({meaning}) {outcome}: {message or "no message"}'
        (self.get_logger().warn if success else self.get_logger().error)(summary)
        self._record('emergency_stop', '', summary,
                     {'service': name, 'outcome': outcome, 'message': message})

    # ------------------------------------------------------------------ acknowledgements

    def _on_acknowledge(self, request: AcknowledgeAssistance.Request,
                        response: AcknowledgeAssistance.Response):
        try:
            check_acknowledgement(request)
            action = Action(request.action)
            evidence = {'operator': request.operator_name, 'note': request.note,
                        'fatigue_label': request.fatigue_label,
                        'damage_label': request.damage_label,
                        'urgency_label': (None if math.isnan(request.urgency_label)
                                          else request.urgency_label)}
            self._log.acknowledge(request.request_id, time.time(), action.label,
                                  f'{request.operator_name} chose {action.label}: '
                                  f'{request.note}', evidence)
        except (Rejected, RequestError, LogError) as err:
            # an invalid answer, an unknown or answered request_id, a log that cannot write
            reason = getattr(err, 'reason', 'log' if isinstance(err, LogError) else 'request')
            self._rejects.count('acknowledge', reason)
            response.accepted, response.message = False, f'refused: {err}'
            self.get_logger().warn(f'acknowledgement {response.message}')
            return response
        self._counts['acknowledgements'] += 1
        response.accepted = True
        if request.request_id != self._core.state.request_id:
            response.message = (f'recorded; {request.request_id} is no longer the open request, '
                                'the decision stays')
            return response
        step = self._core.acknowledge(action, request.operator_name, request.request_id)
        self._take(step)
        response.message = f'recorded; the decision is now {step.decision.action.label}'
        return response

    def _on_list_requests(self, request: ListAssistanceRequests.Request,
                          response: ListAssistanceRequests.Response):
        open_request = self._core.open_request()
        response.open_requests = ([] if open_request is None
                                  else [request_msg(open_request, self._model_id)])
        try:
            check_list_request(request)
            entries = (self._log.query(kinds=list(request.history_kinds),
                                       limit=request.history_limit, newest_first=True)
                       if request.history_limit else [])
        except (Rejected, LogError) as err:        # a bad request, an unreadable log
            self._rejects.count('list_requests', getattr(err, 'reason', 'log'))
            response.success, response.message = False, str(err)
            return response
        response.history = [log_entry_msg(e) for e in entries]
        response.success = True
        response.message = (f'{len(response.open_requests)} open request(s), '
                            f'{len(entries)} log entries')
        return response

    # ------------------------------------------------------------------ inspect action

    def _on_inspect_goal(self, goal: Inspect.Goal) -> GoalResponse:
        with self._inspections_lock:
            try:
                check_inspect_goal(goal.duration, goal.min_windows, self._max_inspection)
                if self._accepted_inspections >= MAX_INSPECTIONS:
                    raise Rejected('busy', f'{MAX_INSPECTIONS} inspections are running already')
            except Rejected as err:
                refusal = err
            else:
                self._accepted_inspections += 1
                return GoalResponse.ACCEPT
        self._on_inspect_refused(refusal.reason, f'goal rejected: {refusal}')
        return GoalResponse.REJECT

    def _on_inspect_refused(self, reason: str, text: str = '') -> None:
        self._rejects.count('inspect', reason)
        # a goal flood or cancel storm must not flood the log (warning, not warn: rclpy's
        # deprecated warn is one call site for all its callers, and a call site cannot change
        # its throttle)
        self.get_logger().warning(f'inspect: {text or reason.replace("_", " ")}',
                                  throttle_duration_sec=1.0)

    def _on_inspect_cancel(self, goal_handle) -> CancelResponse:
        return CancelResponse.ACCEPT

    def _execute_inspection(self, goal_handle) -> Inspect.Result:
        goal = goal_handle.request
        inspection = Inspection()
        with self._inspections_lock:
            self._inspections.add(inspection)
        self._counts['inspections'] += 1
        start = self._now()
        try:
            seen = []
            while self.context.ok():
                seen_before = len(seen)
                seen = inspection.wait_beyond(seen_before, INSPECTION_POLL)
                elapsed = self._now() - start
                if goal_handle.is_cancel_requested:
                    goal_handle.canceled()
                    return partial_result(seen, elapsed, 'canceled')
                if len(seen) > seen_before:
                    running = aggregate(seen)
                    goal_handle.publish_feedback(Inspect.Feedback(
                        windows_seen=len(seen), elapsed=elapsed,
                        running_urgency=running.urgency,
                        running_uncertainty=running.uncertainty))
                if elapsed >= goal.duration:
                    break
            if len(seen) < goal.min_windows:
                self._on_inspect_refused('too_few_windows', f'aborted: only {len(seen)} of '
                                         f'{goal.min_windows} windows arrived')
                goal_handle.abort()
                return partial_result(seen, elapsed, f'only {len(seen)} of '
                                      f'{goal.min_windows} windows arrived')
            settings = self._core.settings
            result, decision = inspection_result(seen, settings.thresholds, elapsed,
                                                 settings.actions)
            result.decision = decision_msg(decision, self.get_clock().now().to_msg(),
                                           self._prediction_stamp, self._model_id)
            self._record('decision', decision.action.label, result.summary,
                         {**decision.evidence, 'basis': decision.basis,
                          'priority': decision.priority}, model_id=self._model_id)
            goal_handle.succeed()
            return result
        finally:
            with self._inspections_lock:
                self._inspections.discard(inspection)
                self._accepted_inspections -= 1

    # ------------------------------------------------------------------ diagnostics

    def _publish_diagnostics(self) -> None:
        status = DiagnosticStatus(name=f'{NODE_NAME}: policy', hardware_id=hardware_id(self))
        core = self._core
        action = core.current.action.label if core.current else 'none yet'
        now = self._now()
        age = now - (core.last_prediction or core.started or now)
        if core.current and core.current.action == Action.IMMEDIATE_SHUTDOWN \
                and self._estop != 'confirmed':
            status.level = DiagnosticStatus.ERROR
            status.message = f'shutdown decided, emergency stop {self._estop}'
        elif core.stale or action == Action.REQUEST_ASSISTANCE.label:
            status.level = DiagnosticStatus.WARN
            status.message = (f'predictions stale: no prediction for {age:.1f} s' if core.stale
                              else 'assistance requested')
        else:
            status.level, status.message = DiagnosticStatus.OK, action
        values = {'action': action, 'level': core.state.level.label, 'model_id': self._model_id,
                  'request_id': core.state.request_id, 'prediction_age': f'{age:.3f}',
                  'stale': str(core.stale), 'emergency_stop': self._estop,
                  'log_path': str(self._log.path),
                  **{key: str(count) for key, count in self._counts.items()},
                  **self._rejects.values()}
        status.values = key_values(values)
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics.publish(array)

    def destroy_node(self):
        """Stop serving, then close the log."""
        self._inspect_server.destroy()
        super().destroy_node()
        self._log.close()


def main(args=None):
    """Run the node until Ctrl-C or SIGTERM; return 1 on invalid parameters or log."""
    # Inspections, the policy's callback group and the parameter services run side by side.
    return run_node(AgentNode, NODE_NAME, args,
                    make_executor=lambda: MultiThreadedExecutor(num_threads=MAX_INSPECTIONS + 2),
                    fatal=(ValueError, LogError))


if __name__ == '__main__':
    raise SystemExit(main())
