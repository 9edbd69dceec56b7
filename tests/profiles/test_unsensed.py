"""
An environment quantity the robot does not sense arrives as NaN: "no information", not a reject.

The window assembler reads it as the training mean (0 after normalisation) and keeps the
modality available; inf, and a reading that senses nothing at all, are still rejected. A
medical-profile sim run (no CO2 sensor) goes through the assembler end to end.
"""
import numpy as np
import pytest
from softmaint_core.spec import FIELD_SPEC
from softmaint_core.window import Status, WindowAssembler

STATS = {'camera': ([0.4, 0.5, 0.6], [0.2, 0.25, 0.3]),
         'tactile': ([0.5] * 8, [1.0] * 8),
         'proprio': ([0.0] * 8, [1.0] * 8),
         'environment': ([25.0, 0.5, 900.0, 100.0], [8.0, 0.2, 400.0, 2.0])}
SPEC = FIELD_SPEC.with_normalisation(STATS)


def environment(t):
    return np.array([20.0 + 0.1 * t, 0.5 + 0.01 * t, np.nan, 101.0 - 0.01 * t])


def test_nan_quantity_reads_as_the_training_mean():
    assembler = WindowAssembler(SPEC)
    for t in (0.5, 1.5):
        assert assembler.push('environment', t, environment(t), t) is None
    window = assembler.assemble(2.0)
    env = window.modalities[3]
    assert env.status == Status.AVAILABLE and window.sources['environment'].rejected_in_window == 0
    assert env.raw[:, 2].tolist() == [900.0, 900.0]          # the training mean, in ppm
    assert env.data[:, 2].tolist() == [0.0, 0.0]              # normalised: no information
    assert env.data[0, 0] == pytest.approx((20.05 - 25.0) / 8.0)   # sensed ones as before
    assert np.isfinite(window.inputs()['environment']).all()


def test_identity_normalisation_fills_zero():
    assembler = WindowAssembler(FIELD_SPEC)     # no normalisation statistics
    for t in (0.5, 1.5):
        assembler.push('environment', t, environment(t), t)
    assert assembler.assemble(2.0).modalities[3].data[:, 2].tolist() == [0.0, 0.0]


@pytest.mark.parametrize('values', [
    [20.0, 0.5, np.inf, 101.0],                 # inf is a broken reading, not "not sensed"
    [np.nan] * 4,                               # senses nothing: not a reading
], ids=['inf', 'all-nan'])
def test_inf_and_empty_readings_are_still_rejected(values):
    assembler = WindowAssembler(SPEC)
    error = assembler.push('environment', 0.5, np.array(values), 0.5)
    assert error is not None and error.reason == 'non_finite'
    assert assembler.assemble(2.0).sources['environment'].rejected['non_finite'] == 1


def test_nan_still_rejected_where_it_means_nothing():
    assembler = WindowAssembler(SPEC)
    error = assembler.push('joint_states', 0.5, np.array([0.1, np.nan, 0.1, 0.1]), 0.5)
    assert error is not None and error.reason == 'non_finite'


@pytest.mark.slow
def test_medical_sim_robot_environment_through_the_assembler():
    from softmaint_sim.live import LiveSim
    from softmaint_sim.scenario import load
    sim = LiveSim(load('medical'), render=False)
    assembler = WindowAssembler(SPEC)
    readings = []
    try:
        while sim.time < 3.0:
            readings += [r for r in sim.step() if r.kind == 'environment']
    finally:
        sim.close()
    co2 = [r.data['values'][2] for r in readings]
    assert len(co2) == 3 and np.isnan(co2).all()               # no chemical sensor
    assert np.isfinite([r.data['values'][[0, 1, 3]] for r in readings]).all()
    for r in readings:
        assert assembler.push('environment', r.stamp + 0.01, r.data['values'], r.stamp + 0.01) \
            is None
    env = assembler.assemble(3.0).modalities[3]
    assert env.status == Status.AVAILABLE and (env.data[:, 2] == 0.0).all()
