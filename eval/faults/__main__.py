"""`python -m eval.faults`: see `eval.faults.runner`."""

import sys

from eval.faults.runner import main

sys.exit(main())
