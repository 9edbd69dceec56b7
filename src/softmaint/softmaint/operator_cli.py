"""
softmaint-operator: see and answer the maintenance agent's assistance requests.

    softmaint-operator list    [--json]
    softmaint-operator answer  REQUEST_ID (--action ACTION | --false-alarm) --operator NAME
                               [--note TEXT] [--fatigue CLASS] [--damage CLASS] [--urgency U]
    softmaint-operator history [--limit N] [--kind KIND ...] [--json]

`list` shows each open request with its context: why the agent asks, the actions its
prediction set calls for, the level it holds meanwhile and the newest window's numbers.
`answer` goes through softmaint/acknowledge (the agent logs who answered and when, then acts on
it); --false-alarm answers "nothing to decide here": the agent keeps the level it holds. The
labels (--fatigue, --damage, --urgency) are what the operator observed; they feed fine-tuning
from field recordings. `history` shows the newest maintenance log entries. Every subcommand
takes --namespace (one robot of a fleet) and --timeout; tools can call the services directly
(softmaint/list_requests, softmaint/acknowledge).
"""
import argparse
from datetime import datetime, timezone
import json
import math
import sys
from typing import List, Optional

from softmaint_core import topics
from softmaint_core.maintenance_log import KINDS
from softmaint_core.messages import stamp_seconds
from softmaint_core.settings import Action, LEVELS
from softmaint_core.taxonomy import DAMAGE_TYPES, FATIGUE_LEVELS

EXIT_REFUSED, EXIT_UNREACHABLE = 1, 3
# Stamps below this are a simulated clock (seconds since its start), not wall-clock time.
WALL_CLOCK_AFTER = 1e9


class Unreachable(RuntimeError):
    """No agent answered in time."""


def format_time(seconds: float) -> str:
    """Return a stamp as UTC ISO 8601, or as seconds when it is a simulated clock."""
    if seconds < WALL_CLOCK_AFTER:
        return f'{seconds:.1f} s (sim time)'
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec='seconds')


def _pairs(key_values) -> dict:
    return {kv.key: kv.value for kv in key_values}


def request_dict(msg) -> dict:
    """Return an AssistanceRequest as plain data (for --json and for printing)."""
    return {'request_id': msg.request_id, 'opened': stamp_seconds(msg.opened),
            'updated': stamp_seconds(msg.updated), 'priority': msg.priority,
            'reasons': list(msg.reasons), 'reason': msg.reason,
            'candidate_actions': list(msg.candidate_actions), 'level': msg.level,
            'evidence': _pairs(msg.evidence), 'model_id': msg.model_id}


def entry_dict(msg) -> dict:
    """Return a MaintenanceLogEntry as plain data."""
    return {'stamp': stamp_seconds(msg.stamp), 'kind': msg.kind, 'action': msg.action,
            'summary': msg.summary, 'request_id': msg.request_id, 'model_id': msg.model_id,
            'evidence': _pairs(msg.evidence)}


def describe_request(request: dict) -> str:
    """Return what the person answering a request needs to read, as text lines."""
    e = request['evidence']
    candidates = ', '.join(request['candidate_actions']) or 'none recorded'
    return '\n'.join([
        f"{request['request_id']}  priority {request['priority']}, open since "
        f"{format_time(request['opened'])}, last window {format_time(request['updated'])}",
        f"  why:        {request['reason']}",
        f"  reasons:    {', '.join(request['reasons'])}",
        f"  candidates: {candidates} (holding {request['level']} meanwhile)",
        f"  window:     urgency {e.get('urgency', '?')} ± {e.get('urgency_std', '?')}, fatigue "
        f"set {{{e.get('fatigue_set', '?')}}}, damage set {{{e.get('damage_set', '?')}}}, "
        f"inputs {e.get('inputs', '?')}, model {request['model_id'] or '?'}",
        f"  answer:     softmaint-operator answer {request['request_id']} --operator NAME "
        f"--action {{{','.join(request['candidate_actions']) or 'ACTION'}}} | --false-alarm"])


def describe_entry(entry: dict) -> str:
    """Return one maintenance log entry as a line."""
    action = f" {entry['action']}" if entry['action'] else ''
    request = f" [{entry['request_id']}]" if entry['request_id'] else ''
    return f"{format_time(entry['stamp'])}  {entry['kind']}{action}{request}: {entry['summary']}"


class AgentClient:
    """An rclpy node in a private context that calls the agent's services."""

    def __init__(self, namespace: str, timeout: float):
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from softmaint_interfaces.srv import AcknowledgeAssistance, ListAssistanceRequests
        self._timeout = timeout
        self._context = Context()
        rclpy.init(context=self._context)
        self.node = rclpy.create_node('softmaint_operator', namespace=namespace,
                                      context=self._context)
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self.node)
        self._list = self.node.create_client(ListAssistanceRequests, topics.LIST_REQUESTS)
        self._acknowledge = self.node.create_client(AcknowledgeAssistance, topics.ACKNOWLEDGE)
        self.types = ListAssistanceRequests, AcknowledgeAssistance

    def _call(self, client, request):
        if not client.wait_for_service(timeout_sec=self._timeout):
            raise Unreachable(f'no agent serves {self.node.resolve_service_name(client.srv_name)}'
                              f' within {self._timeout:g} s: is the suite running, on the same '
                              'ROS_DOMAIN_ID, and is --namespace right?')
        future = client.call_async(request)
        self._executor.spin_until_future_complete(future, timeout_sec=self._timeout)
        if not future.done():
            raise Unreachable(f'the agent did not answer within {self._timeout:g} s')
        return future.result()

    def list_requests(self, history_limit: int = 0, kinds: List[str] = ()):
        """Call softmaint/list_requests; return its response."""
        return self._call(self._list, self.types[0].Request(
            history_limit=history_limit, history_kinds=list(kinds)))

    def acknowledge(self, **fields):
        """Call softmaint/acknowledge; return its response."""
        return self._call(self._acknowledge, self.types[1].Request(**fields))

    def close(self) -> None:
        """Destroy the node and shut its context down."""
        self._executor.shutdown()
        self.node.destroy_node()
        self._context.try_shutdown()


def _class_index(classes, name: Optional[str]) -> int:
    return -1 if name is None else classes.index(name)


def _answer(client: AgentClient, args) -> int:
    action = args.action
    if args.false_alarm:
        open_requests = {r.request_id: r for r in client.list_requests().open_requests}
        if args.request_id not in open_requests:
            print(f'{args.request_id} is not open; open: {sorted(open_requests) or "none"}',
                  file=sys.stderr)
            return EXIT_REFUSED
        action = open_requests[args.request_id].level
    note = f'false alarm. {args.note}'.strip() if args.false_alarm else args.note
    response = client.acknowledge(
        request_id=args.request_id, operator_name=args.operator,
        action=int(Action[action.upper()]), note=note,
        fatigue_label=_class_index(FATIGUE_LEVELS, args.fatigue),
        damage_label=_class_index(DAMAGE_TYPES, args.damage),
        urgency_label=math.nan if args.urgency is None else args.urgency)
    print(response.message, file=sys.stdout if response.accepted else sys.stderr)
    return 0 if response.accepted else EXIT_REFUSED


def _list(client: AgentClient, args) -> int:
    requests = [request_dict(r) for r in client.list_requests().open_requests]
    if args.json:
        print(json.dumps(requests, indent=2))
    else:
        print('\n\n'.join(map(describe_request, requests)) or 'no open assistance requests')
    return 0


def _history(client: AgentClient, args) -> int:
    response = client.list_requests(args.limit, args.kind or [])
    if not response.success:
        print(f'refused: {response.message}', file=sys.stderr)
        return EXIT_REFUSED
    entries = [entry_dict(e) for e in response.history]
    if args.json:
        print(json.dumps(entries, indent=2))
    else:
        print('\n'.join(map(describe_entry, entries)) or 'the maintenance log is empty')
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='softmaint-operator',
                                     description=__doc__.strip().split('\n')[0])
    parser.add_argument('--namespace', default='/', help="the robot's namespace (default /)")
    parser.add_argument('--timeout', type=float, default=5.0,
                        help='seconds to wait for the agent (default 5)')
    commands = parser.add_subparsers(dest='command', required=True)
    listing = commands.add_parser('list', help='open assistance requests with their context')
    listing.add_argument('--json', action='store_true', help='print JSON')
    answer = commands.add_parser('answer', help='answer an assistance request')
    answer.add_argument('request_id')
    choice = answer.add_mutually_exclusive_group(required=True)
    choice.add_argument('--action', choices=[a.label for a in LEVELS],
                        help='the action the robot shall take')
    choice.add_argument('--false-alarm', action='store_true',
                        help='nothing to decide: keep the level the agent holds')
    answer.add_argument('--operator', required=True, help='who answers (logged)')
    answer.add_argument('--note', default='', help='free text (logged)')
    answer.add_argument('--fatigue', choices=FATIGUE_LEVELS, help='observed fatigue level')
    answer.add_argument('--damage', choices=DAMAGE_TYPES, help='observed damage type')
    answer.add_argument('--urgency', type=float, help='observed urgency in [0, 1]')
    history = commands.add_parser('history', help='newest maintenance log entries')
    history.add_argument('--limit', type=int, default=20, help='entries (default 20)')
    history.add_argument('--kind', action='append', choices=KINDS, help='only this kind')
    history.add_argument('--json', action='store_true', help='print JSON')
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run one subcommand against the agent."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == 'answer' and args.urgency is not None and not 0 <= args.urgency <= 1:
        parser.error(f'--urgency must be in [0, 1], got {args.urgency}')
    client = AgentClient(args.namespace, args.timeout)
    try:
        return {'list': _list, 'answer': _answer, 'history': _history}[args.command](
            client, args)
    except Unreachable as err:
        print(f'softmaint-operator: {err}', file=sys.stderr)
        return EXIT_UNREACHABLE
    finally:
        client.close()


if __name__ == '__main__':
    sys.exit(main())
