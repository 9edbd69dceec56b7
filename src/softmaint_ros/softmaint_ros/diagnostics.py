"""What every node's /diagnostics status shares: its period, the robot it names, its values."""
from typing import List

from diagnostic_msgs.msg import KeyValue
from rclpy.node import Node

from .parameters import descriptor


def declare_diagnostics_parameters(node: Node) -> None:
    """Declare `diagnostics_period` and `hardware_id` on `node`, alike on every node."""
    node.declare_parameter('diagnostics_period', 1.0, descriptor(
        'period of the /diagnostics status [s]', read_only=True, floats=(0.05, 60.0)))
    node.declare_parameter('hardware_id', '', descriptor(
        'hardware_id of the diagnostics: the robot, as several robots share /diagnostics '
        '(default: the node namespace)'))


def hardware_id(node: Node) -> str:
    """Return the robot a node's diagnostics name: its hardware_id, else its namespace."""
    return node.get_parameter('hardware_id').value or node.get_namespace()


def key_values(mapping: dict) -> List[KeyValue]:
    """Return diagnostic_msgs/KeyValue pairs of a mapping, values as text."""
    return [KeyValue(key=str(key), value=str(value)) for key, value in mapping.items()]
