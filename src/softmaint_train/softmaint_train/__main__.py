"""Allow `python -m softmaint_train ...` (and torchrun -m softmaint_train)."""
import sys

from .cli import main

sys.exit(main())
