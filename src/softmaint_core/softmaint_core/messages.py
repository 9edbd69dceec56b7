"""
Message adapters: sensor messages -> the numpy values WindowAssembler.push takes.

They read message-like objects (rclpy messages in the ingestion node, rosbags-decoded ones in
offline bag evaluation) by duck typing, so both read every sensor the same way and the
assembler itself (window.py) sees only stamps and arrays. A message that cannot be read raises
window.InputError with the reason the assembler counts.
"""
import functools
from typing import Sequence

import numpy as np

from .image import image_msg_to_rgb, ImageError
from .spec import ENVIRONMENT_FIELDS
from .window import InputError, WindowAssembler


def stamp_seconds(stamp) -> float:
    """Seconds of a builtin_interfaces/Time."""
    return stamp.sec + stamp.nanosec * 1e-9


def read_tactile(msg, taxels: int) -> np.ndarray:
    """Taxel readings [taxels] of a TactileArray (NaN = dead taxel, kept for push to judge)."""
    data = np.asarray(msg.data, dtype=np.float32)
    if data.size == 0:
        raise InputError('empty', 'tactile array without data')
    if data.size != msg.rows * msg.cols:
        raise InputError('shape', f'{data.size} readings for a {msg.rows}x{msg.cols} grid')
    if data.size != taxels:
        raise InputError('shape', f'{msg.rows}x{msg.cols} taxels, the model needs {taxels}')
    return data


def _by_name(names, values, wanted: Sequence[str], what: str) -> np.ndarray:
    names = list(names)
    if len(values) != len(names):
        raise InputError('shape', f'{len(values)} {what} values for {len(names)} names')
    missing = [n for n in wanted if n not in names]
    if missing:
        raise InputError('missing_name', f'{what} lacks {missing} (has {names})')
    return np.asarray([values[names.index(n)] for n in wanted], dtype=np.float32)


def read_joints(msg, joints: Sequence[str]) -> np.ndarray:
    """Bend angles [rad] of a JointState, picked by name in `joints` order."""
    if not len(msg.name):
        raise InputError('empty', 'joint state without names')
    return _by_name(msg.name, msg.position, joints, 'position')


def read_actuation(msg, actuators: Sequence[str]) -> np.ndarray:
    """Commands then achieved actuation of an ActuatorState, picked by name."""
    if not len(msg.name):
        raise InputError('empty', 'actuator state without names')
    return np.concatenate([_by_name(msg.name, msg.command, actuators, 'command'),
                           _by_name(msg.name, msg.achieved, actuators, 'achieved')])


def read_environment(msg) -> np.ndarray:
    """Environment reading in ENVIRONMENT_FIELDS order (NaN = not sensed, kept for push)."""
    return np.asarray([getattr(msg, name) for name in ENVIRONMENT_FIELDS], dtype=np.float32)


def read_image(msg, decode=image_msg_to_rgb) -> np.ndarray:
    """Float RGB [h, w, 3] of a sensor_msgs/Image through `decode`; errors become InputError."""
    try:
        return decode(msg)
    except ImageError as err:
        raise InputError(err.reason, str(err)) from err


def message_readers(assembler: WindowAssembler, joint_names: Sequence[str],
                    actuator_names: Sequence[str], decode_image=image_msg_to_rgb):
    """
    Return source -> function(message) -> values for WindowAssembler.push.

    One mapping for the ingestion node (rclpy messages, cv_bridge when it matches) and offline
    bag evaluation (rosbags messages), so both read every sensor the same way.
    """
    taxels = assembler.spec.modality('tactile').features[0] \
        if 'tactile' in assembler.spec.names else 0
    readers = {'camera': functools.partial(read_image, decode=decode_image),
               'tactile': functools.partial(read_tactile, taxels=taxels),
               'joint_states': functools.partial(read_joints, joints=tuple(joint_names)),
               'actuation': functools.partial(read_actuation, actuators=tuple(actuator_names)),
               'environment': read_environment}
    return {source.name: readers[source.name] for source in assembler.sources}
