"""The gateway: identity and policy beside the edge (API keys, tokens and their public keys, ext_authz checks, its own RPCs, WebSocket)."""
