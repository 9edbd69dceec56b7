"""
Live view payloads: the suite's messages as Foxglove channel payloads, ROS-free.

The JSON records mirror their ROS message's field names and nesting, with times as {sec, nsec}
like Foxglove's own ROS 2 decoding, and their schemas carry the ROS type's name: one layout
(config/foxglove/softmaint_layout.json) then reads `/softmaint/prediction.urgency` or
`/diagnostics` the same from the pip path's live view and from foxglove_bridge on a distro, and
Foxglove panels made for a ROS type (Diagnostics) accept the record. Each record is built from
a field table that also gives its JSON schema, so the two cannot drift apart.

Messages are read by duck typing, like softmaint_core.messages reads sensors.
"""
from dataclasses import dataclass
import math
from typing import Callable, Dict, Optional

import numpy as np

from . import topics
from .image import array_to_image, check_layout, image_to_array
from .messages import read_tactile

# Foxglove channel of the assistance requests (no ROS topic: they are decisions that ask).
ASSISTANCE = 'softmaint/assistance_request'
# Suffix of the tactile heat map's channel after the tactile topic: an image, not a TactileArray.
HEATMAP = '/heatmap'

# Field kinds of the tables below; a dict is a nested message, a one-element list an array.
TIME = 'time'
_SCHEMAS = {
    TIME: {'type': 'object', 'properties': {'sec': {'type': 'integer'},
                                            'nsec': {'type': 'integer'}}},
    'integer': {'type': 'integer'},
    'number': {'type': ['number', 'null']},   # null: NaN and inf are not JSON
    'string': {'type': 'string'},
}
HEADER = {'stamp': TIME, 'frame_id': 'string'}
KEY_VALUES = [{'key': 'string', 'value': 'string'}]


def _value(kind, value):
    if isinstance(kind, dict):
        return {name: _value(sub, getattr(value, name)) for name, sub in kind.items()}
    if isinstance(kind, list):
        return [_value(kind[0], item) for item in value]
    if kind == TIME:
        return {'sec': int(value.sec), 'nsec': int(value.nanosec)}
    if kind == 'integer':   # rclpy gives `byte` fields (DiagnosticStatus.level) as 1-byte bytes
        return value[0] if isinstance(value, bytes) else int(value)
    if kind == 'number':
        return float(value) if math.isfinite(value) else None
    return str(value)


def _schema(kind) -> dict:
    if isinstance(kind, dict):
        return {'type': 'object', 'properties': {name: _schema(sub) for name, sub in kind.items()}}
    if isinstance(kind, list):
        return {'type': 'array', 'items': _schema(kind[0])}
    return _SCHEMAS[kind]


@dataclass(frozen=True)
class JsonStream:
    """A JSON channel: its schema's name and the message fields its records carry."""

    title: str
    fields: dict

    def schema(self) -> dict:
        """JSON schema of the records, named `title`."""
        return {'title': self.title, **_schema(self.fields)}

    def record(self, msg) -> dict:
        """Return the fields of `msg` as JSON values."""
        return _value(self.fields, msg)


PREDICTION = JsonStream('softmaint_interfaces/msg/MaintenancePrediction', {
    'header': HEADER, 'window_sequence': 'integer',
    'fatigue_classes': ['string'], 'fatigue_probs': ['number'], 'fatigue_set': ['integer'],
    'damage_classes': ['string'], 'damage_probs': ['number'], 'damage_set': ['integer'],
    'conformal_coverage': 'number', 'urgency': 'number', 'urgency_std': 'number',
    'fatigue_entropy': 'number', 'damage_entropy': 'number',
    'fatigue_disagreement': 'number', 'damage_disagreement': 'number',
    'uncertainty': 'number', 'input_modalities': ['string'],
    # the reconstructions' embeddings are left out: model-space vectors mean nothing on screen
    'reconstructed': [{'name': 'string', 'confidence': 'number'}],
    'model_id': 'string', 'inference_ms': 'number', 'latency_ms': 'number'})
DECISION = JsonStream('softmaint_interfaces/msg/MaintenanceDecision', {
    'header': HEADER, 'action': 'integer', 'action_name': 'string', 'priority': 'integer',
    'reason': 'string', 'evidence': KEY_VALUES, 'workload_limit': 'number',
    'request_id': 'string', 'prediction_stamp': TIME, 'model_id': 'string'})
ASSISTANCE_REQUEST = JsonStream('softmaint/AssistanceRequest', {
    name: DECISION.fields[name]
    for name in ('header', 'request_id', 'priority', 'reason', 'evidence', 'model_id')})
DIAGNOSTICS = JsonStream('diagnostic_msgs/msg/DiagnosticArray', {
    'header': HEADER, 'status': [{'level': 'integer', 'name': 'string', 'message': 'string',
                                  'hardware_id': 'string', 'values': KEY_VALUES}]})


def assistance_request(decision) -> Optional[dict]:
    """Record of a decision that asks a human (it carries a request id), else None."""
    return ASSISTANCE_REQUEST.record(decision) if decision.request_id else None


def channel_topics(resolve: Callable[[str], str] = lambda name: '/' + name.lstrip('/')
                   ) -> Dict[str, str]:
    """Foxglove channel of each stream: its ROS topic's name as `resolve` expands it."""
    return {'camera': resolve(topics.CAMERA),
            'tactile': resolve(topics.TACTILE) + HEATMAP,
            'prediction': resolve(topics.PREDICTION),
            'decision': resolve(topics.DECISION),
            'assistance': resolve(ASSISTANCE),
            'diagnostics': resolve(topics.DIAGNOSTICS)}


def raw_image(msg) -> dict:
    """
    Return the fields of a foxglove RawImage (all but timestamp and frame) for an Image.

    RawImage has no byte order and means little-endian, so big-endian images are converted.
    Raises image.ImageError for an encoding softmaint does not accept or a bad layout.
    """
    check_layout(msg.encoding, msg.height, msg.width, msg.step, len(msg.data))
    step, data = msg.step, bytes(msg.data)
    if msg.is_bigendian:
        step, data = array_to_image(image_to_array(msg.encoding, msg.height, msg.width, msg.step,
                                                   True, msg.data), msg.encoding)
    return {'width': msg.width, 'height': msg.height, 'encoding': msg.encoding, 'step': step,
            'data': data}


# Heat map colours from no force to saturation (black, red, yellow, white); dead taxels are
# blue, a colour no force takes.
HEAT_RAMP = np.array([[0, 0, 0], [200, 0, 0], [255, 200, 0], [255, 255, 255]], np.float64)
DEAD_TAXEL = (60, 90, 200)


def tactile_heatmap(msg, cell: int) -> dict:
    """
    Return the fields of a foxglove RawImage showing a TactileArray as an rgb8 heat map.

    Each taxel is a `cell` x `cell` block, taxel (r, c) at block row r, column c. Force is
    scaled by the sensor's range_max (by the frame's largest reading when it has none). Raises
    window.InputError for an array whose data does not fill its grid.
    """
    force = read_tactile(msg, msg.rows * msg.cols).reshape(msg.rows, msg.cols)
    dead = np.isnan(force)
    scale = msg.range_max if msg.range_max > 0 else np.nanmax(np.append(force, 1e-9))
    level = np.clip(np.where(dead, 0.0, force) / scale, 0.0, 1.0)
    stops = np.linspace(0.0, 1.0, len(HEAT_RAMP))
    rgb = np.stack([np.interp(level, stops, HEAT_RAMP[:, c]) for c in range(3)], axis=-1)
    rgb[dead] = DEAD_TAXEL
    pixels = np.repeat(np.repeat(rgb.round().astype(np.uint8), cell, axis=0), cell, axis=1)
    return {'width': pixels.shape[1], 'height': pixels.shape[0], 'encoding': 'rgb8',
            'step': pixels.shape[1] * 3, 'data': pixels.tobytes()}
