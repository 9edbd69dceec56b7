"""
Test driver, not a test: one training process, alone or as one rank under torchrun.

    [torchrun --standalone --nproc-per-node 2] python ddp_driver.py CONFIG OUT

Runs the library's stages as the pipeline does (teacher, cached teacher outputs, distilled
student, Fisher and EWC fine-tuning) from a working directory of its own, OUT/rank<r>, with a
relative runs_dir: whatever file a rank writes lands in its own directory. Then it saves the
weights the rank holds to OUT/weights-rank<r>-of<world>.pt, the one file written outside the
library, so the test can compare the ranks with each other and with one process.
"""
import copy
import os
from pathlib import Path
import sys

import numpy as np
import torch


def main(config: str, out: str) -> None:
    """Train every stage; save this rank's weights for the test."""
    from softmaint_train import distributed
    from softmaint_train.config import load_config
    from softmaint_train.data import (fit_normalisation, labelled_rows, make_splits,
                                      open_dataset, Windows)
    from softmaint_train.pipeline import get_teacher, teacher_cache
    from softmaint_train.train import finetune_ewc, fisher_diagonal, train_student
    distributed.setup('cpu')
    rank, world = distributed.dist_info()
    torch.set_num_threads(1)
    work = Path(out) / f'rank{rank}'
    work.mkdir(parents=True)
    os.chdir(work)
    cfg = load_config(config)
    runs = Path(cfg.runs_dir)
    ds = open_dataset(cfg.data.root)
    episode = ds.array('episode')
    splits = make_splits(episode, ds.array('domain'), cfg.data)
    teacher, t_stats = get_teacher(cfg, ds, splits, runs, progress=False)
    pool = np.sort(np.concatenate([splits.teacher_train, splits.field_train]))
    labelled = np.sort(labelled_rows(splits.field_train, episode, cfg.data.label_fraction,
                                     cfg.seed))
    windows = Windows.load(ds, 'field', pool)
    stats = fit_normalisation(windows)
    t_out = teacher_cache(teacher, ds, pool, t_stats, runs / 'teacher-seed0-pool.npz')
    lab_pos = np.searchsorted(pool, labelled)
    student = train_student(cfg, windows, lab_pos, stats, t_out, progress=False,
                            state=runs / 'student.state.pt')
    fisher = fisher_diagonal(student, windows, stats, batches=3, batch_size=16)
    tuned = finetune_ewc(copy.deepcopy(student), cfg, windows.subset(lab_pos), stats, fisher,
                         10.0, steps=8, progress=False)
    torch.save({'teacher': teacher.state_dict(), 'student': student.state_dict(),
                'fisher': fisher, 'tuned': tuned.state_dict()},
               Path(out) / f'weights-rank{rank}-of{world}.pt')
    distributed.teardown()


if __name__ == '__main__':
    main(*sys.argv[1:])
