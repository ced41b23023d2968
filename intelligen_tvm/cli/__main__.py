"""`python -m intelligen_tvm.cli` = the `intelligen-tvm` command."""

import sys

from . import main

sys.exit(main())
