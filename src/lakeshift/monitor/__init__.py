"""Operating lakeshift: what `status`, `freshness`, `history` and `metrics` read
from the lake and the target (never from MySQL), and how they print it."""
