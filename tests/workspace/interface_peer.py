"""A separate process for the interface round-trip tests.

    python interface_peer.py publish   publishes sample messages of every type until killed
    python interface_peer.py inspect   serves softmaint/inspect: accepts every goal, sends one
                                       feedback per 50 ms until min_windows, then a fixed result
"""
import sys
import time

import rclpy
from rclpy.action import ActionServer
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from softmaint_interfaces.action import Inspect
from softmaint_interfaces.msg import MaintenanceDecision

import interface_samples


class SamplePublisher(Node):
    """Publishes one sample of each message type on topic samples/<Type> at 20 Hz."""

    def __init__(self):
        super().__init__('interface_sample_publisher')
        self._publishers = [
            (self.create_publisher(interface_samples.message_class(name), f'samples/{name}',
                                   10), interface_samples.sample(name))
            for name in interface_samples.MESSAGES]
        self.create_timer(0.05, self._publish)

    def _publish(self):
        for publisher, msg in self._publishers:
            publisher.publish(msg)


class InspectServer(Node):
    """Minimal softmaint/inspect server used to check the action's types across processes."""

    def __init__(self):
        super().__init__('interface_inspect_server')
        self._server = ActionServer(self, Inspect, 'softmaint/inspect', self._execute,
                                    callback_group=ReentrantCallbackGroup())

    def _execute(self, goal_handle):
        feedback = Inspect.Feedback()
        start = time.monotonic()
        for seen in range(1, goal_handle.request.min_windows + 1):
            feedback.windows_seen = seen
            feedback.running_urgency = 0.1 * seen
            feedback.elapsed = time.monotonic() - start
            goal_handle.publish_feedback(feedback)
            time.sleep(0.05)  # stands in for waiting on the next prediction
        goal_handle.succeed()
        result = Inspect.Result(windows_seen=goal_handle.request.min_windows,
                                summary='inspection done')
        result.decision.action = MaintenanceDecision.SCHEDULE_MAINTENANCE
        result.decision.action_name = 'schedule_maintenance'
        result.fatigue_probs = [0.2, 0.3, 0.5]
        return result


def main():
    rclpy.init()
    node = SamplePublisher() if sys.argv[1] == 'publish' else InspectServer()
    executor = MultiThreadedExecutor()
    executor.add_node(node)
    print('ready', flush=True)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
