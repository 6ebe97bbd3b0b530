"""The workflows service: LangGraph orchestration, workflow state and event streaming."""
