"""
The operator side of an agent under test: predictions it feeds, decisions and diagnostics it sees.

Shared by the agent's node tests and the reliability tests (tests/reliability), which kill and
restart agent and student processes under it.
"""
import math

from ros_helpers import spin_until

CLASSES = {'fatigue': ['low', 'medium', 'high'],
           'damage': ['none', 'puncture_leak', 'crack_tear', 'delamination_bulge',
                      'actuator_clog']}
ALL = ['camera', 'tactile', 'proprio', 'environment']


def prediction(stamp, urgency=0.1, uncertainty=0.1, damage_set=(0,), available=ALL):
    from softmaint_interfaces.msg import MaintenancePrediction, ReconstructedModality
    msg = MaintenancePrediction(window_sequence=stamp, urgency=urgency, uncertainty=uncertainty,
                                model_id='student-test', model_sha256='ab' * 32)
    msg.header.stamp.sec = stamp
    msg.fatigue_classes, msg.damage_classes = CLASSES['fatigue'], CLASSES['damage']
    msg.fatigue_probs = [0.9, 0.05, 0.05]
    msg.damage_probs = [0.9, 0.025, 0.025, 0.025, 0.025]
    msg.fatigue_set, msg.damage_set = [0], list(damage_set)
    msg.input_modalities = list(available)
    msg.reconstructed = [ReconstructedModality(name=n, embedding=[0.0] * 32, confidence=0.5)
                         for n in ALL if n not in available]
    return msg


CALM, HIGH = {}, {'urgency': 0.7}
CRITICAL = {'urgency': 0.9, 'uncertainty': 0.05}
AMBIGUOUS = {'damage_set': (0, 2)}


def evidence_of(decision) -> dict:
    """Return a MaintenanceDecision's evidence as a dict (its 'basis': prediction, stale, ...)."""
    return {kv.key: kv.value for kv in decision.evidence}


class Operator:
    """Test-side node: feeds predictions, watches decisions, serves the emergency stop."""

    def __init__(self, context):
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.action import ActionClient
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from softmaint_core import topics
        from softmaint_interfaces.action import Inspect
        from softmaint_interfaces.msg import MaintenanceDecision, MaintenancePrediction
        from softmaint_interfaces.srv import AcknowledgeAssistance
        from std_msgs.msg import Float32
        from std_srvs.srv import Trigger
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.node = Node('agent_test_operator', context=context)
        self.publisher = self.node.create_publisher(MaintenancePrediction, topics.PREDICTION,
                                                    100)
        self.decisions, self.workloads, self.diagnostics, self.estop_calls = [], [], [], []
        self.statuses = []          # the agent's DiagnosticStatus messages, as received
        self.decision_sub = self.node.create_subscription(
            MaintenanceDecision, topics.DECISION, self.decisions.append, latched)
        self.node.create_subscription(Float32, topics.WORKLOAD_LIMIT,
                                      lambda msg: self.workloads.append(msg.data), latched)
        self.node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS,
                                      self._on_diagnostics, 10)
        self.node.create_service(Trigger, 'test_estop', self._on_estop)
        self.acknowledge = self.node.create_client(AcknowledgeAssistance, topics.ACKNOWLEDGE)
        self.inspect = ActionClient(self.node, Inspect, topics.INSPECT)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.stamp = 0

    def _on_diagnostics(self, msg):
        for status in msg.status:
            if status.name == 'softmaint_agent: policy':
                self.statuses.append(status)
                self.diagnostics.append({'hardware_id': status.hardware_id,
                                         **{v.key: v.value for v in status.values}})

    def _on_estop(self, request, response):
        self.estop_calls.append(request)
        response.success, response.message = True, 'arm stopped'
        return response

    def wait_for_agent(self):
        assert spin_until(self.executor, lambda: self.publisher.get_subscription_count() > 0,
                          20.0), 'the agent did not subscribe to predictions'
        assert self.acknowledge.wait_for_service(timeout_sec=20.0)

    def spin_until(self, condition, timeout=10.0):
        return spin_until(self.executor, condition, timeout)

    def send(self, **fields):
        """Publish one prediction; return the decision that used it."""
        self.stamp += 1
        stamp = self.stamp
        self.publisher.publish(prediction(stamp, **fields))
        assert self.spin_until(lambda: self.decisions
                               and self.decisions[-1].prediction_stamp.sec == stamp), \
            f'no decision for prediction {stamp}'
        return self.decisions[-1]

    def actions(self, windows):
        return [self.send(**w).action_name for w in windows]

    def call(self, client, request, timeout=10.0):
        future = client.call_async(request)
        assert self.spin_until(future.done, timeout), 'service call timed out'
        return future.result()

    @staticmethod
    def acknowledgement(request_id, action, operator='ada', **fields):
        """Return an AcknowledgeAssistance request; `fields` override labels or the note."""
        from softmaint_interfaces.srv import AcknowledgeAssistance
        request = AcknowledgeAssistance.Request(request_id=request_id, operator_name=operator,
                                                action=action, note='looked at it',
                                                fatigue_label=-1, damage_label=-1,
                                                urgency_label=math.nan)
        for key, value in fields.items():
            setattr(request, key, value)
        return request

    def answer(self, request_id, action, operator='ada', **fields):
        return self.call(self.acknowledge, self.acknowledgement(request_id, action, operator,
                                                                **fields))

    def diagnostic(self, condition):
        assert self.spin_until(lambda: any(condition(d) for d in self.diagnostics)), \
            f'no such diagnostics; last: {self.diagnostics[-1:]}'
        return [d for d in self.diagnostics if condition(d)][-1]

    def close(self):
        self.inspect.destroy()
        self.node.destroy_node()
