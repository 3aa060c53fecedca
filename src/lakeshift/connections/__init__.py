"""Connections: SSH tunnels and the registry behind `lakeshift connections`."""
