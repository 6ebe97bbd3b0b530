"""The gateway: the one entry for outside calls; authenticates, rate-limits and forwards through the mesh."""
