"""iot-job-cleanup: delete AWS IoT jobs when a CloudFormation stack is torn down."""

from .cleanup import HANDLER_MODULE, IotJobCleanup, handler_directory

__all__ = ["HANDLER_MODULE", "IotJobCleanup", "handler_directory"]
