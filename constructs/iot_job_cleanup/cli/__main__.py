"""python -m iot_job_cleanup.cli: the iot-job-cleanup command line (as python -m iot_job_cleanup)."""

import sys

from .command import main

sys.exit(main())
