"""``python -m fastasync_explorer``: the same as the ``fastasync-explorer`` command."""

import sys

from fastasync_explorer import main

sys.exit(main())
