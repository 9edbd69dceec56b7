"""
Message types for reading and writing rosbag2 files with `rosbags` (pure Python).

The typestore holds the ROS 2 kilted standard messages plus softmaint's own, parsed from the
.msg files that softmaint_interfaces installs, so bags written here carry full message
definitions and are readable by rosbag2 and any other tool.
"""
from pathlib import Path
from typing import Optional

from rosbags.typesys import get_types_from_msg, get_typestore, Stores

INTERFACES = 'softmaint_interfaces'


def interfaces_msg_dir() -> Path:
    """Return the installed msg/ directory of softmaint_interfaces (from the ament index)."""
    from ament_index_python.packages import get_package_share_directory, PackageNotFoundError
    try:
        return Path(get_package_share_directory(INTERFACES)) / 'msg'
    except PackageNotFoundError as err:
        raise RuntimeError(f'{INTERFACES} is not installed: build the workspace '
                           '(make setup) and source tools/env.sh') from err


def typestore(msg_dir: Optional[Path] = None):
    """Return a rosbags Typestore with the kilted messages and softmaint's messages."""
    store = get_typestore(Stores.ROS2_KILTED)
    types = {}
    for path in sorted(Path(msg_dir or interfaces_msg_dir()).glob('*.msg')):
        types.update(get_types_from_msg(path.read_text(), f'{INTERFACES}/msg/{path.stem}'))
    store.register(types)
    return store
