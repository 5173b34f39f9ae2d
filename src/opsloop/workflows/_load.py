"""Finding a workflow by reference: the object itself, ``"module:attr"`` or a YAML file."""

from __future__ import annotations

from opsloop.core import load_ref
from opsloop.workflows._errors import WorkflowDefinitionError
from opsloop.workflows._step import Workflow
from opsloop.workflows._yaml import YamlWorkflow, load_yaml_workflow

__all__ = ["AnyWorkflow", "load_workflow"]

AnyWorkflow = Workflow | YamlWorkflow


def load_workflow(ref: str | AnyWorkflow) -> AnyWorkflow:
    """A workflow object from itself, ``"module:attr"`` or a YAML file's path."""
    if isinstance(ref, (Workflow, YamlWorkflow)):
        return ref
    if not isinstance(ref, str) or not ref:
        raise WorkflowDefinitionError(f"not a workflow: {ref!r}")
    if ref.endswith((".yaml", ".yml")):
        return load_yaml_workflow(ref)
    if ":" not in ref:
        raise WorkflowDefinitionError(f"name a workflow as module:attr or a YAML file, not {ref!r}")
    try:
        obj = load_ref(ref)
    except (ImportError, AttributeError, ValueError, TypeError) as e:
        raise WorkflowDefinitionError(f"cannot load workflow {ref}: {e}") from None
    if not isinstance(obj, (Workflow, YamlWorkflow)):
        raise WorkflowDefinitionError(f"{ref} is not a @workflow")
    return obj
