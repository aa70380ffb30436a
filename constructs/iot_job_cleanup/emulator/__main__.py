"""python -m iot_job_cleanup.emulator: the offline IoT jobs endpoint, served until stopped."""

import sys

from .serve import main

sys.exit(main())
