"""`python -m settlement.cli …`: the `settlement` command (`settlement run` starts its
children so)."""

import sys

from settlement.cli.main import main

sys.exit(main())
