"""Every softmaint interface crosses a process boundary intact (real rclpy, Fast DDS)."""
from pathlib import Path

import pytest
from ros_helpers import spin_until
from workspace import interface_samples

HERE = Path(__file__).resolve().parent


def test_every_message_round_trips_between_processes(ros_context, spawn):
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node

    spawn([str(HERE / 'interface_peer.py'), 'publish'], cwd=HERE, wait_for_line='ready')
    node = Node('interface_receiver', context=ros_context)
    received = {}
    for name in interface_samples.MESSAGES:
        node.create_subscription(interface_samples.message_class(name), f'samples/{name}',
                                 lambda msg, name=name: received.setdefault(name, msg), 10)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    try:
        assert spin_until(executor, lambda: len(received) == len(interface_samples.MESSAGES),
                          timeout=20.0), \
            f'missing: {set(interface_samples.MESSAGES) - set(received)}'
    finally:
        node.destroy_node()
    for name, msg in received.items():
        expected = interface_samples.sample(name)
        assert interface_samples.differences(expected, msg) == [], name


def test_samples_are_not_defaults():
    """Guards the round-trip test: a sample equal to a default message would prove nothing."""
    for name in interface_samples.MESSAGES:
        default = interface_samples.message_class(name)()
        assert interface_samples.differences(default, interface_samples.sample(name)), name


def test_inspect_action_goal_feedback_and_result_cross_processes(ros_context, spawn):
    # only the types and the status: the real agent's rules (rejected goals, cancel) are
    # tested in tests/nodes/test_agent_node.py
    from action_msgs.msg import GoalStatus
    from rclpy.action import ActionClient
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from softmaint_interfaces.action import Inspect

    spawn([str(HERE / 'interface_peer.py'), 'inspect'], cwd=HERE, wait_for_line='ready')
    node = Node('inspect_client', context=ros_context)
    client = ActionClient(node, Inspect, 'softmaint/inspect')
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)

    try:
        assert client.wait_for_server(timeout_sec=20.0)
        feedback = []
        future = client.send_goal_async(Inspect.Goal(duration=1.0, min_windows=4),
                                        feedback_callback=feedback.append)
        assert spin_until(executor, future.done, 10.0), 'goal response timed out'
        handle = future.result()
        assert handle.accepted
        result_future = handle.get_result_async()
        assert spin_until(executor, result_future.done, 10.0)
        response = result_future.result()
        assert response.status == GoalStatus.STATUS_SUCCEEDED
        assert response.result.windows_seen == 4
        assert response.result.decision.action_name == 'schedule_maintenance'
        assert list(response.result.fatigue_probs) == pytest.approx([0.2, 0.3, 0.5])
        assert [f.feedback.windows_seen for f in feedback] == [1, 2, 3, 4]
    finally:
        client.destroy()
        node.destroy_node()
