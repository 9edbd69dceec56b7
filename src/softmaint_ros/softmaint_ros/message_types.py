"""ROS 2 message classes from their type names, as bags and topic tables store them."""
import importlib


def message_class(msgtype: str):
    """Return the Python class of a ROS 2 type name like 'sensor_msgs/msg/Image', or None."""
    package, kind, name = msgtype.split('/')
    try:
        return getattr(importlib.import_module(f'{package}.{kind}'), name)
    except (ImportError, AttributeError):
        return None
