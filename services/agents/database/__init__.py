"""Database Analyzer: a schema model from DDL, SQLite or live PostgreSQL, findings on it and on queries, a Mermaid ER diagram."""
