"""``python -m miocreate_async.distributed worker --redis URL -j 32``."""

import sys

from ._command import main

sys.exit(main())
