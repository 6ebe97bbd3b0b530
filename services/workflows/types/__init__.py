"""The workflow types this service runs: one module each; adding a type is a module and a line below."""

from services.workflows.steps import WorkflowType
from services.workflows.types.code_analysis import CODE_ANALYSIS

WORKFLOW_TYPES: list[WorkflowType] = [CODE_ANALYSIS]
