"""Configuration: YAML files -> typed, validated models."""

from lakeshift.config.loader import Config, load_config

__all__ = ["Config", "load_config"]
