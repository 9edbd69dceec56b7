"""QoS profiles that publishers and their subscribers must agree on."""
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

# The latest message stays with the topic: a late subscriber (the operator's console, the
# monitor, the live view) gets the current decision or request at once.
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
