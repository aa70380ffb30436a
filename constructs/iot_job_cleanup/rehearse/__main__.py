"""python -m iot_job_cleanup.rehearse: the rehearsal's command (its usage line says so:
``command.program_name``)."""

import sys

from .command import main

sys.exit(main())
