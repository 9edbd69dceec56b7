"""Live view payloads: heat map pixels, camera byte order, JSON records and their schemas."""
import json
from types import SimpleNamespace as Msg

import numpy as np
import pytest
from softmaint_core import live_view
from softmaint_core.image import array_to_image, ImageError
from softmaint_core.window import InputError


def conforms(value, schema) -> bool:
    """Whether a JSON value has the types and exactly the properties `schema` names."""
    kinds = schema['type'] if isinstance(schema['type'], list) else [schema['type']]
    if value is None:
        return 'null' in kinds
    if 'object' in kinds:
        return (isinstance(value, dict) and set(value) == set(schema['properties'])
                and all(conforms(value[k], s) for k, s in schema['properties'].items()))
    if 'array' in kinds:
        return isinstance(value, list) and all(conforms(v, schema['items']) for v in value)
    python = {'integer': int, 'number': (int, float), 'string': str}
    return any(isinstance(value, python[kind]) and not isinstance(value, bool)
               for kind in kinds)


def _time(sec, nanosec):
    return Msg(sec=sec, nanosec=nanosec)


def _header(sec=12, nanosec=500):
    return Msg(stamp=_time(sec, nanosec), frame_id='base_link')


def _tactile(data, rows, cols, range_max=4.0):
    return Msg(rows=rows, cols=cols, range_max=range_max, data=data)


def _blocks(image: dict, cell: int) -> np.ndarray:
    """Per-taxel colours [rows, cols, 3] of a heat map, checking every block is uniform."""
    pixels = np.frombuffer(image['data'], np.uint8).reshape(image['height'], image['width'], 3)
    corners = pixels[::cell, ::cell]
    assert np.array_equal(pixels, np.repeat(np.repeat(corners, cell, 0), cell, 1))
    return corners


def test_heatmap_scales_by_range_max_clips_and_marks_dead_taxels():
    cell = 3
    image = live_view.tactile_heatmap(_tactile([0.0, 2.0, 9.0, float('nan')], 2, 2), cell)
    assert (image['width'], image['height'], image['step']) == (6, 6, 18)
    assert image['encoding'] == 'rgb8' and len(image['data']) == 6 * 18
    colours = _blocks(image, cell)
    assert colours[0, 0].tolist() == [0, 0, 0]            # no force
    # half of range_max: half way along the ramp, between red (1/3) and yellow (2/3)
    assert colours[0, 1].tolist() == [228, 100, 0]
    assert colours[1, 0].tolist() == [255, 255, 255]      # above range_max: saturated
    assert colours[1, 1].tolist() == list(live_view.DEAD_TAXEL)


def test_heatmap_rows_run_down_the_image():
    image = live_view.tactile_heatmap(_tactile([0.0, 0.0, 0.0, 4.0], 4, 1), 2)
    assert (image['width'], image['height']) == (2, 8)
    assert _blocks(image, 2)[:, 0].tolist() == [[0, 0, 0]] * 3 + [[255, 255, 255]]


def test_heatmap_without_range_max_scales_by_the_largest_reading():
    image = live_view.tactile_heatmap(_tactile([1.0, 2.0], 1, 2, range_max=0.0), 1)
    assert _blocks(image, 1)[0].tolist() == [[228, 100, 0], [255, 255, 255]]


def test_heatmap_of_a_grid_its_data_do_not_fill_is_refused():
    with pytest.raises(InputError, match='3 readings for a 2x2 grid') as err:
        live_view.tactile_heatmap(_tactile([1.0, 2.0, 3.0], 2, 2), 4)
    assert err.value.reason == 'shape'


def test_heatmap_of_more_taxels_than_a_sensor_has_is_refused():
    """Its image grows by cell**2 pixels per taxel: 80 kB of readings made 35 MB."""
    with pytest.raises(InputError) as err:
        live_view.tactile_heatmap(_tactile([1.0] * 5000, 1, 5000), 24)
    assert err.value.reason == 'too_large'


def _image(pixels, encoding, bigendian, padding=0):
    step, data = array_to_image(pixels, encoding, bigendian, padding)
    return Msg(encoding=encoding, height=pixels.shape[0], width=pixels.shape[1], step=step,
               is_bigendian=int(bigendian), data=data)


def test_little_endian_images_pass_through_with_their_padding():
    pixels = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    msg = _image(pixels, 'rgb8', False, padding=2)
    assert live_view.raw_image(msg) == {'width': 3, 'height': 2, 'encoding': 'rgb8',
                                        'step': 11, 'data': msg.data}


def test_big_endian_images_become_little_endian():
    pixels = np.array([[[1], [258]], [[65535], [4096]]], np.uint16)
    fields = live_view.raw_image(_image(pixels, 'mono16', True, padding=3))
    assert fields['step'] == 4
    assert np.array_equal(np.frombuffer(fields['data'], '<u2').reshape(2, 2, 1), pixels)


@pytest.mark.parametrize('encoding, size', [('yuv422', 12), ('rgb8', 5)])
def test_images_softmaint_cannot_read_are_refused(encoding, size):
    with pytest.raises(ImageError):
        live_view.raw_image(Msg(encoding=encoding, height=2, width=2, step=6,
                                is_bigendian=0, data=bytes(size)))


def _decision(request_id=''):
    return Msg(header=_header(), action=4, action_name='request_assistance', priority=2,
               reason='the damage set holds 2 classes', workload_limit=0.5,
               evidence=[Msg(key='urgency', value='0.410')], request_id=request_id,
               prediction_stamp=_time(11, 999_000_000), model_id='student-x')


def test_records_mirror_the_message_with_times_as_sec_nsec():
    record = live_view.DECISION.record(_decision('req-1'))
    assert record == {
        'header': {'stamp': {'sec': 12, 'nsec': 500}, 'frame_id': 'base_link'},
        'action': 4, 'action_name': 'request_assistance', 'priority': 2,
        'reason': 'the damage set holds 2 classes',
        'evidence': [{'key': 'urgency', 'value': '0.410'}], 'workload_limit': 0.5,
        'request_id': 'req-1', 'prediction_stamp': {'sec': 11, 'nsec': 999_000_000},
        'model_id': 'student-x'}
    assert conforms(record, live_view.DECISION.schema())


def test_assistance_requests_are_the_decisions_that_ask():
    assert live_view.assistance_request(_decision('')) is None
    request = live_view.assistance_request(_decision('req-7'))
    assert set(request) == {'header', 'request_id', 'priority', 'reason', 'evidence', 'model_id'}
    assert request['request_id'] == 'req-7'
    assert conforms(request, live_view.ASSISTANCE_REQUEST.schema())


def test_non_finite_numbers_become_null_so_the_record_stays_json():
    msg = Msg(header=_header(), window_sequence=3, fatigue_classes=['low'], fatigue_probs=[1.0],
              fatigue_set=[0], damage_classes=['none'], damage_probs=[float('nan')],
              damage_set=[], conformal_coverage=0.9, urgency=0.25, urgency_std=float('inf'),
              fatigue_entropy=0.0, damage_entropy=0.1, fatigue_disagreement=0.0,
              damage_disagreement=0.0, uncertainty=0.4, input_modalities=['tactile'],
              reconstructed=[Msg(name='camera', embedding=[0.5] * 8, confidence=0.8)],
              model_id='student-x', inference_ms=1.5, latency_ms=20.0)
    record = live_view.PREDICTION.record(msg)
    assert record['damage_probs'] == [None] and record['urgency_std'] is None
    assert record['reconstructed'] == [{'name': 'camera', 'confidence': 0.8}]
    json.loads(json.dumps(record, allow_nan=False))
    assert conforms(record, live_view.PREDICTION.schema())


def test_byte_levels_of_diagnostics_become_integers():
    msg = Msg(header=_header(), status=[Msg(level=b'\x01', name='softmaint_ingestion: camera',
                                            message='stale', hardware_id='',
                                            values=[Msg(key='rate', value='0.0')])])
    record = live_view.DIAGNOSTICS.record(msg)
    assert record['status'][0]['level'] == 1
    assert conforms(record, live_view.DIAGNOSTICS.schema())


def test_schemas_carry_the_ros_type_a_foxglove_panel_looks_for():
    schema = live_view.DIAGNOSTICS.schema()
    assert schema['title'] == 'diagnostic_msgs/msg/DiagnosticArray'
    assert schema['type'] == 'object'
    assert not conforms({'header': {'stamp': {'sec': 1, 'nsec': 2}, 'frame_id': ''},
                         'status': [{'level': 'OK'}]}, schema)


def test_channels_are_named_after_the_ros_topics():
    assert live_view.channel_topics() == {
        'camera': '/camera/image_raw', 'tactile': '/tactile/heatmap',
        'prediction': '/softmaint/prediction', 'decision': '/softmaint/decision',
        'assistance': '/softmaint/assistance_request', 'diagnostics': '/diagnostics'}
    assert live_view.channel_topics(lambda name: '/arm_1/' + name)['tactile'] == \
        '/arm_1/tactile/heatmap'
