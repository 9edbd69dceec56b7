"""Deterministic, fully populated instances of every softmaint message, for round-trip tests."""
import importlib
import math

MESSAGES = ('TactileArray', 'ActuatorState', 'EnvironmentReading', 'ModalityTensor',
            'SensorWindow', 'ReconstructedModality', 'MaintenancePrediction',
            'MaintenanceDecision', 'GroundTruth', 'AssistanceRequest', 'MaintenanceLogEntry')

_NUMBERS = {'float': 0.25, 'double': 0.125, 'boolean': True, 'octet': 7, 'char': 9}


def message_class(name: str):
    """Return softmaint_interfaces.msg.<name>."""
    return getattr(importlib.import_module('softmaint_interfaces.msg'), name)


def _scalar(slot, seed: int):
    typename = getattr(slot, 'typename', 'string')  # (Un)BoundedString has no typename
    if typename == 'string':
        return f'value-{seed}-ü'
    if typename in _NUMBERS:
        value = _NUMBERS[typename]
        return value if isinstance(value, bool) else value + seed
    if 'int' in typename:
        return (seed * 37) % (100 if typename.startswith('u') else 50)
    raise ValueError(typename)


def fill(msg, seed: int = 1):
    """Set every field of `msg` (recursively) to a distinct, non-default value."""
    for index, (field, slot) in enumerate(zip(msg.get_fields_and_field_types(),
                                              msg.SLOT_TYPES)):
        value_seed = seed * 10 + index
        element = getattr(slot, 'value_type', None)
        if element is not None:  # sequence or array
            count = getattr(slot, 'size', None) or getattr(slot, 'maximum_size', None) or 3
            if hasattr(element, 'namespaces'):
                items = [fill(_instance(element), value_seed + k) for k in range(count)]
            else:
                items = [_scalar(element, value_seed + k) for k in range(count)]
            setattr(msg, field, items)
        elif hasattr(slot, 'namespaces'):
            fill(getattr(msg, field), value_seed)
        else:
            setattr(msg, field, _scalar(slot, value_seed))
    return msg


def _instance(namespaced_type):
    module = importlib.import_module('.'.join(namespaced_type.namespaces))
    return getattr(module, namespaced_type.name)()


def sample(name: str, seed: int = 1):
    """A filled instance of softmaint_interfaces.msg.<name>."""
    msg = fill(message_class(name)(), seed)
    if hasattr(msg, 'header'):
        msg.header.stamp.nanosec = 123456789
    return msg


def differences(a, b, prefix=''):
    """List the field paths where two messages differ (floats compared as float32)."""
    found = []
    for field in a.get_fields_and_field_types():
        x, y = getattr(a, field), getattr(b, field)
        path = f'{prefix}{field}'
        if hasattr(x, 'get_fields_and_field_types'):
            found += differences(x, y, path + '.')
        elif isinstance(x, (list, tuple)) or hasattr(x, 'tolist'):
            x, y = list(x), list(y)
            if len(x) != len(y):
                found.append(f'{path}: length {len(x)} != {len(y)}')
            for k, (u, v) in enumerate(zip(x, y)):
                if hasattr(u, 'get_fields_and_field_types'):
                    found += differences(u, v, f'{path}[{k}].')
                elif not _same(u, v):
                    found.append(f'{path}[{k}]: {u!r} != {v!r}')
        elif not _same(x, y):
            found.append(f'{path}: {x!r} != {y!r}')
    return found


def _same(u, v):
    if isinstance(u, float) or isinstance(v, float):
        return math.isclose(float(u), float(v), rel_tol=1e-6)
    return u == v
