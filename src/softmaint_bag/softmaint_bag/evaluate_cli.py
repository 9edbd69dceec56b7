"""
Evaluate a recorded bag offline: the suite's predictions and decisions, metrics and a report.

    softmaint-evaluate-bag BAG --model models/student.onnx [--params config/softmaint.yaml]
                           --out DIR [--namespace NS]

Writes DIR/metrics.json (counts, throughput, accuracy and confusion matrices against
softmaint/ground_truth when the bag has it), DIR/windows.jsonl (one line per window: end stamp,
available inputs, probabilities, urgency, uncertainty, decision), DIR/report.md and the plots
DIR/timeline.png and DIR/confusion.png. Exit status 2 on a bag, model or parameter file that
cannot be used, with the reason on stderr.
"""
import argparse
import json
import math
from pathlib import Path
import sys
from typing import Dict, List

import numpy as np
from softmaint_core.metrics import confusion_matrix
from softmaint_core.taxonomy import DAMAGE_TYPES, FATIGUE_LEVELS
from softmaint_core.timeline import against_truth_lines, latest_before

from .evaluate import evaluate, Evaluation, EvaluationError, load_params
from .reading import BagError


def confusion(evaluation: Evaluation, head: str) -> List[List[int]]:
    """Return counts [true class][predicted class] of `head` over windows with ground truth."""
    classes = FATIGUE_LEVELS if head == 'fatigue' else DAMAGE_TYPES
    timeline = evaluation.timeline
    pairs = [(getattr(truth, head), getattr(predicted, head))
             for predicted in timeline.predictions
             if (truth := latest_before(timeline.truth, predicted.stamp)) is not None]
    labels, preds = np.array(pairs, dtype=int).reshape(-1, 2).T
    return confusion_matrix(labels, preds, len(classes)).tolist()


def metrics(evaluation: Evaluation) -> Dict[str, object]:
    """Return the JSON-ready metrics of an evaluation."""
    e = evaluation
    predictions = [w for w in e.windows if w.prediction is not None]
    out = {
        'bag': e.bag, 'model_id': e.model_id,
        'windows': len(e.windows), 'predictions': len(predictions),
        'skipped_no_input': e.skipped_no_input, 'decision_changes': len(e.changes),
        'bag_seconds': e.bag_seconds, 'wall_seconds': e.wall_seconds,
        'windows_per_second': len(e.windows) / e.wall_seconds if e.wall_seconds else math.inf,
        'realtime_factor': e.bag_seconds / e.wall_seconds if e.wall_seconds else math.inf,
        'messages': e.messages, 'undecodable': e.undecodable, 'rejected': e.rejected,
        'out_of_training_range': e.out_of_range,
        'missing_topics': e.missing_topics, 'ignored_topics': e.ignored_topics,
        'has_ground_truth': bool(e.timeline.truth),
    }
    if e.timeline.truth:
        for head in ('fatigue', 'damage'):
            matrix = np.asarray(confusion(e, head))
            out[f'{head}_confusion'] = matrix.tolist()
            out[f'{head}_accuracy'] = (float(np.trace(matrix) / matrix.sum())
                                       if matrix.sum() else math.nan)
        out['timeline'] = e.timeline.summary(e.thresholds)
    return out


def window_lines(evaluation: Evaluation):
    """Yield one JSON-ready dict per window (for comparisons with a live replay)."""
    for w in evaluation.windows:
        line = {'end_ns': w.end_ns, 'available': list(w.available)}
        if w.prediction is not None:
            p = w.prediction
            line.update(fatigue_probs=p.fatigue_probs.tolist(),
                        damage_probs=p.damage_probs.tolist(), urgency=p.urgency,
                        uncertainty=p.uncertainty, action=w.decision.action.label,
                        workload_limit=w.decision.workload_limit)
        yield line


def plot_confusion(values: Dict[str, object], path: Path) -> Path:
    """Write the fatigue and damage confusion matrices side by side as a PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, head, classes in zip(axes, ('fatigue', 'damage'), (FATIGUE_LEVELS, DAMAGE_TYPES)):
        matrix = np.asarray(values[f'{head}_confusion'])
        ax.imshow(matrix, cmap='Blues')
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(j, i, str(count), ha='center', va='center', fontsize=8)
        ax.set_xticks(range(len(classes)), classes, rotation=45, fontsize=8)
        ax.set_yticks(range(len(classes)), classes, fontsize=8)
        ax.set_xlabel('predicted')
        ax.set_ylabel('true')
        ax.set_title(f'{head} (accuracy {values[f"{head}_accuracy"]:.2f})', fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def markdown(values: Dict[str, object], plots: List[str]) -> str:
    """Return the Markdown report of the metrics."""
    v = values
    lines = [f'# Offline evaluation of {v["bag"]}', '',
             f'Model `{v["model_id"]}`. {v["windows"]} windows over {v["bag_seconds"]:.1f} s of '
             f'bag, {v["predictions"]} predictions ({v["skipped_no_input"]} windows without any '
             f'available input), {v["decision_changes"]} decision changes. Evaluated in '
             f'{v["wall_seconds"]:.2f} s: {v["windows_per_second"]:.1f} windows/s, '
             f'{v["realtime_factor"]:.1f}x real time.', '',
             '## Input', '', '| topic | messages | undecodable |', '|---|---|---|']
    for topic, count in sorted(v['messages'].items()):
        lines.append(f'| {topic} | {count} | {v["undecodable"].get(topic, 0)} |')
    lines += ['', f'Rejected samples (by reason, as on /diagnostics): {v["rejected"]}.',
              "Windows with a channel outside the model's training range (used, as onboard): "
              f'{v["out_of_training_range"] or "none"}.',
              f'Missing sensor topics: {v["missing_topics"] or "none"}. Topics not read: '
              f'{v["ignored_topics"] or "none"}.', '']
    if v['has_ground_truth']:
        t = v['timeline']
        lines += ['## Against ground truth', '',
                  f'Fatigue accuracy {v["fatigue_accuracy"]:.3f}, damage accuracy '
                  f'{v["damage_accuracy"]:.3f}, urgency MAE {t["urgency_mae"]:.3f}.', '',
                  '| onset [s] | head | label | detected after [s] | acted after [s] |',
                  '|---|---|---|---|---|']
        for onset in t['onsets']:
            lines.append(f'| {onset["stamp"] - t["start"]:.1f} | {onset["head"]} | '
                         f'{onset["label"]} | {onset["detected_after"]} | '
                         f'{onset["acted_after"]} |')
        lines += ['', 'Seconds per decision: ' + ', '.join(
            f'{k} {s:.0f}' for k, s in t['decision_seconds'].items()) + '.', '']
        if 'decisions_against_truth' in t:
            lines += against_truth_lines(t['decisions_against_truth']) + ['']
    else:
        lines += ['The bag has no softmaint/ground_truth: no accuracy.', '']
    lines += [f'![{name}]({name})' for name in plots]
    return '\n'.join(lines) + '\n'


def write_report(evaluation: Evaluation, out: Path) -> Dict[str, object]:
    """Write metrics.json, windows.jsonl, the plots and report.md into `out`; return metrics."""
    out.mkdir(parents=True, exist_ok=True)
    values = metrics(evaluation)
    (out / 'metrics.json').write_text(json.dumps(values, indent=2, default=float) + '\n')
    with open(out / 'windows.jsonl', 'w') as stream:
        for line in window_lines(evaluation):
            stream.write(json.dumps(line) + '\n')
    from softmaint_core.timeline_plot import plot_faults, plot_timeline
    plots = [plot_timeline(evaluation.timeline, out / 'timeline.png',
                           f'{Path(evaluation.bag).name}: offline evaluation').name]
    plots += [path.name for path in plot_faults(evaluation.timeline, out)]
    if values['has_ground_truth']:
        plots.append(plot_confusion(values, out / 'confusion.png').name)
    (out / 'report.md').write_text(markdown(values, plots))
    return values


def main(args=None) -> int:
    """Entry point of softmaint-evaluate-bag."""
    parser = argparse.ArgumentParser(prog='softmaint-evaluate-bag',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('bag', type=Path, help='rosbag2 directory (sqlite3 or MCAP)')
    parser.add_argument('--model', type=Path, required=True, help='student ONNX file')
    parser.add_argument('--params', type=Path,
                        help="the suite's parameter YAML (default: the nodes' defaults)")
    parser.add_argument('--namespace', default='', help='robot namespace of the topics')
    parser.add_argument('--out', type=Path, required=True, help='report directory')
    options = parser.parse_args(sys.argv[1:] if args is None else args)
    from softmaint_core.student import ModelError, StudentModel
    try:
        model = StudentModel(options.model)
        evaluation = evaluate(options.bag, model, load_params(options.params),
                              options.namespace)
    except (BagError, EvaluationError, ModelError) as err:
        print(f'softmaint-evaluate-bag: {err}', file=sys.stderr)
        return 2
    try:
        values = write_report(evaluation, options.out)
    except OSError as err:
        print(f'softmaint-evaluate-bag: cannot write the report to {options.out}: {err}',
              file=sys.stderr)
        return 2
    print(f'{values["windows"]} windows, {values["predictions"]} predictions in '
          f'{values["wall_seconds"]:.2f} s ({values["windows_per_second"]:.1f} windows/s, '
          f'{values["realtime_factor"]:.1f}x real time); report in {options.out}', flush=True)
    for topic in values['missing_topics']:
        print(f'warning: sensor topic {topic} is not in the bag', file=sys.stderr)
    for topic, count in values['undecodable'].items():
        print(f'warning: {count} messages on {topic} could not be decoded', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
