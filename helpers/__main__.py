"""``python -m helpers`` is the ``screentime`` command."""

import sys

from .cli import main

sys.exit(main())
