"""Parameter descriptors with their ranges, one way for every node."""
from typing import Optional, Tuple

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor


def descriptor(description: str, read_only: bool = False,
               floats: Optional[Tuple[float, float]] = None,
               ints: Optional[Tuple[int, int]] = None) -> ParameterDescriptor:
    """Descriptor of a parameter; `floats` or `ints` bound it (inclusive, rcl enforces them)."""
    return ParameterDescriptor(
        description=description, read_only=read_only,
        floating_point_range=[FloatingPointRange(from_value=floats[0], to_value=floats[1])]
        if floats else [],
        integer_range=[IntegerRange(from_value=ints[0], to_value=ints[1], step=1)]
        if ints else [])
