"""CloudFormation's deletion order, for the cleanup resources a rehearsal plays.

CloudFormation deletes a resource only once every resource that depends on it is deleted:
one that names it in ``DependsOn`` or refers to it (``Ref``, ``Fn::GetAtt``, ``Fn::Sub``'s
``${Name}`` and ``${Name.Attribute}``), anywhere in its definition; resources that do not
depend on each other go in parallel. A nested stack (``AWS::CloudFormation::Stack``) is deleted
as one resource of its parent: all of it, once the parent's resources that depend on it are
gone, and before the parent's resources it depends on. Across the stacks of an assembly a stack
is deleted once the stacks that depend on it (the manifest's ``dependencies``) are gone.

Other resources are instantaneous here, so a cleanup resource waits for the cleanup resources
that must be gone before it, through any chain of resources and stacks: ``DeletionOrder``.
The stages of a cleanup fall out of it: stage k depends on stage k + 1, so stage 1 goes first.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .assembly import NESTED_STACK_TYPE, StackPlan
from .base import RehearsalError

__all__ = ["DeletionOrder", "Key", "references", "resource_dependencies"]

Key = tuple[str, str]  # (stack, logical id)


def references(value: Any) -> Iterator[str]:
    """The names a value refers to by ``Ref``, ``Fn::GetAtt`` and ``Fn::Sub`` (resources,
    parameters and pseudo parameters alike)."""
    if isinstance(value, list):
        for item in value:
            yield from references(item)
        return
    if not isinstance(value, dict):
        return
    for key, argument in value.items():
        if key == "Ref" and isinstance(argument, str):
            yield argument
        elif key == "Fn::GetAtt":
            if isinstance(argument, str):
                target: Any = argument.split(".", 1)[0]
            else:
                target = argument[0] if isinstance(argument, list) and argument else None
            if isinstance(target, str):
                yield target
            if isinstance(argument, list):
                yield from references(argument[1:])
        elif key == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else (*argument, {})[:2]
            variables = variables if isinstance(variables, dict) else {}
            for name in _sub_names(text if isinstance(text, str) else ""):
                if name not in variables:
                    yield name.split(".", 1)[0]
            yield from references(variables)
        else:
            yield from references(argument)


def _sub_names(text: str) -> Iterator[str]:
    start = text.find("${")
    while start != -1:
        end = text.find("}", start)
        if end == -1:
            return
        name = text[start + 2 : end]
        if not name.startswith("!"):  # ${!Literal} is the text ${Literal}
            yield name
        start = text.find("${", end)


def resource_dependencies(resources: Mapping[str, Any]) -> dict[str, set[str]]:
    """Each resource's logical id -> the resources of the template it depends on."""
    dependencies: dict[str, set[str]] = {}
    for logical_id, resource in resources.items():
        depends_on = resource.get("DependsOn", [])
        named = {depends_on} if isinstance(depends_on, str) else set(depends_on)
        definition = {key: value for key, value in resource.items() if key not in ("DependsOn", "Metadata")}
        named |= set(references(definition))
        dependencies[logical_id] = {name for name in named if name in resources and name != logical_id}
    return dependencies


@dataclass(frozen=True)
class DeletionOrder:
    """What must be gone before each cleanup resource's Delete starts, and before each stack's
    deletion starts: the cleanup resources (of the plans played) on every chain of
    dependencies, through other resources, nested stacks and the stacks' own dependencies."""

    waits: Mapping[Key, frozenset[Key]]  # a cleanup resource -> the cleanups gone before it
    stack_waits: Mapping[str, frozenset[Key]]  # a stack -> the cleanups gone before its deletion
    members: Mapping[str, frozenset[Key]]  # a stack -> its cleanups, its nested stacks' too

    @classmethod
    def of(cls, plans: list[StackPlan]) -> DeletionOrder:
        return _Orderer(plans).order()

    def nearest(self, key: Key) -> list[Key]:
        """The cleanups it waits for directly: those no other of its waits waits for."""
        waits = self.waits.get(key, frozenset())
        return sorted(k for k in waits if not any(k in self.waits.get(other, ()) for other in waits))


class _Orderer:
    """The closures of ``DeletionOrder``, computed once each (a cycle is an error: CloudFormation
    refuses such a template)."""

    def __init__(self, plans: list[StackPlan]) -> None:
        self.plans = {plan.name: plan for plan in plans}
        self.dependents: dict[str, dict[str, set[str]]] = {}
        for plan in plans:
            dependents: dict[str, set[str]] = {logical_id: set() for logical_id in plan.resources}
            for logical_id, needs in resource_dependencies(plan.resources).items():
                for needed in needs:
                    dependents[needed].add(logical_id)
            self.dependents[plan.name] = dependents
        self.nested = {
            (plan.parent, plan.parent_resource): plan.name for plan in plans if plan.parent is not None
        }
        self.played = {(plan.name, c.logical_id) for plan in plans for c in plan.cleanups}
        self._memo: dict[tuple[str, str, str], frozenset[Key]] = {}
        self._busy: list[tuple[str, str, str]] = []

    def order(self) -> DeletionOrder:
        return DeletionOrder(
            waits={key: self.before(*key) for key in sorted(self.played)},
            stack_waits={name: self.stack_before(name) for name in self.plans},
            members={name: self.members(name) for name in self.plans},
        )

    def members(self, stack: str) -> frozenset[Key]:
        keys = {(stack, cleanup.logical_id) for cleanup in self.plans[stack].cleanups}
        for plan in self.plans.values():
            if plan.parent == stack:
                keys |= self.members(plan.name)
        return frozenset(keys)

    def _closure(self, node: tuple[str, str, str], compute: Any) -> frozenset[Key]:
        if node in self._memo:
            return self._memo[node]
        if node in self._busy:
            cycle = " -> ".join(f"{stack}/{name}" if name else stack for _, stack, name in self._busy)
            raise RehearsalError(f"the resources depend on each other in a circle: {cycle}")
        self._busy.append(node)
        try:
            self._memo[node] = frozenset(compute())
        finally:
            self._busy.pop()
        return self._memo[node]

    def before(self, stack: str, logical_id: str) -> frozenset[Key]:
        """The cleanups gone before this resource's deletion starts."""

        def compute() -> set[Key]:
            keys = set(self.stack_before(stack))
            for dependent in self.dependents[stack].get(logical_id, ()):
                keys |= self.gone(("resource", stack, dependent))
            return keys

        return self._closure(("before", stack, logical_id), compute)

    def stack_before(self, stack: str) -> frozenset[Key]:
        """The cleanups gone before this stack's deletion starts: a nested stack's, those before
        its resource in the parent; a top stack's, those of every stack that depends on it."""
        plan = self.plans[stack]

        def compute() -> set[Key]:
            if plan.parent is not None and plan.parent in self.plans and plan.parent_resource:
                return set(self.before(plan.parent, plan.parent_resource))
            keys: set[Key] = set()
            for other in self.plans.values():
                if other.parent is None and stack in other.dependencies:
                    keys |= self.gone(("stack", other.name, ""))
            return keys

        return self._closure(("stack-before", stack, ""), compute)

    def gone(self, node: tuple[str, str, str]) -> frozenset[Key]:
        """The cleanups gone once a resource (a nested stack: all of it) or a stack is gone."""
        kind, stack, logical_id = node

        def compute() -> set[Key]:
            if kind == "stack":
                keys = set(self.stack_before(stack))
                for resource in self.plans[stack].resources:
                    keys |= self.gone(("resource", stack, resource))
                return keys
            keys = set(self.before(stack, logical_id))
            if (stack, logical_id) in self.played:
                keys.add((stack, logical_id))
            resource = self.plans[stack].resources.get(logical_id, {})
            child = self.nested.get((stack, logical_id))
            if resource.get("Type") == NESTED_STACK_TYPE and child is not None:
                keys |= self.gone(("stack", child, ""))
            return keys

        return self._closure(node, compute)
