"""
Data-parallel training under a real torchrun (2 processes, gloo, CPU) on synthetic data.

The ranks must hold identical weights (gradients synchronised), the weights must be those one
process trains from the same config (up to floating-point rounding), rank 0 alone writes
files, and a killed run resumes from its last state to the very weights of an uninterrupted
one.
"""
from dataclasses import asdict
import json
import os
from pathlib import Path
import signal
import subprocess
import sys

from conftest import tiny_config
from polling import wait_for
import pytest
import torch
import yaml

HERE = Path(__file__).resolve().parent
TORCHRUN = Path(sys.executable).with_name('torchrun')
ENV = {**os.environ, 'OMP_NUM_THREADS': '1'}
# 1 vs 2 processes: the same arithmetic summed in another order (one step's gradients agree to
# 4e-7). AdamW's normalised steps grow that rounding to ~1e-4 in the weights after some 20-60
# steps (measured here: teacher 1.2e-4, student 3.7e-4, fine-tuned 6.1e-4); another seed moves
# them by ~1 (docs/benchmarks.md).
TOLERANCE = 2e-3

pytestmark = pytest.mark.skipif(not TORCHRUN.exists(), reason='torchrun not beside python')


def _config(tmp_path, root, **changes):
    """Write a tiny config whose outputs go to a relative runs_dir (the working directory)."""
    cfg = tiny_config(root, tmp_path, **{'threads': 1, 'runs_dir': 'runs',
                                         'export.out': 'models/student.onnx', **changes})
    path = tmp_path / 'tiny.yaml'
    path.write_text(yaml.safe_dump(json.loads(json.dumps(asdict(cfg)))))
    return path


def _run(args, **kwargs):
    proc = subprocess.run(args, capture_output=True, text=True, timeout=240, env=ENV,
                          **kwargs)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def _max_difference(a, b):
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


@pytest.mark.slow
def test_two_ranks_train_the_weights_of_one_process_and_only_rank_0_writes(synthetic_root,
                                                                           tmp_path):
    config = _config(tmp_path, synthetic_root)       # dropout 0.1: masks of the global batch
    driver = str(HERE / 'ddp_driver.py')
    _run([sys.executable, driver, str(config), str(tmp_path / 'one')])
    _run([str(TORCHRUN), '--standalone', '--nproc-per-node', '2', driver, str(config),
          str(tmp_path / 'two')])
    one = torch.load(tmp_path / 'one' / 'weights-rank0-of1.pt')
    rank0 = torch.load(tmp_path / 'two' / 'weights-rank0-of2.pt')
    rank1 = torch.load(tmp_path / 'two' / 'weights-rank1-of2.pt')
    for stage in ('teacher', 'student', 'fisher', 'tuned'):
        # both ranks ran every stage and applied the same averaged gradients
        assert _max_difference(rank0[stage], rank1[stage]) == 0.0, stage
        # and that gradient is the one-process gradient of the same global batches
        assert _max_difference(rank0[stage], one[stage]) < TOLERANCE, stage
    written = {p.relative_to(tmp_path / 'two' / 'rank0').as_posix()
               for p in (tmp_path / 'two' / 'rank0').rglob('*') if p.is_file()}
    assert {'runs/teacher-seed0.pt', 'runs/teacher-seed0-pool.npz',
            'runs/student.state.pt'} == written
    assert not list((tmp_path / 'two' / 'rank1').iterdir()), 'rank 1 wrote files'


@pytest.mark.slow
# One fresh-clone run of 7 saw rank 1 abort ("terminate called without an active exception",
# SIGABRT) 2 s into training under torchrun; not reproduced in 4 reruns. Cause not found yet.
@pytest.mark.flaky(reruns=2)
def test_reproduce_under_torchrun_reports_once_from_rank_0(synthetic_root, tmp_path):
    config = _config(tmp_path, synthetic_root, **{'student.members': 1, 'teacher.epochs': 1})
    proc = _run([str(TORCHRUN), '--standalone', '--nproc-per-node', '2', '-m',
                 'softmaint_train', 'reproduce', '--config', str(config), '--no-progress',
                 '--no-export', '--device', 'cpu'], cwd=tmp_path)
    record = json.loads((tmp_path / 'runs/default/record.json').read_text())
    assert record['world_size'] == 2
    assert proc.stdout.count('done in') == 1
    assert (tmp_path / 'runs/default/report/report.md').is_file()
    assert not list((tmp_path / 'runs/default').glob('*.state.pt'))   # removed when done


@pytest.mark.slow
def test_a_killed_training_resumes_to_the_weights_of_an_uninterrupted_one(synthetic_root,
                                                                          tmp_path):
    config = _config(tmp_path, synthetic_root, **{'teacher.epochs': 10,
                                                  'checkpoint_every': 5})
    command = [sys.executable, '-m', 'softmaint_train', 'teacher', '--config', str(config),
               '--no-progress', '--device', 'cpu']
    (tmp_path / 'whole').mkdir()
    _run(command, cwd=tmp_path / 'whole')
    (tmp_path / 'killed').mkdir()
    state = tmp_path / 'killed' / 'runs/default/teacher-seed0.state.pt'
    proc = subprocess.Popen(command, cwd=tmp_path / 'killed', env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert wait_for(state.is_file, 120), 'no training state was written'
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / 'killed' / 'runs/default/teacher-seed0.pt').exists(), (
        'the run finished before it was killed')
    saved = torch.load(state, weights_only=False)['step']
    resumed = _run(command, cwd=tmp_path / 'killed')
    assert f'resuming teacher-seed0.state.pt at step {saved}' in resumed.stdout
    assert not state.exists()       # the stage's checkpoint replaces its state
    whole, again = (torch.load(tmp_path / d / 'runs/default/teacher-seed0.pt',
                               weights_only=False)['state_dict'] for d in ('whole', 'killed'))
    assert _max_difference(whole, again) == 0.0


def test_device_cuda_without_a_gpu_stops_with_a_clear_error(synthetic_root, tmp_path, capsys):
    from softmaint_train.cli import main
    from softmaint_train.distributed import device, resolve_device
    assert resolve_device('cpu') == torch.device('cpu')
    if torch.cuda.is_available():
        assert resolve_device('auto').type == 'cuda'
        pytest.skip('this machine has a GPU')
    assert resolve_device('auto') == torch.device('cpu')
    config = _config(tmp_path, synthetic_root)
    assert main(['teacher', '--config', str(config), '--device', 'cuda']) == 2
    assert 'torch sees no GPU' in capsys.readouterr().err
    assert device() == torch.device('cpu')
