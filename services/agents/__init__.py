"""Analysis agents that inspect code in a workspace."""
