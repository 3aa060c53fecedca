"""Write strategies: how a staged batch becomes the target's rows.

    facts = TableFacts(exists=..., staged=..., catalog=...)   # pg_catalog.py fills catalog on PostgreSQL
    strategy = plan_move(manifest.mode, facts)                 # pure
    moved = strategy.move(session, job)                        # in the batch's transaction
    ...load record...
    moved.finish(session, job)                                 # drop staging (or swap it in)

docs/architecture.md ("How to add a write mode or a target") walks through adding one."""

from lakeshift.load.strategies.append import Append
from lakeshift.load.strategies.changes import ApplyChanges
from lakeshift.load.strategies.delete import DeleteKeys, SoftDelete
from lakeshift.load.strategies.contract import Moved, MoveJob, MoveStrategy, NoRows, drop_stage
from lakeshift.load.strategies.facts import CatalogFacts, SwapFacts, TableFacts
from lakeshift.load.strategies.history import WriteHistory
from lakeshift.load.strategies.merge import DeleteInsert
from lakeshift.load.strategies.plan import MODES, plan_move
from lakeshift.load.strategies.recreate import Recreate
from lakeshift.load.strategies.replace import Replace
from lakeshift.load.strategies.soft_replace import SoftReplace, SoftSwap
from lakeshift.load.strategies.swap import Swap
from lakeshift.load.strategies.upsert import Upsert

__all__ = ["Append", "ApplyChanges", "CatalogFacts", "DeleteInsert", "DeleteKeys", "SoftDelete", "SoftReplace", "SoftSwap", "MODES", "MoveJob", "MoveStrategy", "Moved", "NoRows",
           "Recreate", "Replace", "Swap", "SwapFacts", "TableFacts", "Upsert", "WriteHistory", "drop_stage", "plan_move"]
