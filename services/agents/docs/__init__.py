"""Documentation Generator: an MkDocs site (API reference, coverage, architecture, schema) read statically with griffe."""
