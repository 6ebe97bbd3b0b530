"""The workflow types this service runs: one module each; adding a type is a module and a line below."""

from services.workflows.steps import WorkflowType
from services.workflows.types.code_analysis import CODE_ANALYSIS
from services.workflows.types.database_analysis import DATABASE_ANALYSIS
from services.workflows.types.documentation import DOCUMENTATION
from services.workflows.types.knowledge_build import KNOWLEDGE_BUILD
from services.workflows.types.repository_review import REPOSITORY_REVIEW

WORKFLOW_TYPES: list[WorkflowType] = [CODE_ANALYSIS, DATABASE_ANALYSIS, KNOWLEDGE_BUILD, DOCUMENTATION, REPOSITORY_REVIEW]
