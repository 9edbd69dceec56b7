"""
softmaint-log: read the maintenance log written by the agent.

    softmaint-log query  [LOG] [--kind KIND ...] [--since T] [--until T] [--request-id ID]
                               [--limit N] [--json]
    softmaint-log export [LOG] OUT [--format csv|json] [--kind KIND ...] [--since T] [--until T]

LOG defaults to the agent's default, ~/.local/share/softmaint/maintenance.db.
T is seconds since the epoch or an ISO 8601 time (local time unless it has an offset). OUT '-'
writes to standard output; the format defaults to OUT's suffix. Reading never changes the log
and works while the agent is writing it.
"""
import argparse
from datetime import datetime
from pathlib import Path
import sys

from softmaint_core.maintenance_log import (DEFAULT_PATH, KINDS, LogError, MaintenanceLog,
                                            WRITERS)


def parse_time(text: str) -> float:
    """Seconds since the epoch from a number or an ISO 8601 time."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'{text!r} is neither seconds since the epoch nor an ISO 8601 time') from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='softmaint-log', description=__doc__.split('\n')[1])
    commands = parser.add_subparsers(dest='command', required=True)
    query = commands.add_parser('query', help='print entries as a table (or JSON)')
    export = commands.add_parser('export', help='write entries to a CSV or JSON file')
    for command in (query, export):
        command.add_argument('log', metavar='LOG', nargs='?', default=DEFAULT_PATH,
                             help=f'maintenance log file (default {DEFAULT_PATH})')
    export.add_argument('out', metavar='OUT', help="output file, '-' for standard output")
    export.add_argument('--format', choices=sorted(WRITERS),
                        help="output format (default: OUT's suffix, JSON for '-')")
    query.add_argument('--request-id', help='only entries of this assistance request')
    query.add_argument('--limit', type=int, help='at most this many entries (oldest first)')
    query.add_argument('--json', action='store_true', help='print JSON instead of a table')
    for command in (query, export):
        command.add_argument('--kind', action='append', choices=KINDS, default=[],
                             help='only entries of this kind (repeatable)')
        command.add_argument('--since', type=parse_time, help='only entries at or after T')
        command.add_argument('--until', type=parse_time, help='only entries at or before T')
    return parser


def _table(entries, stream) -> None:
    stream.write(f'{"id":>6}  {"time":<23}  {"kind":<15}  {"action":<20}  {"request":<16}  '
                 'summary\n')
    for e in entries:
        when = datetime.fromtimestamp(e.stamp).isoformat(sep=' ', timespec='milliseconds')
        stream.write(f'{e.id:>6}  {when:<23}  {e.kind:<15}  {e.action:<20}  '
                     f'{e.request_id:<16}  {e.summary}\n')
    stream.write(f'{len(entries)} entries\n')


def _output_format(args) -> str:
    if args.format:
        return args.format
    if args.out == '-':
        return 'json'
    suffix = Path(args.out).suffix.lower().lstrip('.')
    if suffix in WRITERS:
        return suffix
    raise ValueError(f'cannot tell the format of {args.out!r}: use --format or a .csv/.json '
                     'name')


def main(argv=None) -> int:
    """Run the command; return the exit status."""
    args = _parser().parse_args(argv)
    try:
        with MaintenanceLog(args.log, create=False) as log:
            entries = log.query(kinds=args.kind, since=args.since, until=args.until,
                                request_id=getattr(args, 'request_id', None),
                                limit=getattr(args, 'limit', None))
        if args.command == 'query':
            if args.json:
                WRITERS['json'](entries, sys.stdout)
            else:
                _table(entries, sys.stdout)
            return 0
        writer = WRITERS[_output_format(args)]
        if args.out == '-':
            writer(entries, sys.stdout)
        else:
            with open(args.out, 'w', newline='') as stream:
                writer(entries, stream)
            print(f'wrote {len(entries)} entries to {args.out}', file=sys.stderr)
        return 0
    except (LogError, ValueError, OSError) as err:
        print(f'softmaint-log: {err}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    raise SystemExit(main())
