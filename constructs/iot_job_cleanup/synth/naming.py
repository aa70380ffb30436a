"""IoT's naming rules as synth holds options to them, and the one way an option is refused.

The patterns are the engine's own (``lambda/iot_job_cleanup_handler/rules.py``, which the
handler's contract checks again at deploy time), loaded by ``naming_rules()`` without the
engine package, so without botocore: one set of rules, whichever side applies them. The
construct words its messages for CDK users (``letters, digits, '_' and '-'``); the engine
words its own for template authors.
"""

from __future__ import annotations

import re

from ..engine import naming_rules

__all__ = [
    "JOB_ID_PATTERN",
    "MAX_TAGS",
    "NAMESPACE_ID_PATTERN",
    "TAG_KEY_PATTERN",
    "TAG_VALUE_PATTERN",
    "THING_GROUP_NAME_PATTERN",
    "SettingError",
    "kind",
]

_RULES = naming_rules()
JOB_ID_PATTERN: re.Pattern[str] = _RULES.JOB_ID_PATTERN  # a job id, and a job id prefix
NAMESPACE_ID_PATTERN: re.Pattern[str] = _RULES.NAMESPACE_ID_PATTERN
THING_GROUP_NAME_PATTERN: re.Pattern[str] = _RULES.THING_GROUP_NAME_PATTERN
TAG_KEY_PATTERN: re.Pattern[str] = _RULES.TAG_KEY_PATTERN
TAG_VALUE_PATTERN: re.Pattern[str] = _RULES.TAG_VALUE_PATTERN
MAX_TAGS: int = _RULES.MAX_TAGS


class SettingError(ValueError):
    """A setting breaks a rule; the constructor adds the construct's path to the message.

    Raised by every check of synth (the options, the job id sources, the filters, a
    selection's policy size, the room on the handler role), caught only by the constructor,
    which raises it again as the ``ValueError`` users see.
    """


def kind(value: object) -> str:
    """``value`` and its type, as a message names them: ``600 (int)``."""
    return f"{value!r} ({type(value).__name__})"
