"""python -m iot_job_cleanup.rehearse: the rehearsal's command."""

import sys

from .command import PROG, main

sys.exit(main(prog=PROG))
