"""``python -m emocore.cli``, the same as ``emocore`` (torchrun starts it this way)."""

import sys

from emocore.cli.main import main

sys.exit(main())
