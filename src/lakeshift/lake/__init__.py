"""The lake: Parquet parts + manifests per table on S3 or a local folder,
through one pyarrow.fs layer (storage.py: the interface; local.py, s3.py:
the two kinds). See layout.py for the folder rules."""

from lakeshift.lake.clean import BatchRow, CleanReport, Listing, clean, list_batches
from lakeshift.lake.deletes import write_delete_batch
from lakeshift.lake.errors import LakeFileNotFound
from lakeshift.lake.layout import TableLake, WatermarkInfo, WatermarkState, batch_created
from lakeshift.lake.storage import FileInfo, Lake
from lakeshift.lake.writer import BatchWriter, WriteResult

__all__ = [
    "BatchRow", "BatchWriter", "CleanReport", "FileInfo", "Lake", "LakeFileNotFound", "Listing",
    "TableLake", "WatermarkInfo", "WatermarkState", "WriteResult", "batch_created", "clean", "list_batches",
    "write_delete_batch",
]
