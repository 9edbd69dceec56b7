"""
Launch the softmaint suite on a ROS 2 distro: ros2 launch softmaint bringup.launch.py.

    ros2 launch softmaint bringup.launch.py use_sim:=true scenario:=default
    ros2 launch softmaint bringup.launch.py namespace:=arm_1 model:=/models/student.onnx
    ros2 launch softmaint bringup.launch.py use_sim:=true foxglove:=true foxglove_port:=8765

The nodes and their parameters come from softmaint.bringup.plan(), the same description that
`softmaint-bringup` runs where the launch system is missing, so both start the same suite.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from softmaint.bringup import arguments, params_files, plan


def _nodes(context):
    args = {name: LaunchConfiguration(name).perform(context) for name in arguments()}
    files = params_files(args)
    return [
        Node(package=node.package, executable=node.executable, name=node.name,
             namespace=args['namespace'], output='screen',
             parameters=[*files, node.parameters],
             arguments=['--ros-args', '--log-level', args['log_level']],
             on_exit=Shutdown() if node.ends_run else None)
        for node in plan(args)
    ]


def generate_launch_description():
    """Declare every bringup argument, then start the planned nodes."""
    declared = [DeclareLaunchArgument(name, default_value=default, description=text)
                for name, (default, text) in arguments().items()]
    return LaunchDescription(declared + [OpaqueFunction(function=_nodes)])
