"""How the handler paces itself: the Provider waiter's interval and total timeout, and the
polling inside one ``is_complete``. Set by the construct through the environment; a
resource's own QueryIntervalSeconds and TotalTimeoutSeconds take precedence.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace

from .contract import CleanupRequest

__all__ = ["Timing"]


@dataclass(frozen=True)
class Timing:
    """How the handler paces itself; set by the construct through the environment.

    query_interval and total_timeout mirror the Provider's waiter. Inside one
    ``is_complete`` invocation the handler polls every ``poll_interval`` for up to
    ``poll_window`` so that a freed deletion slot is reused within seconds, not at the
    next waiter retry. It gives up ``report_margin`` before ``total_timeout`` so that
    its failure, naming the jobs left, reaches CloudFormation before CloudFormation's
    own timeout does. A resource's own QueryIntervalSeconds and TotalTimeoutSeconds
    replace poll_interval and total_timeout (``for_request``).
    """

    query_interval: float = 10.0
    total_timeout: float = 3600.0
    poll_interval: float = 2.0
    poll_window: float = 300.0
    report_margin: float = 30.0

    def for_request(self, request: CleanupRequest) -> Timing:
        """This timing with the resource's own query interval and total timeout, if it sets them."""
        return replace(
            self,
            poll_interval=request.query_interval or self.poll_interval,
            total_timeout=request.total_timeout or self.total_timeout,
        )

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Timing:
        def seconds(name: str, default: float) -> float:
            return float(environ.get(name, default))

        return cls(
            query_interval=seconds("QUERY_INTERVAL_SECONDS", cls.query_interval),
            total_timeout=seconds("TOTAL_TIMEOUT_SECONDS", cls.total_timeout),
            poll_interval=seconds("POLL_INTERVAL_SECONDS", cls.poll_interval),
            poll_window=seconds("POLL_WINDOW_SECONDS", cls.poll_window),
            report_margin=seconds("REPORT_MARGIN_SECONDS", cls.report_margin),
        )
