"""The schema diff a run makes before reading a table (engine/schema_diff.py):
pure, no database."""

from __future__ import annotations

import logging

from lakeshift.batch import Column
from lakeshift.engine.schema_diff import RefColumn, Renamed, Retyped, describe, diff_columns


def c(name: str, mysql_type: str = "int(11)") -> Column:
    return Column(name=name, mysql_type=mysql_type, data_type=mysql_type.split("(")[0], nullable=True,
                  arrow_type="int32")


def ref(*cols: Column) -> list[RefColumn]:
    return [RefColumn(x.name, x.mysql_type) for x in cols]


BASE = [c("id"), c("name", "varchar(20)"), c("note", "text"), c("updated_at", "datetime(6)")]


def test_nothing_changed() -> None:
    change = diff_columns(ref(*BASE), BASE)
    assert not change and not change.new_columns and describe(change, reread=True) == []


def test_added_columns_anywhere_including_generated_ones() -> None:
    now = [BASE[0], c("country", "char(2)"), *BASE[1:], c("total", "int(11)")]  # `total` may be GENERATED: same row
    change = diff_columns(ref(*BASE), now)
    assert [x.name for x in change.added] == ["country", "total"]
    assert change.new_columns and not change.gone and not change.renamed and not change.retyped
    assert describe(change, reread=True) == [
        (logging.INFO, "column 'country' added (char(2)); re-reading all rows so existing rows get its values"),
        (logging.INFO, "column 'total' added (int(11)); re-reading all rows so existing rows get its values")]
    assert describe(change, reread=False) == [(logging.INFO, "column 'country' added (char(2))"),
                                              (logging.INFO, "column 'total' added (int(11))")]


def test_a_column_gone_and_one_of_its_type_at_its_position_is_a_possible_rename() -> None:
    now = [BASE[0], BASE[1], c("comment", "text"), BASE[3]]
    change = diff_columns(ref(*BASE), now)
    assert change.renamed == [Renamed("note", "comment", "text")]
    assert not change.added and not change.gone and change.new_columns
    assert describe(change, reread=True) == [(
        logging.WARNING, "column 'note' is gone and 'comment' (text) appeared at its position: possibly a rename; "
        "'comment' is filled for every row, 'note' is kept in the target (NULL in every row written from now on)")]


def test_another_type_or_another_position_is_no_rename() -> None:
    other_type = diff_columns(ref(*BASE), [BASE[0], BASE[1], c("comment", "varchar(50)"), BASE[3]])
    assert not other_type.renamed
    assert [x.name for x in other_type.added] == ["comment"] and other_type.gone == ["note"]
    moved = diff_columns(ref(*BASE), [BASE[0], c("comment", "text"), BASE[1], BASE[3]])
    assert not moved.renamed and [x.name for x in moved.added] == ["comment"] and moved.gone == ["note"]


def test_columns_only_dropped_need_no_re_read() -> None:
    change = diff_columns(ref(*BASE), [BASE[0], BASE[1], BASE[3]])
    assert change.gone == ["note"] and not change.new_columns
    assert describe(change, reread=False) == [
        (logging.INFO, "column 'note' is gone from the source; the target keeps it (NULL in every row written "
                       "from now on)")]


def test_type_changes_are_reported_by_mysql_type() -> None:
    now = [BASE[0], c("name", "varchar(50)"), BASE[2], BASE[3]]
    change = diff_columns(ref(*BASE), now)
    assert change.retyped == [Retyped("name", "varchar(20)", "varchar(50)")] and not change.new_columns
    assert describe(change, reread=False) == [(logging.INFO, "column 'name' changed type: varchar(20) -> varchar(50)")]


def test_a_reference_without_types_reports_additions_only() -> None:
    """The target table's columns: it keeps dropped columns (and _lakeshift_batch_id), and its types say
    nothing about MySQL's, so only source columns it lacks are reported; names compare as the target folds them."""
    target = [RefColumn("id"), RefColumn("name"), RefColumn("note"), RefColumn("old_col"), RefColumn("updated_at")]
    now = [c("ID"), c("name", "varchar(99)"), c("comment", "text"), c("updated_at", "datetime(6)")]
    change = diff_columns(target, now, fold=str.lower)
    assert [x.name for x in change.added] == ["comment"]
    assert not change.gone and not change.renamed and not change.retyped


def test_several_changes_one_line_each_renames_first() -> None:
    before = ref(c("id"), c("a", "text"), c("b"), c("x", "int(11)"))
    now = [c("id"), c("a2", "text"), c("x", "bigint(20)"), c("new", "date")]
    change = diff_columns(before, now)
    assert change.renamed == [Renamed("a", "a2", "text")]
    assert [x.name for x in change.added] == ["new"] and change.gone == ["b"]
    assert change.retyped == [Retyped("x", "int(11)", "bigint(20)")]
    lines = describe(change, reread=True)
    assert [level for level, _ in lines] == [logging.WARNING, logging.INFO, logging.INFO, logging.INFO]
    assert [text.split(" ")[1] for _, text in lines] == ["'a'", "'new'", "'b'", "'x'"]
