"""WorkflowService: proto in, engine call, proto out."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from google.rpc import status_pb2
from mcpmesh.workflows.v1 import workflow_pb2, workflow_service_pb2, workflow_service_pb2_grpc

from services.runtime.errors import InvalidArgument
from services.runtime.identity import caller
from services.runtime.pages import Page
from services.runtime.protos import from_struct, timestamp, to_struct
from services.workflows.engine import WorkflowEngine
from services.workflows.store import Event, Workflow

STATES = {
    "pending": workflow_pb2.WORKFLOW_STATE_PENDING,
    "running": workflow_pb2.WORKFLOW_STATE_RUNNING,
    "succeeded": workflow_pb2.WORKFLOW_STATE_SUCCEEDED,
    "failed": workflow_pb2.WORKFLOW_STATE_FAILED,
    "cancelled": workflow_pb2.WORKFLOW_STATE_CANCELLED,
}
STATE_NAMES = {number: name for name, number in STATES.items()}
EVENT_TYPES = {
    "created": workflow_pb2.WORKFLOW_EVENT_TYPE_CREATED,
    "started": workflow_pb2.WORKFLOW_EVENT_TYPE_STARTED,
    "step_started": workflow_pb2.WORKFLOW_EVENT_TYPE_STEP_STARTED,
    "step_succeeded": workflow_pb2.WORKFLOW_EVENT_TYPE_STEP_SUCCEEDED,
    "step_failed": workflow_pb2.WORKFLOW_EVENT_TYPE_STEP_FAILED,
    "succeeded": workflow_pb2.WORKFLOW_EVENT_TYPE_SUCCEEDED,
    "failed": workflow_pb2.WORKFLOW_EVENT_TYPE_FAILED,
    "cancelled": workflow_pb2.WORKFLOW_EVENT_TYPE_CANCELLED,
    "resumed": workflow_pb2.WORKFLOW_EVENT_TYPE_RESUMED,
    "step_progress": workflow_pb2.WORKFLOW_EVENT_TYPE_STEP_PROGRESS,
}


def workflow_message(workflow: Workflow) -> workflow_pb2.Workflow:
    message = workflow_pb2.Workflow(
        id=workflow.id,
        type=workflow.type,
        parameters=to_struct(workflow.parameters),
        state=STATES[workflow.state],
        progress_percent=workflow.progress,
        create_time=timestamp(workflow.created),
        update_time=timestamp(workflow.updated),
        last_sequence=workflow.last_sequence,
        trace_id=workflow.trace_id,
        creator=workflow.creator.principal,
        steps=[
            workflow_pb2.WorkflowStep(
                name=s.name, state=STATES.get(s.state, workflow_pb2.WORKFLOW_STATE_UNSPECIFIED),
                start_time=timestamp(s.started), end_time=timestamp(s.ended), error=s.error,
            )
            for s in workflow.steps
        ],
    )
    if workflow.result is not None:
        message.result.CopyFrom(to_struct(workflow.result))
    if workflow.error is not None:
        name = workflow.error.get("code", "INTERNAL")
        code = grpc.StatusCode[name if name in grpc.StatusCode.__members__ else "INTERNAL"].value[0]
        text = f"{workflow.error.get('reason', 'INTERNAL')}: {workflow.error.get('message', '')}"
        message.error.CopyFrom(status_pb2.Status(code=code, message=text))
    return message


def event_message(event: Event) -> workflow_pb2.WorkflowEvent:
    return workflow_pb2.WorkflowEvent(
        workflow_id=event.workflow_id,
        sequence=event.sequence,
        type=EVENT_TYPES[event.type],
        step=event.step,
        state=STATES[event.state],
        progress_percent=event.progress,
        message=event.message,
        create_time=timestamp(event.created),
        steps_done=event.steps_done,
        steps_total=event.steps_total,
        items_done=event.items_done,
        items_total=event.items_total,
    )


class WorkflowServicer(workflow_service_pb2_grpc.WorkflowServiceServicer):
    def __init__(self, engine: WorkflowEngine) -> None:
        self._engine = engine

    async def ListWorkflowTypes(
        self, request: workflow_service_pb2.ListWorkflowTypesRequest, context: grpc.aio.ServicerContext
    ) -> workflow_service_pb2.ListWorkflowTypesResponse:
        return workflow_service_pb2.ListWorkflowTypesResponse(
            workflow_types=[
                workflow_pb2.WorkflowType(
                    name=t.name, description=t.description, steps=t.steps, parameters_schema=to_struct(t.parameters_schema)
                )
                for t in self._engine.types.values()
            ]
        )

    async def CreateWorkflow(
        self, request: workflow_service_pb2.CreateWorkflowRequest, context: grpc.aio.ServicerContext
    ) -> workflow_service_pb2.CreateWorkflowResponse:
        if not request.HasField("workflow"):
            raise InvalidArgument.field("workflow", "is required")
        workflow = await self._engine.create(
            request.workflow.type, from_struct(request.workflow.parameters), request.request_id, caller(context)
        )
        return workflow_service_pb2.CreateWorkflowResponse(workflow=workflow_message(workflow))

    async def GetWorkflow(
        self, request: workflow_service_pb2.GetWorkflowRequest, context: grpc.aio.ServicerContext
    ) -> workflow_service_pb2.GetWorkflowResponse:
        if not request.id:
            raise InvalidArgument.field("id", "is required")
        return workflow_service_pb2.GetWorkflowResponse(workflow=workflow_message(await self._engine.store.get(request.id)))

    async def ListWorkflows(
        self, request: workflow_service_pb2.ListWorkflowsRequest, context: grpc.aio.ServicerContext
    ) -> workflow_service_pb2.ListWorkflowsResponse:
        page = Page.of(request.page_size, request.page_token)
        if request.state and request.state not in STATE_NAMES:
            raise InvalidArgument.field("state", "is not a workflow state")
        workflows, more = await self._engine.store.list(STATE_NAMES.get(request.state, ""), page.offset, page.size)
        return workflow_service_pb2.ListWorkflowsResponse(
            workflows=[workflow_message(w) for w in workflows], next_page_token=page.next_token(more)
        )

    async def CancelWorkflow(
        self, request: workflow_service_pb2.CancelWorkflowRequest, context: grpc.aio.ServicerContext
    ) -> workflow_service_pb2.CancelWorkflowResponse:
        if not request.id:
            raise InvalidArgument.field("id", "is required")
        return workflow_service_pb2.CancelWorkflowResponse(workflow=workflow_message(await self._engine.cancel(request.id)))

    async def WatchWorkflow(
        self, request: workflow_service_pb2.WatchWorkflowRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[workflow_service_pb2.WatchWorkflowResponse]:
        if request.id == "-":
            # Fix the starting point, then tell the caller it is subscribed: nothing after this is missed.
            events = self._engine.watch_all(await self._engine.feed_start())
            await context.send_initial_metadata(())
            async for event in events:
                yield workflow_service_pb2.WatchWorkflowResponse(event=event_message(event))
            return
        async for batch in self._engine.watch_batches(request.id, request.after_sequence):
            if request.batch:
                yield workflow_service_pb2.WatchWorkflowResponse(events=[event_message(e) for e in batch])
                continue
            for event in batch:
                yield workflow_service_pb2.WatchWorkflowResponse(event=event_message(event))
