"""``python -m eas.cli``."""

import sys

from eas.cli import main

sys.exit(main())
