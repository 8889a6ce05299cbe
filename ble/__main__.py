"""``python -m ble scan|run|report``."""

import sys

from ble.cli import main

sys.exit(main())
