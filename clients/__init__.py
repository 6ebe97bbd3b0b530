"""Clients of mcpmesh: a small REST client and the `mcpmesh` command line."""
