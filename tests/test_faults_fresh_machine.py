"""Issue 6, case 8: the machine that ran lakeshift loses everything it kept.

Each "machine" is a fresh working directory, a fresh HOME and TMPDIR and a
fresh copy of the configuration; what survives is what a real new machine
would reach: the lake (the S3 server, or a lake folder outside the machine's
own directories) and the target. State must come back from those two:
the watermark from the lake, the loaded batches from the target. Nothing may
be extracted or loaded twice, and lakeshift must not keep anything of its own
in the working directory or HOME."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from kit.checks import assert_loaded_once, assert_mirrors
from kit.cli import killed, ok, summary, sync
from kit.config import build_config
from kit.lake import local_storage, manifest_ids
from kit.source import HYBRID, change_items, create_items
from kit.targets import make_target

pytestmark = pytest.mark.slow  # CLI subprocesses on a fresh machine


class Machine:
    def __init__(self, root: Path, template: Path) -> None:
        self.root = root
        for d in ("work", "home", "tmp"):
            (root / d).mkdir(parents=True)
        self.config = root / "work" / "config"
        shutil.copytree(template, self.config)
        self.env = {"HOME": str(root / "home"), "TMPDIR": str(root / "tmp"), "XDG_CACHE_HOME": str(root / "home/.cache"),
                    "XDG_CONFIG_HOME": str(root / "home/.config"), "XDG_DATA_HOME": str(root / "home/.local/share")}

    def sync(self, fault: str | None = None) -> Any:
        return sync(self.config, fault=fault, env=self.env, cwd=self.root / "work")

    def kept(self) -> list[str]:
        """Files lakeshift left on this machine, outside its configuration."""
        out = []
        for p in sorted(self.root.rglob("*")):
            if p.is_file() and self.config not in p.parents and "__pycache__" not in p.parts:
                out.append(str(p.relative_to(self.root)))
        return out


@pytest.mark.parametrize("kind", ["postgres+s3", "duckdb+local"])
def test_a_new_machine_carries_on_from_the_lake_and_the_target(kind: str, mysql: Any, mysql_db: str, tmp_path: Path,
                                                               request: pytest.FixtureRequest) -> None:
    target_kind, lake_kind = kind.split("+")
    shared = tmp_path / "shared"  # what a new machine still reaches: the target file / the lake folder
    target = make_target(target_kind, request, shared)
    storage = request.getfixturevalue("s3_storage") if lake_kind == "s3" else local_storage(shared / "lake")
    create_items(mysql, 400)
    template = build_config(tmp_path / "template", mysql_db, target.config, storage,
                            {"items": {**HYBRID, "processing": {"batch_size": 100}}})

    a = Machine(tmp_path / "machine-a", template)
    ok(a.sync())
    change_items(mysql, 1)  # 50 new rows, 4 updated
    killed(a.sync(fault="after_manifest"))  # the batch is in the lake, not in the target
    assert len(manifest_ids(storage)) == 2 and len(target.loads()) == 1
    assert a.kept() == []

    # machine A is gone. Machine B: loads the waiting batch, extracts nothing again
    shutil.rmtree(a.root)
    b = Machine(tmp_path / "machine-b", template)
    status, extracted, loaded = summary(ok(b.sync()).stdout)
    assert (status, extracted, loaded) == ("ok", 0, 54)
    assert_mirrors(target, mysql_db)
    assert_loaded_once(target, storage)
    assert b.kept() == []

    # machine C after more changes: only those are read, and loaded once
    shutil.rmtree(b.root)
    change_items(mysql, 2, inserts=20)
    c = Machine(tmp_path / "machine-c", template)
    # 20 new, 4 updated, and the 50 rows left on the old watermark's timestamp, whose tie changed
    # when the 4 updated rows left it (read again, merged by key)
    assert summary(ok(c.sync()).stdout) == ("ok", 74, 74)
    assert summary(ok(c.sync()).stdout) == ("ok", 0, 0)
    assert_mirrors(target, mysql_db)
    assert_loaded_once(target, storage)
    assert c.kept() == []
