"""IoT's naming rules live in one place, the engine's rules.py, and the construct uses them
without botocore: the engine's package (whose __init__ imports botocore) is never run."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import iot_job_cleanup_handler.contract as contract
import iot_job_cleanup_handler.rules as rules
from iot_job_cleanup.engine import naming_rules
from iot_job_cleanup.synth import naming

REPO = Path(__file__).resolve().parents[2]
NAMES = [
    "JOB_ID_PATTERN",
    "NAMESPACE_ID_PATTERN",
    "THING_GROUP_NAME_PATTERN",
    "TAG_KEY_PATTERN",
    "TAG_VALUE_PATTERN",
    "MAX_TAGS",
]

WITHOUT_BOTOCORE = textwrap.dedent(
    """
    import sys

    sys.modules["botocore"] = None  # importing it now raises ImportError
    sys.modules["boto3"] = None

    from iot_job_cleanup.engine import naming_rules

    rules = naming_rules()
    assert rules.JOB_ID_PATTERN.fullmatch("ota-1") and rules.MAX_TAGS == 50
    import aws_cdk as cdk

    import iot_job_cleanup.synth
    from iot_job_cleanup import IotJobCleanup

    assert IotJobCleanup is iot_job_cleanup.synth.IotJobCleanup
    stack = cdk.Stack(cdk.App(), "Stack")
    IotJobCleanup(stack, "Cleanup", job_ids=["ota-1"], tags={"fleet": "demo"})
    try:
        IotJobCleanup(stack, "Wrong", job_ids=["no spaces"])
    except ValueError as refusal:
        assert "a job id is 1 to 64 characters" in str(refusal), refusal
    else:
        raise AssertionError("an invalid job id was accepted")
    engine = sorted(name for name in sys.modules if name.startswith("iot_job_cleanup_handler"))
    assert not engine, f"the engine package ran: {engine}"
    print("ok")
    """
)


def test_the_construct_and_the_naming_rules_import_without_botocore() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "constructs")}  # nothing of lambda/ on the path
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_BOTOCORE],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "ok"


def test_the_engine_contract_and_the_construct_check_with_the_same_rules() -> None:
    loaded = naming_rules()

    assert loaded is naming_rules(), "naming_rules() loads rules.py once"
    assert loaded.__name__ not in ("iot_job_cleanup_handler.rules", "rules")
    assert Path(loaded.__file__).resolve() == Path(rules.__file__).resolve()
    for name in NAMES:
        assert getattr(loaded, name) == getattr(rules, name), name
        assert getattr(naming, name) is getattr(loaded, name), name
    for name in NAMES[:-1]:  # the contract checks with the very patterns of rules.py
        assert getattr(contract, name) is getattr(rules, name), name


def test_rules_py_imports_the_standard_library_only() -> None:
    source = Path(rules.__file__).read_text()
    imports = [line.split()[1] for line in source.splitlines() if line.startswith(("import ", "from "))]

    assert imports == ["__future__", "re"], imports
