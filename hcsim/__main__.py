"""``python -m hcsim``: the ``hcsim`` command."""

import sys

from hcsim.frontends.cli import main

sys.exit(main())
