"""
Message adapters: sensor messages -> the numpy values WindowAssembler.push takes.

They read message-like objects (rclpy messages in the ingestion node, rosbags-decoded ones in
offline bag evaluation) by duck typing, so both read every sensor the same way and the
assembler itself (window.py) sees only stamps and arrays. A message that cannot be read raises
window.InputError with the reason the assembler counts; push_message is the one way both hand a
message to the assembler.
"""
import functools
from typing import Callable, Dict, Optional, Sequence

import numpy as np

from .image import image_msg_to_rgb, ImageError
from .spec import ENVIRONMENT_FIELDS
from .window import InputError, WindowAssembler

# Most names or readings one message may carry: a robot has tens of joints, not thousands.
MAX_ELEMENTS = 4096
# Units of the readings the models were trained on ('' = not stated, taken as these).
TACTILE_UNITS = 'N'
ACTUATION_UNITS = 'kPa'


def stamp_seconds(stamp) -> float:
    """Seconds of a builtin_interfaces/Time."""
    return stamp.sec + stamp.nanosec * 1e-9


def stamp_error(stamp) -> Optional[str]:
    """Return why a builtin_interfaces/Time cannot be a sample's time, or None."""
    if not 0 <= stamp.nanosec < 1_000_000_000:
        return f'nanosec {stamp.nanosec} is not in [0, 1e9)'
    if stamp.sec < 0:
        return f'sec {stamp.sec} is negative'
    if stamp.sec == 0 and stamp.nanosec == 0:
        return 'the stamp is zero: the header was never filled in'
    return None


def header_stamp(header) -> float:
    """Seconds of a std_msgs/Header's stamp; InputError('bad_stamp') when it is not a time."""
    error = stamp_error(header.stamp)
    if error is not None:
        raise InputError('bad_stamp', error)
    return stamp_seconds(header.stamp)


def _check_units(msg, expected: str) -> None:
    units = getattr(msg, 'units', '')
    if units not in ('', expected):
        raise InputError('units', f'readings in {units[:40]!r}, the model takes {expected!r}')


def read_tactile(msg, taxels: int) -> np.ndarray:
    """
    Taxel readings [taxels] of a TactileArray (NaN = dead taxel, kept for push to judge).

    More than MAX_ELEMENTS readings are refused before they are converted (a live view's heat
    map grows with every taxel).
    """
    if len(msg.data) > MAX_ELEMENTS:
        raise InputError('too_large', f'{len(msg.data)} readings (at most {MAX_ELEMENTS})')
    data = np.asarray(msg.data, dtype=np.float32)
    if data.size == 0:
        raise InputError('empty', 'tactile array without data')
    if data.size != msg.rows * msg.cols:
        raise InputError('shape', f'{data.size} readings for a {msg.rows}x{msg.cols} grid')
    if data.size != taxels:
        raise InputError('shape', f'{msg.rows}x{msg.cols} taxels, the model needs {taxels}')
    return data


def read_tactile_for_model(msg, taxels: int) -> np.ndarray:
    """
    Return read_tactile's readings if the model may take them (a live view draws them anyway).

    Also refuses units other than the model's, and a reading above the sensor's own saturation
    value range_max (when it states one).
    """
    _check_units(msg, TACTILE_UNITS)
    data = read_tactile(msg, taxels)
    range_max = getattr(msg, 'range_max', 0.0)
    beyond = np.isfinite(data) & (data > range_max)      # inf and NaN: push judges them
    if 0.0 < range_max < np.inf and beyond.any():
        raise InputError('out_of_range', f'a reading of {data[beyond].max():.3g} beyond the '
                         f'saturation range_max {range_max:.3g}')
    return data


def _by_name(names, values, wanted: Sequence[str], what: str) -> np.ndarray:
    names = list(names)
    if len(names) > MAX_ELEMENTS:
        raise InputError('too_large', f'{len(names)} names (at most {MAX_ELEMENTS})')
    if len(values) != len(names):
        raise InputError('shape', f'{len(values)} {what} values for {len(names)} names')
    missing = [n for n in wanted if n not in names]
    if len(missing) == len(wanted):
        raise InputError('other_device', f'{what} names none of {list(wanted)} (has '
                         f'{names[:8]}): a message of another device')
    if missing:
        raise InputError('missing_name', f'{what} lacks {missing} (has {names})')
    repeated = [n for n in wanted if names.count(n) > 1]
    if repeated:
        raise InputError('duplicate_name', f'{what} names {repeated} more than once')
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
    _check_units(msg, ACTUATION_UNITS)
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
               'tactile': functools.partial(read_tactile_for_model, taxels=taxels),
               'joint_states': functools.partial(read_joints, joints=tuple(joint_names)),
               'actuation': functools.partial(read_actuation, actuators=tuple(actuator_names)),
               'environment': read_environment}
    return {source.name: readers[source.name] for source in assembler.sources}


def push_message(assembler: WindowAssembler, readers: Dict[str, Callable], source: str, msg,
                 now: float) -> Optional[InputError]:
    """
    Check and store one message of `source` received at `now`; rejects are counted.

    Returns None when it was accepted, else the InputError (header first, then the values).
    """
    try:
        stamp = header_stamp(msg.header)
        values = readers[source](msg)
    except InputError as err:
        return assembler.reject(source, err, now)
    return assembler.push(source, stamp, values, now, msg.header.frame_id)
