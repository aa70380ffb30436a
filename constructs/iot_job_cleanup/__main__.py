"""python -m iot_job_cleanup: the iot-job-cleanup command line."""

import sys

from .cli import main

sys.exit(main())
