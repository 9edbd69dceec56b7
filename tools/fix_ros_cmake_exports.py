"""Point the ROS wheels' exported CMake include dirs at this interpreter.

The kilted wheels are built on a manylinux image, and each message package's
``*_rosidl_generator_pyExport.cmake`` names that machine's Python and numpy include dirs.
CMake refuses to generate a build that depends on them ("non-existent path"), so any
interface package built against the wheels needs them rewritten. Safe to run repeatedly.
"""
import pathlib
import re
import sys
import sysconfig

import numpy

PYTHON_INCLUDE = re.compile(r'[^";]*/include/python3\.\d+')
NUMPY_INCLUDE = re.compile(r'[^";]*/site-packages/numpy/(?:_core/)?include')


def fix(prefix: pathlib.Path) -> int:
    python_include = sysconfig.get_paths()['include']
    numpy_include = numpy.get_include()
    changed = 0
    for path in prefix.glob('share/*/cmake/*rosidl_generator_pyExport.cmake'):
        text = path.read_text()
        new = PYTHON_INCLUDE.sub(python_include, text)
        new = NUMPY_INCLUDE.sub(numpy_include, new)
        if new != text:
            path.write_text(new)
            changed += 1
    return changed


if __name__ == '__main__':
    venv = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else sys.prefix)
    print(f'setup: rewrote include dirs in {fix(venv)} CMake export files')
