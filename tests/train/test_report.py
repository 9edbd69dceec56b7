"""Report tables: ablation deltas are paired by seed, teachers are counted once."""
from softmaint_train.evaluate import ABLATION_KEYS, ablation_table, headline_table


def record(variant, seed, damage_f1, fraction=0.01, teacher_seed=0):
    metrics = {key: 0.5 for key, _ in ABLATION_KEYS}
    metrics['damage.macro_f1'] = damage_f1
    return {'variant': variant, 'seed': seed, 'label_fraction': fraction,
            'teacher_seed': teacher_seed, 'student': {'all': metrics},
            'teacher': {'damage.macro_f1': 0.9}}


def test_ablation_deltas_are_paired_by_seed_in_points():
    records = [record('distilled', 0, 0.60), record('distilled', 1, 0.70),
               record('no_kd', 0, 0.55), record('no_kd', 1, 0.66),
               record('scratch', 0, 0.40)]
    table = ablation_table(records)
    lines = table.splitlines()
    assert len(lines) == 4                     # header, rule, reference, one ablation
    assert lines[2].startswith('| distilled (reference) | 1 % | 2 |')
    assert lines[3].startswith('| no_kd | 1 % | 2 | 0.605 ± 0.055 |')
    assert lines[3].endswith('| -4.5 ± 0.5 |')   # paired: -5 and -4 points
    assert 'scratch' not in table
    assert ablation_table(records[:2] + records[4:]) == ''


def test_shared_teacher_is_one_row_with_one_seed():
    records = [record('distilled', s, 0.6) for s in range(3)]
    teacher_row = headline_table(records).splitlines()[2]
    assert teacher_row.startswith('| teacher (upper bound, teacher view) | sim 100 % | 1 |')


def test_records_load_from_jsonl_and_from_one_record_json(tmp_path):
    import json
    from softmaint_train.evaluate import load_records
    records = [record('distilled', 0, 0.6), record('scratch', 0, 0.4)]
    lines = tmp_path / 'results.jsonl'
    lines.write_text(''.join(json.dumps(r) + '\n' for r in records))
    one = tmp_path / 'record.json'
    one.write_text(json.dumps(records[0], indent=2))
    assert load_records(lines) == records
    assert load_records(one) == records[:1]
