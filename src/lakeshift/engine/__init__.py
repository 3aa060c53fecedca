"""The engine: the one place where source, lake, load and state meet."""
