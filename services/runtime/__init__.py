"""Runtime helpers shared by services: filesystem walking and workspace checks."""
