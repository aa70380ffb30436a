"""IoT's naming rules, in one place: what a job id, a namespace id, a thing group name and a
tag may be, and how many tags a job carries.

The engine's contract checks resource properties with them at deploy time; the construct
(``iot_job_cleanup.synth``) checks its options with the same patterns at synth time, loading
this file alone (``iot_job_cleanup.engine.naming_rules``), without the package around it and
so without botocore. It therefore imports nothing but the standard library, and nothing of
this package.

Each pattern is for ``fullmatch``.
"""

from __future__ import annotations

import re

__all__ = [
    "JOB_ID_PATTERN",
    "MAX_TAGS",
    "NAMESPACE_ID_PATTERN",
    "TAG_KEY_PATTERN",
    "TAG_VALUE_PATTERN",
    "THING_GROUP_NAME_PATTERN",
]

JOB_ID_PATTERN = re.compile(r"[a-zA-Z0-9_-]{1,64}")  # a job id, and so a job id prefix
NAMESPACE_ID_PATTERN = re.compile(r"[a-zA-Z0-9_-]+")
THING_GROUP_NAME_PATTERN = re.compile(r"[a-zA-Z0-9:_-]{1,128}")
TAG_KEY_PATTERN = re.compile(r"[\w .:/=+\-@]{1,128}")
TAG_VALUE_PATTERN = re.compile(r"[\w .:/=+\-@]{0,256}")
MAX_TAGS = 50  # the tags an IoT job carries at most
