"""
Tiny synthetic datasets in the softmaint_core.dataset layout, for tests only.

This is NOT the simulator: windows are noise plus a class-dependent offset on a few channels
(damage on tactile and as a mark in the camera frames, fatigue on proprio, urgency from
fatigue), so a model can learn
above chance in seconds. Shapes follow FIELD_SPEC and TEACHER_SPEC exactly.
"""
import json
from pathlib import Path

import numpy as np
from softmaint_core.dataset import write_shard
from softmaint_core.spec import FIELD_SPEC, MODALITIES, TEACHER_SPEC

PRIVILEGED = ('stiffness', 'leak_rate', 'crack_length')
REPO = Path(__file__).resolve().parents[2]


def _view(rng, spec, damage, fatigue, lighting, strength):
    n = len(damage)
    out = {}
    cam = spec.modality('camera')
    img = rng.normal(100, 20, (n,) + cam.shape)
    size = cam.features[1] // 4         # a bright mark whose place tells the damage type
    for row, kind in enumerate(damage):
        if kind:
            top, left = ((kind - 1) // 2) * 2 * size, ((kind - 1) % 2) * 2 * size
            img[row, :, :, top:top + size, left:left + size] += strength * 60
    img *= lighting[:, None, None, None, None]
    out['camera'] = np.clip(img, 0, 255).astype(np.uint8)
    tac = spec.modality('tactile')
    x = rng.normal(0, 1, (n,) + tac.shape)
    x[:, :, 0] += strength * 2.0 * (damage == 1)[:, None]
    x[:, :, 1] += strength * 2.0 * (damage == 2)[:, None]
    x[:, :, 2] -= strength * 2.0 * (damage == 3)[:, None]
    x[:, :, 3] += strength * 2.0 * (damage == 4)[:, None]
    out['tactile'] = x.astype(np.float32)
    pro = spec.modality('proprio')
    x = rng.normal(0, 0.3, (n,) + pro.shape)
    x[:, :, :2] += strength * 0.8 * fatigue[:, None, None]
    x[:, :, -1] -= strength * 0.8 * (damage == 4)[:, None]
    out['proprio'] = (x + 1.0).astype(np.float32)
    env = spec.modality('environment')
    out['environment'] = rng.normal([20, 50, 400, 1013], [3, 10, 50, 5],
                                    (n,) + env.shape).astype(np.float32)
    return out


def make_dataset(root, episodes=40, windows=4, seed=0, shards=2, missing=0.1):
    """Write a synthetic dataset with `episodes` x `windows` windows; return its root."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    ep = np.repeat(np.arange(episodes), windows)
    damage_ep = rng.integers(0, 5, episodes)
    fatigue_ep = rng.integers(0, 3, episodes)
    domain_ep = (np.arange(episodes) % 2).astype(np.int64)
    light_ep = rng.uniform(0.6, 1.4, episodes)
    damage, fatigue = damage_ep[ep], fatigue_ep[ep]
    lighting = light_ep[ep].astype(np.float32)
    urgency = np.clip(fatigue / 2.0 * 0.8 + 0.2 * (damage > 0) + rng.normal(0, 0.05, len(ep)),
                      0, 1).astype(np.float32)
    arrays = {}
    for view, spec, strength in (('teacher', TEACHER_SPEC, 1.5), ('field', FIELD_SPEC, 1.0)):
        for name, x in _view(rng, spec, damage, fatigue, lighting, strength).items():
            arrays[f'{view}_{name}'] = x
    mask = rng.random((len(ep), len(MODALITIES))) >= missing
    mask[~mask.any(axis=1), 1] = True
    for i, name in enumerate(MODALITIES):
        arrays[f'field_{name}'][~mask[:, i]] = 0
    arrays.update(
        fatigue=fatigue.astype(np.int64), damage=damage.astype(np.int64), urgency=urgency,
        privileged=np.stack([1 - 0.2 * fatigue, 0.1 * (damage == 1), 0.1 * (damage == 2)],
                            axis=1).astype(np.float32),
        domain=domain_ep[ep], lighting=lighting, episode=ep.astype(np.int64), field_mask=mask)
    bounds = np.linspace(0, len(ep), shards + 1).astype(int)
    for s in range(shards):
        write_shard(root, s, {k: v[bounds[s]:bounds[s + 1]] for k, v in arrays.items()})
    (root / 'card.json').write_text(json.dumps({
        'generator': 'tests/train/synthetic.py (not the simulator)', 'seed': seed,
        'episodes': episodes,
        'windows': int(len(ep)), 'privileged': list(PRIVILEGED)}))
    return root


def tiny_student(tmp_path, seed, **overrides):
    """A fresh small student checkpoint whose original data is a synthetic dataset.

    The untrained weights come from `seed`, so whether they already happen to predict the
    operator's labels is fixed by the test, not by the run (an unseeded one once did).
    """
    from softmaint_train.config import apply_override, config_from_dict
    from softmaint_train.data import fit_normalisation, make_splits, open_dataset, Windows
    from softmaint_train.checkpoints import build_student, save_checkpoint
    from softmaint_train.train import seed_everything
    import yaml
    root = make_dataset(tmp_path / 'sim', episodes=40, windows=4)
    data = yaml.safe_load((REPO / 'config' / 'train' / 'default.yaml').read_text())
    for key, value in {'data.root': str(root), 'student.batch_size': 8, 'student.members': 2,
                       'student.model.layers': 1, 'student.model.cnn_channels': [4, 8, 8],
                       'threads': 1, **overrides}.items():
        apply_override(data, key, value)
    cfg = config_from_dict(data)
    dataset = open_dataset(root)
    splits = make_splits(dataset.array('episode'), dataset.array('domain'), cfg.data)
    stats = fit_normalisation(Windows.load(dataset, 'field', splits.field_train))
    calibration = {'conformal_alpha': 0.1, 'temperature_fatigue': 1.0,
                   'temperature_damage': 1.0, 'conformal_fatigue': 1.0,
                   'conformal_damage': 1.0}
    seed_everything(seed)
    path = tmp_path / 'student.pt'
    save_checkpoint(path, 'student', build_student(cfg), cfg, stats=stats,
                    calibration=calibration)
    return path
