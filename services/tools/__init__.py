"""The tools service: the MCP tool registry and execution engine (built-in file tools, external MCP servers)."""
