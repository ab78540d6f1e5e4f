"""``python -m conformance`` is ``ctxspec``."""

import sys

from .cli import main

sys.exit(main())
