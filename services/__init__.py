"""Service packages for the project."""
