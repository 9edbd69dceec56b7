"""EWC fine-tuning (softmaint_train.train.finetune_ewc) on field windows a robot recorded."""
import copy

import numpy as np

from conftest import tiny_config


def test_inputs_far_outside_the_training_range_do_not_drown_the_labels(
        synthetic_root, tmp_path):
    # A deep-sea pressure is ~10^4 training standard deviations: fine-tuning on such windows
    # must keep learning their labels, not regress the exploded features of that input.
    import torch
    from softmaint_train.checkpoints import build_student
    from softmaint_train.data import fit_normalisation, make_splits, open_dataset, Windows
    from softmaint_train.evaluate import student_outputs
    from softmaint_train.train import finetune_ewc, seed_everything
    cfg = tiny_config(synthetic_root, tmp_path)
    ds = open_dataset(synthetic_root)
    splits = make_splits(ds.array('episode'), ds.array('domain'), cfg.data)
    windows = Windows.load(ds, 'field', splits.field_train)
    stats = fit_normalisation(windows)
    seed_everything(0)
    student = build_student(cfg)
    fisher = {n: torch.zeros_like(p) for n, p in student.named_parameters()}

    def accuracy(model, rows):
        out = student_outputs(model, rows, stats)
        return float((out['damage'].mean(axis=1).argmax(-1) == rows.arrays['damage']).mean())

    trained = finetune_ewc(student, cfg, windows, stats, fisher, 0.0, steps=60, progress=False)
    deep = copy.deepcopy(windows)
    mean, std = (np.asarray(s) for s in stats['environment'])
    deep.arrays['environment'][..., -1] = mean[-1] + 1e4 * std[-1]
    before = accuracy(trained, deep)
    tuned = finetune_ewc(copy.deepcopy(trained), cfg, deep, stats, fisher, 0.0, steps=40,
                         progress=False)
    assert before < accuracy(tuned, deep)   # it learns them: a no-op would not be better


def test_finetune_command_reports_both_test_sets_and_marks_its_checkpoint(tmp_path, capsys):
    """softmaint-train finetune: EWC on new episodes; the result must get a model id of its own."""
    from softmaint_train.checkpoints import load_checkpoint
    from softmaint_train.cli import main
    from synthetic import make_dataset, tiny_student
    checkpoint = tiny_student(tmp_path, seed=0)
    new = make_dataset(tmp_path / 'new', episodes=40, windows=4, seed=1)
    out = tmp_path / 'tuned.pt'
    assert main(['finetune', '--checkpoint', str(checkpoint), '--new-data', str(new),
                 '--steps', '3', '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    assert 'old test: damage F1' in printed and 'new test: damage F1' in printed
    assert load_checkpoint(out)[1]['finetuned_from'] == str(checkpoint)
    assert main(['export', '--checkpoint', str(out)]) == 2
    assert 'give it a model id of its own' in capsys.readouterr().err
