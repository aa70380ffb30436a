"""help(IotJobCleanup) shows what the constructor takes, although jsii's metaclass is in the way."""

from __future__ import annotations

import inspect
import pydoc

import aws_cdk as cdk

from constructs import Construct
from iot_job_cleanup import IotJobCleanup

# jsii's metaclass (JSIIMeta) defines __call__(cls, *args, **kwargs): inspect.signature() and
# help() would show that for the class, "IotJobCleanup(*args: Any, **kwargs) -> ~M", were it
# not for the class's own __signature__.


def rendered_help() -> str:
    """What help(IotJobCleanup) shows, without the terminal's bold."""
    return pydoc.render_doc(IotJobCleanup, renderer=pydoc.plaintext)


def constructor_parameters() -> list[inspect.Parameter]:
    return list(inspect.signature(IotJobCleanup.__init__).parameters.values())[1:]  # without self


def test_help_shows_the_summary_and_documents_every_parameter() -> None:
    text = rendered_help()
    summary = inspect.getdoc(IotJobCleanup).splitlines()[0]
    names = [parameter.name for parameter in constructor_parameters()]

    assert summary in text
    assert "job_ids" in names
    undocumented = [name for name in names if f":param {name}:" not in text]
    assert not undocumented, f"help(IotJobCleanup) documents no {undocumented}"


def test_help_and_inspect_show_the_constructor_signature() -> None:
    expected = inspect.Signature(constructor_parameters())  # as __init__'s, without self and return

    assert inspect.signature(IotJobCleanup) == expected
    assert f"IotJobCleanup{expected}" in rendered_help()


def test_a_subclass_shows_its_own_signature() -> None:
    class OtaCleanup(IotJobCleanup):
        def __init__(self, scope: Construct, construct_id: str, wave: int) -> None:
            super().__init__(scope, construct_id, job_ids=[f"ota-wave-{wave}"])

    assert list(inspect.signature(OtaCleanup).parameters) == ["scope", "construct_id", "wave"]
    assert OtaCleanup(cdk.Stack(cdk.App(), "Stack"), "Cleanup", 3).job_ids == ["ota-wave-3"]


def test_help_on_the_constructor_is_its_own() -> None:
    # Without a docstring of its own, __init__ would show Construct's: "Creates a new
    # construct node", with a parameter ``id`` this constructor does not have.
    assert inspect.getdoc(IotJobCleanup.__init__) != inspect.getdoc(Construct.__init__)
    assert "Creates a new construct node" not in rendered_help()
