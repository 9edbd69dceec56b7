"""
softmaint-dataset: generate simulated datasets, show their card, export episodes to rosbag2.

    softmaint-dataset generate --out DIR --episodes N --seed S --workers W [--field-fraction F]
                               [--shard-size K] [--profile NAME] [--shards A:B]
    softmaint-dataset merge OUT PART [PART ...]
    softmaint-dataset card DIR
    softmaint-dataset export-bag DIR --episodes 0:10 --out BAG_DIR [--start UNIX_SECONDS]

Generation is deterministic for a seed: episode i is drawn from its own generator seeded with
(seed, i), whatever the sharding or the number of workers. Shards are written atomically
(softmaint_core.dataset.write_shard), so a crashed worker leaves finished shards intact and a
rerun with the same arguments fills exactly the missing shards. A rerun with different arguments
into the same directory is refused. --profile generates the episodes of an application profile
(softmaint_sim.profiles: its workplace, physics and sensors); the card records it.

Across machines: each machine generates a range of shard indices (--shards A:B, shards of
--shard-size episodes) into its own directory, a *part* whose card stays incomplete; `merge`
collects the parts' shards into one dataset and writes its complete card. Parts of different
content parameters are refused.
"""
import argparse
from concurrent.futures import as_completed, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict
import json
import math
import multiprocessing
import os
from pathlib import Path
import shutil
import sys
import time
from typing import List, Optional, Sequence

import numpy as np
from softmaint_core import dataset as ds
from softmaint_core.profiles import PROFILES
from softmaint_core.spec import FIELD_SPEC, MODALITIES, TEACHER_SPEC
from softmaint_core.taxonomy import DAMAGE_TYPES, FATIGUE_LEVELS

from . import degradation as dg
from . import episode as ep
from . import profiles
from . import sensors
from .arm import FIELD_GEOMETRY, SIM_GEOMETRY
from .bag import export_episodes, ExportError, START_NS

# Latest --start of export-bag [s]: stamps are int64 nanoseconds, and a bag of many episodes
# must still fit after it (9.2e9 s is their limit; this is the year 2096).
MAX_START_S = 4e9

DEFAULT_SHARD_SIZE = 100
_GENERATOR: Optional[ep.EpisodeGenerator] = None


class CliError(RuntimeError):
    """A user error: the message says what to do."""


def generation_parameters(episodes: int, seed: int, field_fraction: float,
                          shard_size: int, profile: str = 'default') -> dict:
    """Parameters that determine a dataset's content (compared on resume)."""
    params = {
        'generator_version': ep.GENERATOR_VERSION, 'episodes': int(episodes), 'seed': int(seed),
        'field_fraction': float(field_fraction), 'shard_size': int(shard_size),
        'teacher_spec_id': TEACHER_SPEC.spec_id, 'field_spec_id': FIELD_SPEC.spec_id,
    }
    if profile != 'default':   # default datasets keep the cards they always had
        params['profile'] = profile
    return params


def physics_parameters(profile: str = 'default') -> dict:
    """Model constants recorded in the card (geometry, noise, rate laws)."""
    laws = {k: getattr(dg, k) for k in (
        'R_K', 'BETA', 'S0', 'DAMAGE_RATE', 'EA', 'T_REF', 'HUMIDITY_GAIN', 'CO2_GAIN',
        'LOAD_REF', 'LOAD_EXPONENT', 'DAMPING_GROWTH', 'CRACK_STIFFNESS_LOSS', 'CRACK_WIDTH',
        'PUNCTURE_AREA', 'ORIFICE_CD', 'AIR_DENSITY', 'AIR_STIFFNESS', 'REFERENCE_PRESSURE',
        'VALVE_TAU', 'CLOG_TAU_GAIN', 'CLOG_DEAD_TIME', 'DELAM_ARM_LOSS', 'DELAM_REST_ANGLE',
        'DELAM_LENGTH', 'DELAM_SOFTENING', 'DETECTABLE')}
    prof = profiles.sim_profile(profile)
    return {
        **({'profile': prof.to_dict()} if prof else {}),
        'geometry': {'sim': asdict(SIM_GEOMETRY), 'field': asdict(FIELD_GEOMETRY)},
        'noise': {'sim': asdict(sensors.SIM_NOISE), 'field': asdict(sensors.FIELD_NOISE)},
        'faults': {'p_drop': sensors.P_DROP, 'p_dead_taxel': sensors.P_DEAD_TAXEL,
                   'p_bias': sensors.P_BIAS, 'p_frozen': sensors.P_FROZEN,
                   'p_light_shift': sensors.P_LIGHT_SHIFT},
        'rate_laws': laws, 'warmup_s': ep.WARMUP, 'window_s': ep.WINDOW,
        'sensor_rates_hz': {'tactile': ep.SENSOR_RATE, 'proprio': ep.SENSOR_RATE,
                            'teacher_camera': ep.TEACHER_CAMERA_RATE,
                            'field_camera': ep.FIELD_CAMERA_RATE,
                            'environment': ep.ENV_RATE},
    }


def shard_ranges(episodes: int, shard_size: int) -> List[range]:
    """Episode index range of every shard."""
    return [range(start, min(start + shard_size, episodes))
            for start in range(0, episodes, shard_size)]


def _init_worker() -> None:
    global _GENERATOR
    _GENERATOR = ep.EpisodeGenerator()


def make_shard(root: str, shard: int, indices: range, seed: int, field_fraction: float,
               profile: str = 'default') -> int:
    """Generate and atomically write one shard; returns the shard index."""
    if _GENERATOR is None:
        _init_worker()
    prof = profiles.sim_profile(profile)
    rows = [ep.generate(_GENERATOR, seed, i, field_fraction, profile=prof) for i in indices]
    arrays = {name: np.stack([row[name] for row in rows]) for name in rows[0]}
    ds.write_shard(Path(root), shard, arrays)
    return shard


def _read_card(path: Path) -> dict:
    """Return the card at `path`; CliError when it is not one."""
    try:
        card = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CliError(f'{path} is not a readable dataset card ({err}): generate into a new '
                       'directory') from None
    if not isinstance(card, dict) or not isinstance(card.get('parameters', {}), dict):
        raise CliError(f'{path} is not a dataset card: generate into a new directory')
    return card


def _check_card(root: Path, params: dict) -> Optional[dict]:
    if root.exists() and not root.is_dir():
        raise CliError(f'{root} is a file: --out must be a directory (new, or one to resume)')
    card_path = root / ds.CARD
    if not card_path.exists():
        if root.exists() and any(root.iterdir()):
            raise CliError(f'{root} is not empty and has no {ds.CARD}: choose an empty or new '
                           'directory')
        return None
    card = _read_card(card_path)
    old = card.get('parameters', {})
    # Every key of either side: a default-profile run has no 'profile' key to compare.
    diff = {k: (old.get(k), params.get(k)) for k in sorted(set(old) | set(params))
            if old.get(k) != params.get(k)}
    if diff:
        text = ', '.join(f'{k}: existing {a!r} vs requested {b!r}' for k, (a, b) in diff.items())
        raise CliError(f'{root} holds a dataset generated with other parameters ({text}); '
                       'rerun with the same arguments to resume, or use another --out')
    return card


def summarise(root: Path) -> dict:
    """Class and domain counts over all complete shards."""
    data = ds.Dataset(root)
    fatigue, damage = data.array('fatigue'), data.array('damage')
    domain, mask = data.array('domain'), data.array('field_mask')
    urgency = data.array('urgency')
    return {
        'episodes': len(data),
        'fatigue': {n: int((fatigue == i).sum()) for i, n in enumerate(FATIGUE_LEVELS)},
        'damage': {n: int((damage == i).sum()) for i, n in enumerate(DAMAGE_TYPES)},
        'domain': {'sim': int((domain == 0).sum()), 'field': int((domain == 1).sum())},
        'field_modality_available': {n: int(mask[:, i].sum()) for i, n in enumerate(MODALITIES)},
        'urgency': {'mean': float(urgency.mean()), 'critical_fraction':
                    float((urgency >= 0.8).mean()),
                    'histogram_0.1': np.histogram(urgency, bins=10, range=(0, 1))[0].tolist()},
    }


def write_card(root: Path, params: dict, complete: bool, elapsed: float = 0.0,
               workers: int = 0, extra: Optional[dict] = None) -> dict:
    """Write card.json (atomically); `extra` adds provenance fields (e.g. merged parts)."""
    card = {
        'generator': 'softmaint_sim', 'generator_version': ep.GENERATOR_VERSION,
        'seed': params['seed'], 'parameters': params,
        'physics': physics_parameters(params.get('profile', 'default')),
        'complete': complete,
        'views': {'teacher': TEACHER_SPEC.to_dict(), 'field': FIELD_SPEC.to_dict()},
        'arrays': {
            **{f'{v}_{m}': list((v == 'teacher' and TEACHER_SPEC or FIELD_SPEC)
                                .modality(m).shape) for v in ds.VIEWS for m in MODALITIES},
            'labels': list(ds.LABELS)},
        'units': {'tactile': 'N', 'proprio': 'joints/bend angles [rad], commanded chamber '
                  'pressure [kPa], measured chamber pressure [kPa]',
                  'environment': 'temperature degC, humidity 0-1, co2 ppm, pressure kPa',
                  'camera': 'uint8 RGB, round(x * 255)'},
        'classes': {'fatigue': list(FATIGUE_LEVELS), 'damage': list(DAMAGE_TYPES)},
        'privileged_columns': list(ep.PRIVILEGED_COLUMNS),
        'field_mask_order': list(MODALITIES),
        'shards': [ds.shard_name(i) for i in ds.completed_shards(root)],
    }
    if complete:
        card['counts'] = summarise(root)
    if complete or elapsed:
        card['generation_seconds'] = round(elapsed, 1)
        card['workers'] = workers
    card.update(extra or {})
    tmp = root / f'.{ds.CARD}.tmp'
    tmp.write_text(json.dumps(card, indent=2, sort_keys=True))
    os.replace(tmp, root / ds.CARD)
    return card


def generate(out: Path, episodes: int, seed: int, workers: int, field_fraction: float = 0.1,
             shard_size: int = DEFAULT_SHARD_SIZE, progress: bool = True,
             profile: str = 'default', shards: Optional[range] = None) -> dict:
    """
    Generate (or resume) a dataset; return its card.

    `shards`: only these shard indices (a part of the dataset, for one machine of several);
    the card is complete only once every shard of the dataset is in `out`.
    """
    if episodes < 1:
        raise CliError(f'--episodes must be >= 1, got {episodes}')
    if seed < 0:
        raise CliError(f'--seed must be >= 0, got {seed}')
    check_shard_size(shard_size)
    if not 0.0 <= field_fraction <= 1.0:
        raise CliError(f'--field-fraction must be in [0, 1], got {field_fraction}')
    if workers < 1:
        raise CliError(f'--workers must be >= 1, got {workers}')
    if profile not in PROFILES:
        raise CliError(f'--profile {profile!r} is not one of {sorted(PROFILES)}')
    out = Path(out)
    params = generation_parameters(episodes, seed, field_fraction, shard_size, profile)
    _check_card(out, params)
    out.mkdir(parents=True, exist_ok=True)
    removed = ds.remove_partial_shards(out)
    if removed:
        print(f'removed {removed} partial shard(s) of an interrupted run', file=sys.stderr)
    write_card(out, params, complete=False)
    ranges = shard_ranges(episodes, shard_size)
    wanted = range(len(ranges)) if shards is None else shards
    done = set(ds.completed_shards(out))
    todo = [i for i in wanted if i not in done]
    from tqdm import tqdm
    bar = tqdm(total=sum(len(ranges[i]) for i in wanted),
               initial=sum(len(ranges[i]) for i in wanted if i in done), unit='ep',
               disable=not progress, desc=f'generate {out.name}')
    start = time.monotonic()
    try:
        if workers == 1:
            for i in todo:
                make_shard(str(out), i, ranges[i], seed, field_fraction, profile)
                bar.update(len(ranges[i]))
        elif todo:
            context = multiprocessing.get_context('spawn')
            with ProcessPoolExecutor(workers, mp_context=context,
                                     initializer=_init_worker) as pool:
                futures = {pool.submit(make_shard, str(out), i, ranges[i], seed,
                                       field_fraction, profile): i for i in todo}
                for future in as_completed(futures):
                    bar.update(len(ranges[future.result()]))
    except BrokenProcessPool as err:
        raise CliError(f'a worker process died ({err}); finished shards are intact: rerun the '
                       'same command to generate the missing ones') from err
    finally:
        bar.close()
    complete = set(ds.completed_shards(out)) >= set(range(len(ranges)))
    return write_card(out, params, complete=complete, elapsed=time.monotonic() - start,
                      workers=workers)


def check_shard_size(shard_size: int) -> None:
    """Raise CliError unless shard_size is a usable number of episodes per shard."""
    if shard_size < 1:
        raise CliError(f'--shard-size must be >= 1, got {shard_size}')


def parse_shards(text: str, episodes: int, shard_size: int) -> range:
    """'A:B' -> the shard indices A..B-1 of a dataset of `episodes` in shards of shard_size."""
    check_shard_size(shard_size)
    count = len(shard_ranges(episodes, shard_size))
    try:
        a, b = (int(x) for x in text.split(':'))
    except ValueError as err:
        raise CliError(f'--shards {text!r}: use A:B (shard indices A to B-1)') from err
    if not 0 <= a < b <= count:
        raise CliError(f'--shards {text}: need 0 <= A < B <= {count} (the dataset has {count} '
                       f'shards of {shard_size} episodes)')
    return range(a, b)


def _same_files(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir())
    return names == sorted(p.name for p in b.iterdir()) and all(
        (a / n).read_bytes() == (b / n).read_bytes() for n in names)


def _copy_shard(source: Path, root: Path, index: int) -> None:
    """Copy (hard-link where possible) one complete shard into root, atomically."""
    shards = root / ds.SHARDS
    shards.mkdir(parents=True, exist_ok=True)
    tmp = shards / f'.tmp-{ds.shard_name(index)}-{os.getpid()}'
    shutil.rmtree(tmp, ignore_errors=True)

    def link_or_copy(src, dst):
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, tmp, copy_function=link_or_copy)
    os.replace(tmp, shards / ds.shard_name(index))


def merge(out: Path, parts: Sequence[Path]) -> dict:
    """
    Merge parts (shard ranges generated apart) into one dataset with a complete card.

    Every part must have the same content parameters and physics. A shard present in several
    parts must be byte-identical. Crash-safe like generate: shards are copied atomically and
    a rerun of the same merge copies only the missing ones.
    """
    out, parts = Path(out), [Path(p) for p in parts]
    if not parts:
        raise CliError('merge: name at least one part directory')
    cards = []
    for part in parts:
        path = part / ds.CARD
        if not path.is_file():
            raise CliError(f'{path} not found: {part} is not a dataset part')
        cards.append(_read_card(path))
    first = cards[0]
    for part, card in zip(parts[1:], cards[1:]):
        for field in ('parameters', 'physics'):
            a, b = first.get(field, {}), card.get(field, {})
            diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            if diff:
                text = ', '.join(f'{k}: {a.get(k)!r} in {parts[0]} vs {b.get(k)!r} in {part}'
                                 for k in diff)
                raise CliError(f'{part} is not a part of the same dataset as {parts[0]}: '
                               f'{field} differ ({text}); merge only parts generated with the '
                               'same --episodes, --seed, --field-fraction, --shard-size, '
                               '--profile and generator version')
    params = first['parameters']
    provenance = {'merged_from': [
        {'path': str(p), 'shards': [ds.shard_name(i) for i in ds.completed_shards(p)],
         'generation_seconds': c.get('generation_seconds'), 'workers': c.get('workers')}
        for p, c in zip(parts, cards)]}
    _check_card(out, params)
    out.mkdir(parents=True, exist_ok=True)
    ds.remove_partial_shards(out)
    write_card(out, params, complete=False)
    present = set(ds.completed_shards(out))
    for part in parts:
        if part.resolve() == out.resolve():
            continue
        for index in ds.completed_shards(part):
            source = part / ds.SHARDS / ds.shard_name(index)
            if index in present:
                if not _same_files(source, out / ds.SHARDS / ds.shard_name(index)):
                    raise CliError(f'shard {index} of {part} differs from the one already '
                                   f'in {out}: the parts are not of one dataset')
                continue
            _copy_shard(source, out, index)
            present.add(index)
    count = len(shard_ranges(params['episodes'], params['shard_size']))
    missing = sorted(set(range(count)) - present)
    seconds = sum(c.get('generation_seconds') or 0.0 for c in cards)
    workers = sum(c.get('workers') or 0 for c in cards)
    card = write_card(out, params, complete=not missing, elapsed=seconds, workers=workers,
                      extra=provenance)
    if missing:
        raise CliError(f'{out} lacks {len(missing)} of {count} shards ({_ranges(missing)}): '
                       'generate them with --shards and merge again')
    return card


def _ranges(indices: List[int]) -> str:
    """[0, 1, 2, 5] -> '0:3, 5:6' (shard index ranges as --shards takes them)."""
    spans, start = [], indices[0]
    for prev, cur in zip(indices, indices[1:] + [None]):
        if cur != prev + 1:
            spans.append(f'{start}:{prev + 1}')
            start = cur
    return ', '.join(spans)


def load(root: Path) -> ds.Dataset:
    """Memory-mapped dataset; refuses an incomplete one."""
    data = ds.Dataset(root)
    if not data.card.get('complete'):
        raise ds.DatasetError(f'{root} is incomplete: rerun its generate command to finish it')
    return data


def parse_range(text: str, total: int) -> List[int]:
    """'3', '0:10', '1,5,7' -> episode indices."""
    try:
        if ':' in text:
            a, b = text.split(':')
            indices = list(range(int(a or 0), int(b) if b else total))
        else:
            indices = [int(x) for x in text.split(',')]
    except ValueError as err:
        raise CliError(f'--episodes {text!r}: use N, A:B or A,B,C') from err
    bad = [i for i in indices if not 0 <= i < total]
    if bad:
        raise CliError(f'--episodes {bad[:3]} out of range [0, {total})')
    return indices


def _print_result(card: dict, out: Path) -> None:
    if not card['complete']:
        print(f"part of a dataset in {out}: shards {', '.join(card['shards'])} "
              f"({card['generation_seconds']} s); merge the parts with softmaint-dataset merge")
        return
    counts = card['counts']
    print(f"{counts['episodes']} episodes in {out} ({card['generation_seconds']} s); "
          f"fatigue {counts['fatigue']}, damage {counts['damage']}, domain {counts['domain']}")


def main(argv=None) -> int:
    """Entry point of softmaint-dataset."""
    parser = argparse.ArgumentParser(prog='softmaint-dataset',
                                     description=__doc__.strip().split('\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    gen = sub.add_parser('generate', help='generate or resume a dataset')
    gen.add_argument('--out', required=True, type=Path)
    gen.add_argument('--episodes', required=True, type=int)
    gen.add_argument('--seed', required=True, type=int)
    gen.add_argument('--workers', type=int, default=max(1, os.cpu_count() or 1))
    gen.add_argument('--field-fraction', type=float, default=0.1,
                     help='fraction of episodes in the field-shifted domain (default 0.1)')
    gen.add_argument('--shard-size', type=int, default=DEFAULT_SHARD_SIZE)
    gen.add_argument('--profile', default='default',
                     help=f'application profile, one of {sorted(PROFILES)} (default: default)')
    gen.add_argument('--shards', metavar='A:B',
                     help="generate only shards A to B-1 (one machine's part; see merge)")
    gen.add_argument('--no-progress', action='store_true')
    join = sub.add_parser('merge', help='merge parts generated with --shards into one dataset')
    join.add_argument('out', type=Path, help='the merged dataset (new, or an unfinished merge)')
    join.add_argument('parts', type=Path, nargs='+', help='part directories')
    card = sub.add_parser('card', help='print the dataset card')
    card.add_argument('dir', type=Path)
    card.add_argument('--digest', action='store_true',
                      help="print only the dataset's identity, which model cards pin as "
                           'dataset_card_sha256 (the same for a regenerated copy)')
    bag = sub.add_parser('export-bag', help='export episodes to a rosbag2 (MCAP) directory')
    bag.add_argument('dir', type=Path)
    bag.add_argument('--episodes', required=True, help='N, A:B or A,B,C')
    bag.add_argument('--out', required=True, type=Path)
    bag.add_argument('--start', type=float, default=START_NS * 1e-9,
                     help='stamp of the first episode, seconds since the epoch (default '
                     '2026-01-01T00:00:00Z); bags meant to be read together need '
                     'stamps that do not overlap')
    args = parser.parse_args(argv)
    try:
        if args.command == 'generate':
            shards = args.shards and parse_shards(args.shards, args.episodes,
                                                  args.shard_size)
            result = generate(args.out, args.episodes, args.seed, args.workers,
                              args.field_fraction, args.shard_size, not args.no_progress,
                              args.profile, shards)
            _print_result(result, args.out)
        elif args.command == 'merge':
            _print_result(merge(args.out, args.parts), args.out)
        elif args.command == 'card':
            path = args.dir / ds.CARD
            if not path.is_file():
                raise CliError(f'{path} not found: generate the dataset first')
            print(ds.card_digest(args.dir) if args.digest else path.read_text())
        else:
            if not (math.isfinite(args.start) and 0 <= args.start <= MAX_START_S):
                raise CliError(f'--start must be seconds since the epoch in [0, '
                               f'{MAX_START_S:.0f}], got {args.start}')
            data = load(args.dir)   # a part's positions are not its episode numbers
            indices = parse_range(args.episodes, len(data))
            count = export_episodes(data, indices, args.out, round(args.start * 1e9))
            print(f'wrote {count} messages of {len(indices)} episodes to {args.out}')
    except (CliError, ds.DatasetError, ExportError, OSError) as err:
        print(f'softmaint-dataset: error: {err}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
