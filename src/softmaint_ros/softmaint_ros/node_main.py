"""
One entry point for every node: init, spin until Ctrl-C / SIGTERM, shut down cleanly.

Signals set a flag that the spin loop reads between callbacks instead of raising inside rclpy
(softmaint_core.shutdown says why). A node that cannot start raises one of its `fatal`
exceptions from its constructor: the error is logged as fatal and `main` returns `fatal_exit`,
without a traceback. Whatever happens, the node is destroyed and the context shut down.

Nodes spin in rclpy's EventsExecutor unless they ask for another: it takes a message at about
half the CPU of the SingleThreadedExecutor (docs/benchmarks.md), and its timers follow /clock
under use_sim_time like the others'.
"""
from typing import Callable, Optional, Tuple, Type

import rclpy
from rclpy.executors import Executor, ExternalShutdownException
from rclpy.experimental import EventsExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from softmaint_core.shutdown import spin_until_stopped, stop_on_signals


def run_node(make_node: Callable[[], Node], name: str, args=None,
             make_executor: Callable[[], Executor] = EventsExecutor,
             fatal: Tuple[Type[BaseException], ...] = (), fatal_exit: int = 1,
             describe: Callable[[BaseException], str] = lambda err: f'cannot start: {err}',
             until: Optional[Callable[[Node], bool]] = None,
             finish: Optional[Callable[[Node], None]] = None) -> int:
    """
    Run the node `make_node()` builds until a signal, an external shutdown or `until(node)`.

    Return 0, or `fatal_exit` when building or running it raised one of `fatal` (logged as
    fatal under the logger `name`, in the words of `describe`). `finish(node)` runs after the
    spin, also after a signal.
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = stop_on_signals()
    node = None
    try:
        node = make_node()
        executor = make_executor()
        executor.add_node(node)
        spin_until_stopped(executor, stop, until=(lambda: until(node)) if until else
                           (lambda: False))
    except ExternalShutdownException:
        pass
    except fatal as err:
        rclpy.logging.get_logger(name).fatal(describe(err))
        return fatal_exit
    finally:
        _close(node, finish)
    return 0


def _close(node: Optional[Node], finish: Optional[Callable[[Node], None]]) -> None:
    """Run `finish`, then destroy the node and shut the context down even if it raised."""
    try:
        if node is not None and finish is not None:
            finish(node)
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
