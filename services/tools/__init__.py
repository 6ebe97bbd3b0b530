"""Tools that report facts about files in a workspace."""
