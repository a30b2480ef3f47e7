"""``python -m seglog_cli``: the same as the ``seglog`` console script."""

import sys

from seglog_cli.main import main

sys.exit(main())
