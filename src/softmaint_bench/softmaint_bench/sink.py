"""
The bare subscriber of the transport baselines: the sensor topics without the suite.

    softmaint-bench-suite sink --namespace NS [--executor single|events]
"""
import argparse
import json

from softmaint_core.metrics import percentiles

from .streams import LOADS, reliable_qos, sensor_topics, SOURCES


def sink_main(args: argparse.Namespace) -> int:
    """Subscribe to the sensor topics like ingestion does, count; print JSON on SIGINT/SIGTERM."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.experimental import EventsExecutor
    from rclpy.signals import SignalHandlerOptions
    from softmaint_core.shutdown import spin_until_stopped, stop_on_signals
    # Spun like the ingestion node: our own signal handling, spin_once in a loop (the
    # EventsExecutor's spin() does not return on rclpy's SIGINT shutdown).
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    stop = stop_on_signals()
    node = rclpy.create_node('softmaint_bench_sink', namespace=args.namespace)
    counts, latency_ms = dict.fromkeys(SOURCES, 0), {s: [] for s in SOURCES}

    def receive(source, msg):
        now = node.get_clock().now().nanoseconds
        counts[source] += 1
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        latency_ms[source].append((now - stamp) / 1e6)

    rates = {s: max(load.rates[s] for load in LOADS.values()) for s in SOURCES}
    for source, (msg_type, topic) in sensor_topics(args.namespace).items():
        node.create_subscription(msg_type, topic, lambda m, s=source: receive(s, m),
                                 reliable_qos(rates[source]))
    executor = EventsExecutor() if args.executor == 'events' else SingleThreadedExecutor()
    executor.add_node(node)
    print('subscribed', flush=True)
    try:
        spin_until_stopped(executor, stop)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    print(json.dumps({'received': counts,
                      'latency_ms': {s: percentiles(v) for s, v in latency_ms.items()}}),
          flush=True)
    return 0
