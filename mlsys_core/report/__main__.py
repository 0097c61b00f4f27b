"""`python -m mlsys_core.report`: see `mlsys_core.report.run`."""

import sys

from mlsys_core.report.run import main

sys.exit(main())
