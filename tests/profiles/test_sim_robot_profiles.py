"""The sim robot as a real process on a profile scenario: what another process receives."""
import math

import numpy as np
import pytest
from ros_helpers import spin_until


@pytest.mark.slow
@pytest.mark.parametrize('name, unsensed', [('medical', ['co2']),
                                            ('deep_sea', ['humidity', 'co2'])])
def test_unsensed_quantities_arrive_as_nan(name, unsensed, ros_context, spawn):
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    from softmaint_core import topics
    from softmaint_core.image import image_msg_to_rgb
    from softmaint_core.spec import ENVIRONMENT_FIELDS
    from softmaint_interfaces.msg import EnvironmentReading
    spawn(['-m', 'softmaint_sim.sim_robot', '--ros-args', '-p', f'scenario:={name}',
           '-p', 'rate_factor:=2.0', '-p', 'duration:=20.0'])
    node = Node('profile_listener', context=ros_context)
    readings, frames = [], []
    node.create_subscription(EnvironmentReading, topics.ENVIRONMENT, readings.append,
                             qos_profile_sensor_data)
    node.create_subscription(Image, topics.CAMERA, frames.append, qos_profile_sensor_data)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    assert spin_until(executor, lambda: len(readings) >= 2 and len(frames) >= 3, 30.0)
    for msg in readings:
        nan = [q for q in ENVIRONMENT_FIELDS if math.isnan(getattr(msg, q))]
        assert nan == unsensed
    if name == 'deep_sea':        # 300 bar, and a dark, blue-green turbid picture
        assert all(25000.0 < msg.pressure < 40000.0 for msg in readings)
        mean = np.mean([image_msg_to_rgb(f).reshape(-1, 3).mean(axis=0) for f in frames], 0)
        assert mean.max() < 0.3 and mean[2] > mean[0]
