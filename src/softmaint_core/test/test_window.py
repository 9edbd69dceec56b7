"""
Window assembly: the dataset's field view, rejects, health checks, normalisation, readers.

Same arrays as the dataset's field view; bad samples rejected, counted and kept out; stale /
frozen / absent / invalid detection; normalisation as in training; message readers.
"""
from dataclasses import replace
import math
from types import SimpleNamespace

import numpy as np
import pytest
from softmaint_core.image import array_to_image, image_msg_to_rgb
from softmaint_core.messages import (header_stamp, message_readers, push_message,
                                     read_actuation, read_environment, read_joints,
                                     read_tactile, read_tactile_for_model, stamp_seconds)
from softmaint_core.spec import FIELD_SPEC, SpecError
from softmaint_core.window import (HealthConfig, InputError, REJECT_REASONS, Source, Status,
                                   WindowAssembler)

RATES = {'camera': 5.0, 'tactile': 100.0, 'joint_states': 100.0, 'actuation': 100.0,
         'environment': 1.0}
STATS = {'camera': ([0.4, 0.5, 0.6], [0.2, 0.25, 0.3]),
         'tactile': ([0.5 + 0.1 * i for i in range(8)], [1.0 + 0.2 * i for i in range(8)]),
         'proprio': ([0.1, -0.1, 0.2, 0.0, 8.0, 6.0, 7.5, 5.5], [0.3] * 4 + [4.0] * 4),
         'environment': ([25.0, 0.5, 900.0, 100.0], [8.0, 0.2, 400.0, 2.0])}
SPEC = FIELD_SPEC.with_normalisation(STATS)


def good_value(source: str, t: float) -> np.ndarray:
    """Return a plausible, always-changing reading of `source` at time t."""
    if source == 'camera':   # 64x64 RGB frame in [0, 1], uniform per channel
        level = 0.5 + 0.3 * np.sin(t + np.arange(3))
        return np.broadcast_to(level, (64, 64, 3)).astype(np.float32)
    width = {'tactile': 8, 'joint_states': 4, 'actuation': 4, 'environment': 4}[source]
    phase = np.arange(width)
    if source == 'tactile':
        return 1.0 + np.sin(2.0 * t + phase)
    if source == 'joint_states':
        return 0.1 * np.sin(t + phase)
    if source == 'actuation':
        return 10.0 + np.cos(t + phase)
    return np.array([20.0 + 0.1 * t, 0.5 + 0.01 * t, 800.0 + t, 101.0 - 0.01 * t])


def samples(source: str, t0: float, t1: float, rate: float = None):
    """(stamp, value) of `source` at its rate, stamps mid-period in [t0, t1)."""
    rate = rate or RATES[source]
    count = int(math.floor((t1 - t0) * rate + 1e-9))
    return [(t0 + (k + 0.5) / rate, good_value(source, t0 + (k + 0.5) / rate))
            for k in range(count)]


def feed(assembler, t0, t1, sources=tuple(RATES)):
    for source in sources:
        for stamp, value in samples(source, t0, t1):
            assert assembler.push(source, stamp, value, stamp) is None


def assert_same_window(a, b):
    assert a.mask.tolist() == b.mask.tolist()
    for x, y in zip(a.modalities, b.modalities):
        assert x.status == y.status
        np.testing.assert_array_equal(x.raw, y.raw)
        np.testing.assert_array_equal(x.data, y.data)


def test_window_matches_dataset_field_view():
    """Field samples of simulated episodes give the dataset's field view, array for array."""
    from softmaint_sim import episode as ep
    generator = ep.EpisodeGenerator()
    seen = set()
    try:
        for index in range(12):   # seed 7, episodes 0-11: drops, dead taxels, freezes, lights
            rng = ep.episode_rng(7, index)
            params = ep.sample_params(rng, index, index % 2)
            streams, _ = generator.simulate(params, rng)
            field = ep.field_samples(params, streams, rng, generator.noise[params.domain])
            expected, expected_mask = ep.field_view(field)
            assembler = WindowAssembler(FIELD_SPEC)
            for name, (stamps, values) in field.items():
                for stamp, value in zip(stamps, values):
                    for source, part in _as_messages(name, value):
                        assert assembler.push(source, stamp, part, stamp) is None
            window = assembler.assemble(ep.WINDOW)
            assert window.mask.tolist() == expected_mask.tolist()
            for name, array in window.raw().items():
                assert array.dtype == expected[name].dtype, name
                np.testing.assert_array_equal(array, expected[name], err_msg=name)
            faults = params.faults
            seen |= {f'dropped {k}' for k, v in faults.dropped.items() if v}
            seen |= {'dead taxel'} if faults.dead_taxels.any() and 'tactile' in field else set()
            seen |= {f'frozen {k}' for k in faults.frozen_from if k in field}
    finally:
        generator.close()
    assert {'dropped camera', 'dropped tactile', 'dropped proprio', 'dropped environment',
            'dead taxel', 'frozen tactile'} <= seen


def _as_messages(name, value):
    """Split a field sample like the robot's topics carry it."""
    if name == 'camera':   # through an rgb8 Image message and the numpy conversion
        step, data = array_to_image(value, 'rgb8')
        msg = SimpleNamespace(encoding='rgb8', height=value.shape[0], width=value.shape[1],
                              step=step, is_bigendian=0, data=data)
        return [('camera', image_msg_to_rgb(msg))]
    if name == 'proprio':
        return [('joint_states', value[:4]), ('actuation', value[4:])]
    return [(name, value)]


def by_hand(name, raw):
    """(raw [/ 255 for the camera] - mean) / std per channel: an independent computation."""
    x = raw.astype(np.float64) / (255.0 if name == 'camera' else 1.0)
    mean, std = (np.asarray(v, dtype=np.float64) for v in STATS[name])
    shape = (1, len(mean)) + (1,) * (x.ndim - 2)
    return ((x - mean.reshape(shape)) / std.reshape(shape)).astype(np.float32)


def test_normalised_inputs_match_an_independent_computation():
    assembler = WindowAssembler(SPEC)
    feed(assembler, 0.0, 2.0)
    window = assembler.assemble(2.0)
    assert window.mask.all()
    inputs = window.inputs()
    for mod in window.modalities:
        assert mod.data.dtype == np.float32 and mod.data.shape == SPEC.modality(mod.name).shape
        expected = by_hand(mod.name, mod.raw)
        np.testing.assert_allclose(mod.data, expected, rtol=1e-5, atol=1e-6, err_msg=mod.name)
        np.testing.assert_array_equal(inputs[mod.name], mod.data)
    np.testing.assert_array_equal(inputs['mask'], np.ones(4, np.float32))
    # Known values: tactile channel 0 of the first step is the mean of 10 samples, normalised.
    first = np.mean([v[0] for s, v in samples('tactile', 0.0, 0.1)], dtype=np.float32)
    assert window.modalities[1].data[0, 0] == pytest.approx((first - 0.5) / 1.0, abs=1e-6)


def _bad(reason, source, value=None, stamp_shift=0.0, case=''):
    return pytest.param(source, value, stamp_shift, reason, id=f'{source}-{reason}{case}')


def _frame_with(shape, pixels):
    """Return a grey frame with the given {(row, col, channel): value} pixels."""
    frame = np.full(shape, 0.5, np.float32)
    for where, value in pixels.items():
        frame[where] = value
    return frame


BAD_SAMPLES = [
    _bad('empty', 'tactile', np.zeros(0)),
    _bad('shape', 'tactile', np.ones(7)),
    _bad('shape', 'tactile', np.ones((2, 8))),
    _bad('non_finite', 'tactile', np.r_[np.ones(7), np.inf]),
    _bad('non_finite', 'tactile', np.full(8, np.nan)),          # no live taxel at all
    _bad('non_finite', 'joint_states', np.r_[0.1, np.nan, 0.1, 0.1]),
    _bad('non_finite', 'actuation', np.r_[10.0, 10.0, -np.inf, 10.0]),
    _bad('non_finite', 'environment', np.r_[20.0, 0.5, 1e39, 101.0]),   # inf in float32
    _bad('shape', 'actuation', ['a', 'b', 'c', 'd']),
    _bad('future_stamp', 'environment', 'good', stamp_shift=1.0),
    _bad('out_of_order', 'joint_states', 'good', stamp_shift=-0.5),
    _bad('empty', 'camera', np.zeros((0, 64, 3))),
    _bad('shape', 'camera', np.zeros((64, 64))),
    _bad('non_finite', 'camera', np.full((64, 64, 3), np.nan)),
    # One bad pixel: in a frame resized by whole blocks, by uneven ones, as +inf and -inf in
    # the same block (their sum is NaN), and in a column nearest-pixel upsampling skips.
    _bad('non_finite', 'camera', _frame_with((64, 64, 3), {(5, 7, 1): np.nan}), case='-block'),
    _bad('non_finite', 'camera', _frame_with((67, 45, 3), {(66, 44, 2): np.inf}),
         case='-uneven'),
    _bad('non_finite', 'camera', _frame_with((64, 64, 3), {(0, 0, 0): np.inf,
                                                           (1, 1, 0): -np.inf}), case='-pair'),
    _bad('non_finite', 'camera', _frame_with((16, 64, 3), {(3, 1, 0): np.nan}),
         case='-upsampled'),
]


@pytest.mark.parametrize('source, value, stamp_shift, reason', BAD_SAMPLES)
def test_bad_samples_are_rejected_counted_and_never_reach_the_window(
        source, value, stamp_shift, reason):
    # Environment has 2 samples per window: tolerate 1 reject in 3 for every case alike.
    config = HealthConfig(max_reject_fraction=0.5)
    clean, dirty = WindowAssembler(SPEC, config), WindowAssembler(SPEC, config)
    feed(clean, 0.0, 2.0)
    feed(dirty, 0.0, 1.0)
    now = 1.0
    bad = good_value(source, now + stamp_shift) if isinstance(value, str) else value
    error = dirty.push(source, now + stamp_shift, bad, now)
    assert isinstance(error, InputError) and error.reason == reason
    feed(dirty, 1.0, 2.0)
    window = dirty.assemble(2.0)
    assert_same_window(window, clean.assemble(2.0))
    health = window.sources[source]
    assert health.status == Status.AVAILABLE   # one reject among many does not blank it
    assert health.rejected == {r: int(r == reason) for r in REJECT_REASONS}
    assert health.rejected_in_window == 1
    assert health.accepted == clean.health(2.0)[source].accepted


def test_repeated_stamps_foreign_frames_and_impossible_values_are_rejected():
    assembler = WindowAssembler(SPEC, HealthConfig(expected_frame_ids={'tactile': 'skin'}))
    value = good_value('tactile', 0.5)
    assert assembler.push('tactile', 0.5, value, 0.5, 'skin') is None
    assert assembler.push('tactile', 0.5, value + 0.1, 0.6, 'skin').reason == 'duplicate_stamp'
    assert assembler.push('tactile', 0.6, value, 0.6, 'elsewhere').reason == 'frame_id'
    assert assembler.push('tactile', 0.6, value, 0.6) is None          # frame not given
    for source, values in (('joint_states', [7.0, 0.0, 0.0, 0.0]),      # more than a turn
                           ('actuation', [1e5, 8.0, 8.0, 8.0]),         # 1000 bar
                           ('environment', [20.0, 55.0, 800.0, 101.0]),  # humidity in %
                           ('environment', [-300.0, 0.5, 800.0, 101.0]),
                           ('tactile', [1e30] + [1.0] * 7)):
        assert assembler.push(source, 0.7, np.array(values), 0.7).reason == 'out_of_range'
    with pytest.raises(ValueError, match='expected_frame_ids'):
        HealthConfig(expected_frame_ids={'sonar': 'x'}).validate()


def test_dead_taxels_are_allowed_and_read_as_zero():
    assembler = WindowAssembler(SPEC)
    feed(assembler, 0.0, 2.0, ('camera', 'joint_states', 'actuation', 'environment'))
    for stamp, value in samples('tactile', 0.0, 2.0):
        value = value.copy()
        value[[2, 5]] = np.nan
        assert assembler.push('tactile', stamp, value, stamp) is None
    tactile = assembler.assemble(2.0).modalities[1]
    assert tactile.status == Status.AVAILABLE
    assert (tactile.raw[:, [2, 5]] == 0.0).all() and (tactile.raw[:, [0, 1, 3]] != 0.0).all()
    assert np.isfinite(tactile.data).all()


def test_rejects_reported_upstream_are_counted_and_dominate_to_invalid():
    assembler = WindowAssembler(SPEC)
    feed(assembler, 0.0, 2.0, ('tactile', 'joint_states', 'actuation', 'environment'))
    for k in range(10):   # a camera publishing only undecodable frames
        error = assembler.reject('camera', InputError('encoding', 'rgba8'), 1.0 + k / 10)
        assert error.reason == 'encoding'
    window = assembler.assemble(2.0)
    camera = window.sources['camera']
    assert camera.status == Status.INVALID and 'most often: encoding' in camera.detail
    assert camera.rejected['encoding'] == 10 and camera.accepted == 0
    assert window.mask.tolist() == [False, True, True, True]
    assert not window.modalities[0].raw.any() and not window.modalities[0].data.any()


def test_invalid_when_rejects_pass_the_fraction_then_recovers():
    assembler = WindowAssembler(SPEC)
    feed(assembler, 0.0, 2.0, ('camera', 'joint_states', 'actuation', 'environment'))
    for k, (stamp, value) in enumerate(samples('tactile', 0.0, 2.0)):
        bad = k % 3 == 0   # a third of the samples: above the 25 % default
        assembler.push('tactile', stamp, np.full(8, np.inf) if bad else value, stamp)
    window = assembler.assemble(2.0)
    assert window.sources['tactile'].status == Status.INVALID
    assert window.sources['tactile'].rejected['non_finite'] == 67
    assert window.mask.tolist() == [True, False, True, True]
    assembler.config = replace(assembler.config, max_reject_fraction=0.4)
    assert assembler.assemble(2.0).sources['tactile'].status == Status.AVAILABLE
    assembler.config = HealthConfig()
    feed(assembler, 2.0, 4.0)   # a clean window later: available again
    assert assembler.assemble(4.0).sources['tactile'].status == Status.AVAILABLE
    # A 1 Hz sensor has 2 samples per window: one bad reading is a third of them.
    assembler.push('environment', 4.2, np.full(4, np.nan), 4.2)
    assert assembler.assemble(5.0).sources['environment'].status == Status.INVALID


def test_stale_after_a_sensor_goes_silent():
    assembler = WindowAssembler(SPEC)
    feed(assembler, 0.0, 2.0)
    feed(assembler, 2.0, 3.0, ('camera', 'joint_states', 'actuation'))
    assert assembler.timeout('tactile') == 0.5        # stale_timeout
    assert assembler.timeout('environment') == 1.5    # 1.5 periods of 1 Hz
    window = assembler.assemble(2.4)   # silent for 0.405 s < 0.5 s
    assert window.mask.all()
    window = assembler.assemble(3.0)
    tactile = window.sources['tactile']
    assert tactile.status == Status.STALE and tactile.age == pytest.approx(1.005)
    assert window.sources['environment'].status == Status.AVAILABLE   # 1.5 s < 1.5 periods
    assert window.mask.tolist() == [True, False, True, True]
    assert not window.modalities[1].data.any()
    assert assembler.assemble(3.6).sources['environment'].status == Status.STALE
    assert assembler.assemble(10.0).sources['camera'].status == Status.STALE


def test_absent_sensors_and_a_partial_proprio():
    assembler = WindowAssembler(SPEC)
    feed(assembler, 0.0, 2.0, ('tactile', 'joint_states', 'environment'))
    window = assembler.assemble(2.0)
    statuses = {m.name: m.status for m in window.modalities}
    assert statuses == {'camera': Status.ABSENT, 'tactile': Status.AVAILABLE,
                        'proprio': Status.ABSENT, 'environment': Status.AVAILABLE}
    assert window.sources['joint_states'].status == Status.AVAILABLE
    assert window.sources['actuation'].status == Status.ABSENT
    assert window.sources['actuation'].detail == 'no message received yet'
    assert not window.modalities[2].raw.any() and not window.modalities[2].data.any()
    assert WindowAssembler(SPEC).assemble(5.0).mask.tolist() == [False] * 4


def test_frozen_sensors_are_detected():
    assembler = WindowAssembler(SPEC)
    feed(assembler, 0.0, 2.0, ('joint_states', 'actuation'))
    stuck = good_value('tactile', 0.0)
    for stamp, value in samples('tactile', 0.0, 2.0):
        assembler.push('tactile', stamp, stuck + 1e-7 * (stamp > 1.0), stamp)  # < epsilon
    frame = good_value('camera', 0.3)
    for stamp, _ in samples('camera', 0.0, 2.0):
        assembler.push('camera', stamp, frame, stamp)
    window = assembler.assemble(2.0)
    assert window.sources['tactile'].status == Status.FROZEN
    assert window.sources['camera'].status == Status.FROZEN
    assert window.mask.tolist() == [False, False, True, False]
    for t in (0.5, 1.5, 2.5):   # environment at 1 Hz: 2 equal samples in the window
        assembler.push('environment', t, good_value('environment', 0.0), t)
    assert assembler.assemble(3.0).sources['environment'].status == Status.FROZEN
    assert assembler.assemble(2.0).sources['environment'].status == Status.AVAILABLE  # only 2
    assembler.config = replace(assembler.config, frozen_epsilon=0.0)
    assert assembler.assemble(2.0).sources['tactile'].status == Status.AVAILABLE


def test_a_freeze_within_the_window_is_still_available():
    """Like the dataset: a sensor that sticks part way through the window still counts."""
    assembler = WindowAssembler(SPEC)
    feed(assembler, 0.0, 2.0, ('camera', 'joint_states', 'actuation', 'environment'))
    for stamp, value in samples('tactile', 0.0, 2.0):
        assembler.push('tactile', stamp, good_value('tactile', min(stamp, 1.2)), stamp)
    assert assembler.assemble(2.0).sources['tactile'].status == Status.AVAILABLE
    assert assembler.assemble(3.3).sources['tactile'].status == Status.STALE


def test_coverage_rate_and_last_stamp():
    assembler = WindowAssembler(SPEC)
    feed(assembler, 0.0, 2.0, ('camera', 'joint_states', 'actuation', 'environment'))
    for stamp, value in samples('tactile', 0.0, 2.0):
        if not 0.5 <= stamp < 1.0:   # a quarter of the window lost
            assembler.push('tactile', stamp, value, stamp)
    window = assembler.assemble(2.0)
    tactile = window.modalities[1]
    assert tactile.coverage == pytest.approx(0.75) and tactile.rate == pytest.approx(75.0)
    assert window.modalities[0].rate == pytest.approx(5.0)
    assert window.modalities[0].coverage == 1.0
    assert window.last_input_stamp == pytest.approx(1.995)
    # The lost quarter holds the last value before it (zero-order hold), like the dataset.
    np.testing.assert_array_equal(tactile.raw[5:10], np.repeat(tactile.raw[4:5], 5, axis=0))
    assert tactile.status == Status.AVAILABLE
    assembler.config = replace(assembler.config, min_coverage=0.8)
    tactile = assembler.assemble(2.0).sources['tactile']
    assert tactile.status == Status.STALE and 'samples in 75%' in tactile.detail


def test_a_window_only_partly_filled_at_start_up_is_stale():
    assembler = WindowAssembler(SPEC)
    fast = ('camera', 'tactile', 'joint_states', 'actuation')
    feed(assembler, 0.0, 0.8, fast)   # sensors started 0.8 s before the window's end
    window = assembler.assemble(0.8)
    assert window.mask.tolist() == [False] * 4
    tactile = window.sources['tactile']
    assert tactile.status == Status.STALE and tactile.coverage == pytest.approx(0.4)
    feed(assembler, 0.8, 1.0, fast)
    assembler.push('environment', 0.5, good_value('environment', 0.5), 0.5)
    window = assembler.assemble(1.0)   # half of every modality's steps: just enough
    assert [m.coverage for m in window.modalities] == [0.5] * 4
    assert window.mask.tolist() == [True] * 4


def test_assembly_is_deterministic_and_memory_is_bounded():
    a, b = WindowAssembler(SPEC), WindowAssembler(SPEC)
    feed(a, 0.0, 30.0)
    feed(b, 0.0, 30.0)
    first = a.assemble(30.0)
    assert_same_window(first, a.assemble(30.0))
    assert_same_window(first, b.assemble(30.0))
    kept = len(a._buffers['tactile'].stamps)
    assert kept <= 2 * SPEC.window * RATES['tactile'] + 1
    a.reset()
    assert a.assemble(30.0).sources['tactile'].status == Status.ABSENT


def test_config_and_sources_are_validated():
    for count in (1, 1001):    # every buffer keeps this many samples, however old
        with pytest.raises(ValueError, match=r'frozen_min_samples must be in \[2, 1000\]'):
            HealthConfig(frozen_min_samples=count).validate()
    with pytest.raises(ValueError, match='max_reject_fraction must be in'):
        WindowAssembler(SPEC, HealthConfig(max_reject_fraction=1.0))
    sources = (Source('camera', 'camera', (32, 32, 3)), Source('tactile', 'tactile', (8,)),
               Source('joint_states', 'proprio', (4,)),
               Source('environment', 'environment', (4,)))
    with pytest.raises(SpecError, match='sources of proprio give 4 features, the spec needs 8'):
        WindowAssembler(SPEC, sources=sources)
    with pytest.raises(ValueError, match='unknown reject reason'):
        InputError('bad vibes', 'no')


def _joint_state(names, positions):
    return SimpleNamespace(name=names, position=positions)


def test_message_readers():
    joints = ('bend_0', 'bend_1', 'bend_2', 'bend_3')
    msg = _joint_state(['bend_3', 'other', 'bend_1', 'bend_0', 'bend_2'], [3, 9, 1, 0, 2])
    np.testing.assert_array_equal(read_joints(msg, joints), [0, 1, 2, 3])
    cases = [
        (lambda: read_joints(_joint_state(['bend_0'], [0.1]), joints), 'missing_name'),
        (lambda: read_joints(_joint_state(['gripper'], [0.1]), joints), 'other_device'),
        (lambda: read_joints(_joint_state(list(joints), [0.1]), joints), 'shape'),
        (lambda: read_joints(_joint_state([], []), joints), 'empty'),
        (lambda: read_tactile(SimpleNamespace(rows=2, cols=4, data=[]), 8), 'empty'),
        (lambda: read_tactile(SimpleNamespace(rows=2, cols=4, data=[0.0] * 7), 8), 'shape'),
        (lambda: read_tactile(SimpleNamespace(rows=3, cols=3, data=[0.0] * 9), 8), 'shape'),
        (lambda: read_tactile_for_model(SimpleNamespace(rows=8, cols=1, data=[0.0] * 5000),
                                        8), 'too_large'),
        (lambda: read_tactile_for_model(SimpleNamespace(rows=8, cols=1, data=[0.0] * 8,
                                                        units='kPa'), 8), 'units'),
        (lambda: read_tactile_for_model(SimpleNamespace(rows=8, cols=1, data=[5.0] * 8,
                                                        range_max=4.0), 8), 'out_of_range'),
        (lambda: read_joints(_joint_state(list(joints) + ['bend_2'], [0.1] * 5), joints),
         'duplicate_name'),
        (lambda: read_joints(_joint_state([f'j{i}' for i in range(5000)], [0.1] * 5000),
                             joints), 'too_large'),
        (lambda: read_actuation(SimpleNamespace(name=['chamber_0', 'chamber_1'], units='psi',
                                                command=[1.0] * 2, achieved=[1.0] * 2),
                                ('chamber_0', 'chamber_1')), 'units'),
        (lambda: header_stamp(SimpleNamespace(stamp=SimpleNamespace(sec=0, nanosec=0))),
         'bad_stamp'),
        (lambda: header_stamp(SimpleNamespace(stamp=SimpleNamespace(sec=5, nanosec=10**9))),
         'bad_stamp'),
        (lambda: header_stamp(SimpleNamespace(stamp=SimpleNamespace(sec=-1, nanosec=0))),
         'bad_stamp'),
    ]
    for read, reason in cases:
        with pytest.raises(InputError) as err:
            read()
        assert err.value.reason == reason
    actuation = SimpleNamespace(name=['chamber_1', 'chamber_0'], command=[2.0, 1.0],
                                achieved=[4.0, 3.0])
    np.testing.assert_array_equal(read_actuation(actuation, ('chamber_0', 'chamber_1')),
                                  [1, 2, 3, 4])
    tactile = read_tactile(SimpleNamespace(rows=8, cols=1, data=[0.5] * 7 + [math.nan]), 8)
    assert tactile.shape == (8,) and math.isnan(tactile[7])
    env = SimpleNamespace(temperature=21.0, humidity=0.4, co2=700.0, pressure=100.5)
    np.testing.assert_allclose(read_environment(env), [21.0, 0.4, 700.0, 100.5], rtol=1e-6)
    assert stamp_seconds(SimpleNamespace(sec=12, nanosec=500_000_000)) == 12.5


def test_push_message_checks_the_header_then_the_values():
    assembler = WindowAssembler(SPEC, HealthConfig(expected_frame_ids={'environment': 'mast'}))
    readers = message_readers(assembler, ('bend_0', 'bend_1', 'bend_2', 'bend_3'),
                              ('chamber_0', 'chamber_1'))

    def reading(sec, frame_id, humidity=0.5):
        header = SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=0), frame_id=frame_id)
        return SimpleNamespace(header=header, temperature=20.0, humidity=humidity, co2=800.0,
                               pressure=101.0)

    assert push_message(assembler, readers, 'environment', reading(1, 'mast'), 1.0) is None
    for msg, reason in ((reading(0, 'mast', humidity=55.0), 'bad_stamp'),   # header first
                        (reading(2, 'mast', humidity=55.0), 'out_of_range'),
                        (reading(2, 'boom'), 'frame_id'), (reading(1, 'mast'), 'duplicate_stamp')):
        assert push_message(assembler, readers, 'environment', msg, 2.0).reason == reason
    assert assembler.health(2.0)['environment'].accepted == 1


def test_another_devices_joint_states_on_the_topic_do_not_spoil_the_bend_sensors():
    """A gripper publishing its own joint_states beside the arm's, as many robots do."""
    bends = ('bend_0', 'bend_1', 'bend_2', 'bend_3')

    def joint_state(stamp, names, positions):
        sec, nanosec = divmod(round(stamp * 1e9), 10**9)
        header = SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=nanosec), frame_id='')
        return SimpleNamespace(header=header, name=list(names), position=list(positions))

    shared = WindowAssembler(SPEC)
    readers = message_readers(shared, bends, ('chamber_0', 'chamber_1'))
    for stamp, value in samples('joint_states', 0.0, 2.0):
        assert push_message(shared, readers, 'joint_states',
                            joint_state(stamp, bends, value), stamp) is None
        gripper = joint_state(stamp + 1e-4, ['gripper'], [0.02])
        assert push_message(shared, readers, 'joint_states', gripper,
                            stamp).reason == 'other_device'
    health = shared.health(2.0)['joint_states']
    assert health.status == Status.AVAILABLE and health.rejected_in_window == 0
    assert health.rejected['other_device'] == health.accepted
    # joint names configured wrong: no sample, and the health says what arrived instead
    misnamed = WindowAssembler(SPEC)
    readers = message_readers(misnamed, ('elbow', 'wrist'), ('chamber_0', 'chamber_1'))
    for stamp, value in samples('joint_states', 0.0, 2.0):
        push_message(misnamed, readers, 'joint_states', joint_state(stamp, bends, value), stamp)
    health = misnamed.health(2.0)['joint_states']
    assert health.status == Status.STALE and 'named none of the joints' in health.detail


def test_normalise_takes_batches_lighting_and_unsensed_quantities():
    """Training's batches [B, steps, ...] equal the onboard windows one by one."""
    from softmaint_core.window import normalise
    rng = np.random.default_rng(3)
    for mod in SPEC.modalities:
        raw = (rng.integers(0, 256, (3,) + mod.shape) if mod.name == 'camera'
               else rng.normal(1.0, 2.0, (3,) + mod.shape)).astype(
                   np.uint8 if mod.name == 'camera' else np.float32)
        batch = normalise(mod, raw)
        for b in range(3):
            np.testing.assert_array_equal(batch[b], normalise(mod, raw[b]))
            np.testing.assert_allclose(batch[b], by_hand(mod.name, raw[b]), rtol=1e-5,
                                       atol=1e-5)
    camera = SPEC.modality('camera')
    bright = normalise(camera, np.full((1,) + camera.shape, 200, np.uint8), lighting=1.5)
    np.testing.assert_allclose(bright, by_hand('camera', np.full(camera.shape, 255, np.uint8))
                               [None], rtol=1e-5, atol=1e-6)   # 200 * 1.5 clips at full scale
    env = SPEC.modality('environment')
    unsensed = np.ones(env.shape, np.float32)
    unsensed[:, 2] = np.nan
    x = normalise(env, unsensed)
    assert (x[:, 2] == 0.0).all() and np.isfinite(x).all()


def test_channels_outside_the_training_range_are_named_and_kept():
    # a pressure of 31 MPa against a training pressure of 100 +- 2 kPa (~15,000 std)
    assembler = WindowAssembler(SPEC)
    feed(assembler, 0.0, 2.0, sources=('tactile', 'joint_states', 'actuation'))
    for stamp, value in samples('environment', 0.0, 2.0):
        value[3] = 31_000.0
        assert assembler.push('environment', stamp, value, stamp) is None
    window = assembler.assemble(2.0)
    modalities = {m.name: m for m in window.modalities}
    env = modalities['environment']
    assert env.status == Status.AVAILABLE and set(env.out_of_range) == {'pressure'}
    assert env.out_of_range['pressure'] == pytest.approx((31_000.0 - 100.0) / 2.0, rel=1e-4)
    assert env.data[:, 3] == pytest.approx((31_000.0 - 100.0) / 2.0, rel=1e-4)   # as read
    assert modalities['proprio'].out_of_range == modalities['tactile'].out_of_range == {}
    assert modalities['camera'].out_of_range == {}        # absent: nothing to judge
    # the limit is the config's: at 0.05 std every sensed proprio channel leaves it
    strict = WindowAssembler(SPEC, HealthConfig(max_training_std=0.05))
    feed(strict, 0.0, 2.0, sources=('joint_states', 'actuation'))
    names = strict.assemble(2.0).modalities[SPEC.names.index('proprio')].out_of_range
    assert set(names) == {f'proprio[{i}]' for i in range(8)}
    with pytest.raises(ValueError, match='max_training_std must be > 0'):
        HealthConfig(max_training_std=0.0).validate()


def _scene(rng, sigma):
    """Return a 64x64 frame, half at 0.45, half at 0.55 (std 0.05), with sensor noise sigma."""
    frame = np.full((64, 64, 3), 0.45)
    frame[:, 32:] += 0.1
    return np.clip(frame + rng.normal(0.0, sigma, frame.shape), 0.0, 1.0).astype(np.float32)


def _camera_window(spec, sigma):
    assembler = WindowAssembler(spec)
    feed(assembler, 0.0, 2.0, sources=('tactile', 'joint_states', 'actuation', 'environment'))
    rng = np.random.default_rng(5)
    for stamp, _ in samples('camera', 0.0, 2.0):
        assert assembler.push('camera', stamp, _scene(rng, sigma), stamp) is None
    return assembler.assemble(2.0)


def test_a_camera_too_noisy_to_read_is_unreadable_zeroed_and_batches_agree():
    from softmaint_core.window import batch_inputs
    gated = SPEC.with_min_snr(1.0)
    clear, turbid = _camera_window(gated, 0.02), _camera_window(gated, 0.2)
    camera = SPEC.names.index('camera')
    assert clear.modalities[camera].status == Status.AVAILABLE and clear.mask.all()
    assert clear.modalities[camera].snr > 3.0            # 0.05 / (0.02 / 2 after 2x2 area)
    murky = turbid.modalities[camera]
    assert murky.status == Status.UNREADABLE and murky.snr < 1.0
    assert not turbid.mask[camera] and turbid.mask.sum() == 3
    assert (murky.data == 0).all() and murky.raw.any()  # the frames stay in the record
    # the same frames without a floor are read
    ungated = _camera_window(SPEC, 0.2)
    assert ungated.modalities[camera].status == Status.AVAILABLE
    np.testing.assert_array_equal(ungated.modalities[camera].raw, murky.raw)
    # training and evaluation batches decide and normalise as the assembler does
    windows = (clear, turbid)
    raw = {name: np.stack([w.raw()[name] for w in windows]) for name in SPEC.names}
    feeds, mask = batch_inputs(gated, raw, np.ones((2, 4), bool))
    assert mask.tolist() == [w.mask.tolist() for w in windows]
    for name in SPEC.names:
        np.testing.assert_array_equal(feeds[name], np.stack([w.inputs()[name] for w in windows]))
