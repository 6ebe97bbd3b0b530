"""Runs the whole mesh locally: Envoy and the four services, health-checked, stopped cleanly."""

import os

# Set before gRPC loads. The launcher, and the tests that start meshes through it, fork children (with a
# preexec_fn, so a real fork) while gRPC's threads may be running (the supervisor's health checks, a test's
# in-process server); gRPC's fork handlers then run in the child and can abort it before it execs (a tools
# process died with SIGABRT, "epoll_wait error: Bad file descriptor"). The children exec a fresh Python at once and
# need none of gRPC's state.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")
