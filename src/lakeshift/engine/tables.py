"""Resolve one pipeline table for the inspection commands (watermark, s3clean)."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from lakeshift.config.loader import Config
from lakeshift.config.models import PipelineConfig, TableConfig
from lakeshift.identifiers import split_table_name


@dataclass
class TableHandle:
    config: Config
    pipeline: PipelineConfig
    name: str
    table: TableConfig
    table_lake: Any

    @property
    def target_table(self) -> str:
        return self.table.target_name or split_table_name(self.table.full_name or self.name)[1]

    @contextmanager
    def loader(self) -> Iterator[Any]:
        from lakeshift.load import open_target

        cfg = self.config
        p = self.pipeline.pipeline
        loader = open_target(cfg.target(p.target), cfg.settings, lake_credentials=cfg.storage_for(p.s3.storage))
        try:
            yield loader
        finally:
            loader.close()

    def loaded(self) -> dict[str, Any]:
        with self.loader() as loader:
            return loader.loaded_batches(self.pipeline.name, self.name)


def resolve_table(config: Config, pipeline_key: str, table: str) -> TableHandle:
    from lakeshift.lake import Lake, TableLake

    from lakeshift.config.validate import check_pipeline

    pipeline = config.pipeline(pipeline_key)
    check_pipeline(config, pipeline)  # the same checks as sync: one line naming the file and key
    table_cfg = config.table(pipeline, table, legacy_ok=pipeline.key == "default")
    lake = Lake.from_config(config.storage_for(pipeline.pipeline.s3.storage))
    return TableHandle(config, pipeline, table, table_cfg, TableLake(lake, pipeline.isolation_prefix, table))
