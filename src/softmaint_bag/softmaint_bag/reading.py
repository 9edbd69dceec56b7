"""
ROS-free reading of rosbag2 bags (sqlite3 or MCAP) with `rosbags`.

Turns a bag into a time-ordered stream of (topic, type, bag time, CDR bytes) with topic
selection and a start offset, and explains bad input (missing, truncated or corrupt bags,
unknown topics) instead of failing obscurely.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

from rosbags.highlevel import AnyReader
from rosbags.interfaces import QosDurability
from softmaint_core.bagtypes import typestore


class BagError(RuntimeError):
    """A bag that cannot be read as asked; the text says why and what to do."""


@dataclass(frozen=True)
class Topic:
    """One recorded topic."""

    name: str
    msgtype: str            # e.g. 'sensor_msgs/msg/Image'
    count: int
    latched: bool           # recorded publisher offered transient-local durability


@dataclass(frozen=True)
class Record:
    """One recorded message."""

    topic: str
    msgtype: str
    stamp: int              # bag (log) time [ns]
    data: bytes             # CDR bytes as recorded (rmw serialized message)


def _latched(connection) -> bool:
    profiles = getattr(connection.ext, 'offered_qos_profiles', None) or []
    if isinstance(profiles, str):  # old bags store QoS as YAML text
        return 'durability: 1' in profiles or 'transient_local' in profiles.lower()
    return any(p.durability == QosDurability.TRANSIENT_LOCAL for p in profiles)


class Bag:
    """An open bag; use as a context manager."""

    def __init__(self, path: Path):
        self.path = Path(path)
        if not self.path.exists():
            raise BagError(f'bag {self.path} does not exist')
        if self.path.is_dir() and not (self.path / 'metadata.yaml').is_file():
            # rosbag2 writes metadata.yaml when a recording is closed
            raise BagError(f'bag {self.path} has no metadata.yaml: its recording was not '
                           'finished (recorder killed?). `ros2 bag reindex` rebuilds it on a '
                           'ROS 2 distro')
        self._reader = AnyReader([self.path], default_typestore=typestore())

    def __enter__(self):
        try:
            self._reader.open()
        except Exception as err:  # rosbags raises many error types for a bad bag
            raise BagError(f'cannot open bag {self.path}: {err}. Is it a complete rosbag2 '
                           'directory (metadata.yaml + .mcap or .db3)?') from err
        return self

    def __exit__(self, *exc):
        self._reader.close()

    def decode(self, record: Record):
        """Return the message of a record, decoded with the bag's own type definitions."""
        return self._reader.deserialize(record.data, record.msgtype)

    @property
    def start(self) -> int:
        """Bag start time [ns]."""
        return self._reader.start_time

    @property
    def end(self) -> int:
        """Bag end time [ns]."""
        return self._reader.end_time

    @property
    def topics(self) -> dict:
        """Return the recorded topics by name."""
        found = {}
        for c in self._reader.connections:
            found[c.topic] = Topic(c.topic, c.msgtype, c.msgcount, _latched(c))
        return found

    def records(self, topics: Optional[Sequence[str]] = None,
                start_offset: float = 0.0) -> Iterator[Record]:
        """Yield messages in time order from `start_offset` seconds after the bag start."""
        available = self.topics
        if topics:
            missing = sorted(set(topics) - set(available))
            if missing:
                raise BagError(f'topics {missing} are not in {self.path}; it has '
                               f'{sorted(available)}')
        connections = [c for c in self._reader.connections if not topics or c.topic in topics]
        start = self.start + int(start_offset * 1e9)
        try:
            for connection, stamp, data in self._reader.messages(connections=connections,
                                                                 start=start):
                yield Record(connection.topic, connection.msgtype, stamp, bytes(data))
        except BagError:
            raise
        except Exception as err:  # rosbags raises many error types for a bad bag
            raise BagError(f'bag {self.path} is corrupt or truncated: {err}') from err
