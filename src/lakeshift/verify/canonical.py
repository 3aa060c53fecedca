"""One canonical text per lakeshift type, written in the SQL of each engine, so
that equal values hash equally in MySQL/MariaDB, PostgreSQL, DuckDB and
Redshift despite their different text forms (docs/verify.md has the table).

A column's canonical text (NULL stays NULL):
  integers, BIT, YEAR   the decimal number ('18446744073709551615')
  TINYINT(1) as bool    '0' / '1'
  DECIMAL(p,s)          the number with exactly s decimals ('1.50'); the same for p > 38
  DATE                  'YYYY-MM-DD'
  DATETIME              'YYYY-MM-DD HH:MM:SS.ffffff' (wall time)
  TIMESTAMP             'YYYY-MM-DD HH:MM:SS.ffffff' of the UTC instant
  short text            its length in UTF-8 bytes, ':', the text ('5:a|b c'): the length says where
                        it ends, so no value can fake a separator (CHAR/VARCHAR/ENUM/SET up to
                        INLINE_CHARS characters, TINYTEXT)
  longer text, JSON     md5 of the UTF-8 text (fixed width: the row's text stays small)
  binary                md5 of the bytes
  FLOAT, DOUBLE         'MpL': the value is exactly M * 2^(L-52), L its band's (float_text; '0', '-0')

A row's text joins its columns with '|' and NULL as '~' (never a canonical text);
its hash is md5 of that. What no SQL renders identically on an engine (TIME,
GEOMETRY, and on some targets JSON, binary and floats) is `None` here: those
columns are compared in Arrow (arrow_cols.py)."""

from __future__ import annotations

from lakeshift.batch import Column

MYSQL, POSTGRES, DUCKDB, REDSHIFT = "MySQL", "PostgreSQL", "DuckDB", "Redshift"
ENGINES = (MYSQL, POSTGRES, DUCKDB, REDSHIFT)
NULL_MARK = "~"
_DAY = {MYSQL: "'%Y-%m-%d'", POSTGRES: "'YYYY-MM-DD'", DUCKDB: "'%Y-%m-%d'", REDSHIFT: "'YYYY-MM-DD'"}
_MOMENT = {MYSQL: "'%Y-%m-%d %H:%i:%s.%f'", POSTGRES: "'YYYY-MM-DD HH24:MI:SS.US'",
           DUCKDB: "'%Y-%m-%d %H:%M:%S.%f'", REDSHIFT: "'YYYY-MM-DD HH24:MI:SS.US'"}
# kinds an engine cannot render in SQL as the others do (its target type differs)
_INTEGER_TYPES = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint"}
_ARROW_ONLY = {POSTGRES: {"json"}, REDSHIFT: {"json", "binary", "float"}, DUCKDB: set(), MYSQL: set()}
# Text up to this many characters is written into the row's text as it is (length-prefixed),
# longer text as its md5: an md5 per text column cost MariaDB as much as the row's own md5
# (2M rows, two VARCHARs: 9.8 s -> 7.0 s for the whole aggregate). The bound keeps a row's
# text far below MySQL's max_allowed_packet (CONCAT_WS gives NULL beyond it) and, for a
# usual row, Redshift's 65,535-byte VARCHAR.
INLINE_CHARS = 255
_TEXT_TYPES = {"char", "varchar", "enum", "set", "tinytext"}


def kind(c: Column) -> str | None:
    """The canonical kind of a lake column; None: compared in Arrow on every engine."""
    t, dt = c.arrow_type, c.data_type
    if t in ("float", "double"):
        return "float"
    if t == "bool":
        return "bool"
    if dt == "bit" or (dt == "year" and t.startswith(("int", "uint"))):
        return "bit"  # MySQL's text of these is not their number (BIT may be a decimal128(20,0) in the lake)
    if t.startswith(("int", "uint")) or dt in _INTEGER_TYPES:
        return "int"  # BIGINT UNSIGNED may be a decimal128(20,0) in the lake: still an integer key
    if t.startswith("decimal") or dt in ("decimal", "numeric"):
        return "decimal" if t.startswith("decimal") else "decimal_text"
    if t == "date32[day]":
        return "date"
    if t.startswith("timestamp"):
        return "timestamp" if "tz=" in t else "datetime"
    if dt == "json":
        return "json"
    if t in ("string", "large_string") and dt != "time":
        short = dt in _TEXT_TYPES and c.char_max_length is not None and c.char_max_length <= INLINE_CHARS
        return "text" if short else "long_text"
    if t in ("binary", "large_binary") and c.lake_encoding != "wkb":
        return "binary"
    return None  # TIME, GEOMETRY


def sql_kind(c: Column, engine: str) -> str | None:
    """kind(c) where `engine` renders it like MySQL does; None: compare in Arrow."""
    k = kind(c)
    return None if k is None or k in _ARROW_ONLY[engine] else k


def column_text(c: Column, engine: str, r: str, zero_test: str | None = None, utf8mb4: bool = False,
                bare: bool = False) -> str:
    """SQL for the canonical text of column `c` (referenced as `r`) on `engine`.
    `zero_test` (MySQL): SQL true for a zero date, which the lake holds as NULL; `utf8mb4` (MySQL):
    the column's text is utf8mb4 already (no conversion); `bare` (MySQL, an argument of CONCAT_WS):
    a number whose text CONCAT_WS makes as CAST would (an integer, a boolean, a DECIMAL) as it is."""
    k = sql_kind(c, engine)
    if k is None:
        raise ValueError(f"column {c.name!r} ({c.mysql_type}) has no canonical SQL text on {engine}")
    if k == "float":
        return float_text(engine, r, c.arrow_type == "float")
    if bare and engine == MYSQL and k in ("int", "bool", "decimal", "decimal_text"):
        return r
    text = _mysql_text(c, k, r, utf8mb4) if engine == MYSQL else None
    text = text or _TEXT[engine][k].format(r=r, day=_DAY[engine], moment=_MOMENT[engine])
    if zero_test and k in ("date", "datetime", "timestamp"):
        return f"CASE WHEN {zero_test} THEN NULL ELSE {text} END"
    return text


def _mysql_text(c: Column, k: str, r: str, utf8mb4: bool) -> str | None:
    """MySQL's cheaper forms of the same texts (None: _TEXT's). A date or time as MySQL's own text,
    which has exactly the column's fractional digits, padded to 6 (DATE_FORMAT cost 0.35 µs a value,
    3 times as much); utf8mb4 text under a binary collation of its own charset, which converts nothing
    (CAST AS CHAR CHARACTER SET copies every value) and keeps CONCAT_WS from mixing collations."""
    if k == "date":
        return f"CAST({r} AS CHAR)"
    if k in ("datetime", "timestamp") and c.datetime_precision is not None and 0 <= c.datetime_precision <= 6:
        pad = "." + "0" * 6 if c.datetime_precision == 0 else "0" * (6 - c.datetime_precision)
        return f"CONCAT({r}, '{pad}')" if pad else f"CAST({r} AS CHAR)"
    if utf8mb4 and k == "text":
        u = f"{r} COLLATE utf8mb4_bin"
        return f"CONCAT(LENGTH({u}), ':', {u})"
    if utf8mb4 and k in ("long_text", "json"):
        return f"MD5({r} COLLATE utf8mb4_bin)"
    return None


# The canonical text of each kind, per engine ({r}: the column). MySQL sessions run in UTC, so a
# TIMESTAMP reads as its UTC instant; BIT's text is its bytes and YEAR 0's is '0000', hence the
# CAST to UNSIGNED; DuckDB and Redshift hold DECIMAL above 38 digits as MySQL's exact text.
_TEXT: dict[str, dict[str, str]] = {
    MYSQL: {"int": "CAST({r} AS CHAR)", "bool": "CAST({r} AS CHAR)", "decimal": "CAST({r} AS CHAR)",
            "decimal_text": "CAST({r} AS CHAR)", "bit": "CAST(CAST({r} AS UNSIGNED) AS CHAR)",
            "date": "DATE_FORMAT({r}, {day})", "datetime": "DATE_FORMAT({r}, {moment})",
            "timestamp": "DATE_FORMAT({r}, {moment})",
            "text": ("CONCAT(LENGTH(CAST({r} AS CHAR CHARACTER SET utf8mb4)), ':', "
                     "CAST({r} AS CHAR CHARACTER SET utf8mb4))"),
            "long_text": "MD5(CAST({r} AS CHAR CHARACTER SET utf8mb4))",
            "json": "MD5(CAST({r} AS CHAR CHARACTER SET utf8mb4))", "binary": "MD5({r})"},
    POSTGRES: {"int": "({r})::text", "bit": "({r})::text", "decimal": "({r})::text", "decimal_text": "({r})::text",
               "bool": "(({r})::int)::text", "date": "to_char({r}, {day})", "datetime": "to_char({r}, {moment})",
               "timestamp": "to_char({r} AT TIME ZONE 'UTC', {moment})",
               "text": "(octet_length(({r})::text)::text || ':' || ({r})::text)", "long_text": "md5(({r})::text)",
               "binary": "md5({r})"},
    DUCKDB: {"int": "CAST({r} AS VARCHAR)", "bit": "CAST({r} AS VARCHAR)", "decimal": "CAST({r} AS VARCHAR)",
             "decimal_text": "{r}", "bool": "CAST(CAST({r} AS INTEGER) AS VARCHAR)", "date": "strftime({r}, {day})",
             "datetime": "strftime({r}, {moment})", "timestamp": "strftime(timezone('UTC', {r}), {moment})",
             "text": "(CAST(strlen(CAST({r} AS VARCHAR)) AS VARCHAR) || ':' || CAST({r} AS VARCHAR))",
             "long_text": "md5(CAST({r} AS VARCHAR))", "json": "md5(CAST({r} AS VARCHAR))", "binary": "md5({r})"},
    REDSHIFT: {"int": "CAST({r} AS VARCHAR)", "bit": "CAST({r} AS VARCHAR)", "decimal": "CAST({r} AS VARCHAR)",
               "decimal_text": "{r}", "bool": "CASE WHEN {r} IS NULL THEN NULL WHEN {r} THEN '1' ELSE '0' END",
               "date": "TO_CHAR({r}, {day})", "datetime": "TO_CHAR({r}, {moment})",
               "timestamp": "TO_CHAR(CONVERT_TIMEZONE('UTC', {r}), {moment})",
               "text": "(CAST(OCTET_LENGTH({r}) AS VARCHAR(12)) || ':' || {r})", "long_text": "MD5({r})"},
}


# ---------------------------------------------------------------- floats
# FLOAT and DOUBLE as 'MpL', the value = M * 2^(L-52) exactly: L the lowest exponent of the value's
# band (bands of FLOAT_BAND binary exponents from -1022: -1022, -1012, ..., 1018), M the signed integer
# x * 2^(52-L) (|M| < 2^(53+FLOAT_BAND-1) <= 2^62; subnormals and 0 fall in the band of -1022);
# '0' and '-0' and, as only a target can hold them, NaN and the infinities are their own texts. No
# engine shares a text of floats (MariaDB prints FLOAT with 6 digits, each has its own exponent
# form) nor, but PostgreSQL, their bits. The band is found by comparisons of |x| with powers of two
# (a binary search, 8 deep), which are exact everywhere, and scaling by a power of two is exact: no
# logarithm (LOG2 is one off next to powers of two, and correcting it made MariaDB evaluate it 8
# times a value: 1.7 s of CPU per 2M DOUBLEs, now 0.4 s). A FLOAT is first made the double of the
# same value. Redshift keeps the Arrow comparison (_ARROW_ONLY): not run on Redshift, so not claimed
# there.
FLOAT_BAND = 10
FLOAT_BANDS = tuple(range(-1022, 1024, FLOAT_BAND))


def float_band_text(x: float) -> str:
    """The canonical text of a finite, nonzero double in Python (the reference the SQL is tested against)."""
    low = max(b for b in FLOAT_BANDS if b == -1022 or abs(x) >= 2.0 ** b)
    m = x * 2.0 ** min(52 - low, 1023) * 2.0 ** max(52 - low - 1023, 0)
    return f"{int(m)}p{low}"


def _double(engine: str, value: float) -> str:
    """An exact double literal (repr round-trips; PostgreSQL and DuckDB would read a bare one as numeric)."""
    text = repr(value)
    text = text if "e" in text else f"{text}e0"  # MySQL: '1.0' alone would be a DECIMAL
    return text if engine == MYSQL else f"CAST('{text}' AS DOUBLE PRECISION)" if engine == POSTGRES \
        else f"CAST('{text}' AS DOUBLE)"


def _band_leaf(engine: str, x: str, low: int) -> str:
    shift = 52 - low  # up to 1074: beyond 1023, two factors (each a double)
    scaled = f"{x} * {_double(engine, 2.0 ** min(shift, 1023))}"
    if shift > 1023:
        scaled += f" * {_double(engine, 2.0 ** (shift - 1023))}"
    if engine == MYSQL:
        return f"CONCAT(CAST({scaled} AS SIGNED), 'p{low}')"
    return f"CAST(CAST({scaled} AS BIGINT) AS VARCHAR) || 'p{low}'"


def _band_search(engine: str, x: str, first: int, end: int) -> str:
    """The text of x among FLOAT_BANDS[first:end] (x is at least the first band's low, or in band 0)."""
    if end - first == 1:
        return _band_leaf(engine, x, FLOAT_BANDS[first])
    mid = (first + end) // 2
    return (f"CASE WHEN ABS({x}) >= {_double(engine, 2.0 ** FLOAT_BANDS[mid])} THEN "
            f"{_band_search(engine, x, mid, end)} ELSE {_band_search(engine, x, first, mid)} END")


def float_text(engine: str, r: str, single: bool = True) -> str:
    """The 'MpL' text of the float column `r` on MySQL, PostgreSQL or DuckDB (not Redshift);
    `single`: a FLOAT (MySQL makes it a double first; a DOUBLE is one, and each use of `* 1e0` cost)."""
    # the double of the same value (MySQL: `* 1e0`, not `+ 0e0`, which makes -0.0 0.0; CAST AS DOUBLE needs 8.0.17)
    mysql_x = f"({r} * 1e0)" if single else r
    x = {MYSQL: mysql_x, DUCKDB: f"CAST({r} AS DOUBLE)"}.get(engine, f"({r})::float8")
    bands = _band_search(engine, x, 0, len(FLOAT_BANDS))
    if engine == MYSQL:
        return f"CASE WHEN {x} = 0 THEN IF(ATAN2({x}, -1) < 0, '-0', '0') ELSE {bands} END"  # -0.0: atan2 gives -pi
    if engine == POSTGRES:
        special = f"{x} = 'NaN'::float8 OR {x} = 'Infinity'::float8 OR {x} = '-Infinity'::float8"
        minus_zero = f"float8send({x}) = '\\x8000000000000000'::bytea"
    else:
        special, minus_zero = f"isnan({x}) OR isinf({x})", f"signbit({x})"
    return (f"CASE WHEN {special} THEN CAST({x} AS VARCHAR) WHEN {x} = 0 THEN CASE WHEN {minus_zero} "
            f"THEN '-0' ELSE '0' END ELSE {bands} END")


# ---------------------------------------------------------------- row hashes


def row_hash(engine: str, texts: list[str], nullable: list[bool] | None = None) -> str:
    """md5 of the column texts joined by '|', NULL as '~' (32 hex digits). `nullable[i]` False: the
    i-th text is never NULL (no COALESCE: on MariaDB, with `bare` texts, a sixth of a --deep hash)."""
    parts = [f"COALESCE({t}, '{NULL_MARK}')" if nullable is None or nullable[i] else t for i, t in enumerate(texts)]
    if engine == MYSQL:
        return f"MD5(CONCAT_WS('|', {', '.join(parts)}))"
    if engine in (POSTGRES, DUCKDB):  # one call: each || copies the row's text so far (PostgreSQL: 3% of its hash)
        return f"md5(concat_ws('|', {', '.join(parts)}))"
    return "md5(" + " || '|' || ".join(parts) + ")"


def hex_number(engine: str, h: str, start: int, digits: int) -> str:
    """The unsigned integer of `digits` hex digits of `h` from position `start` (1-based), ≤ 60 bits."""
    piece = f"SUBSTRING({h}, {start}, {digits})"
    if engine == MYSQL:
        return f"CAST(CONV({piece}, 16, 10) AS UNSIGNED)"
    if engine == POSTGRES:
        return f"('x' || {piece})::bit({digits * 4})::bigint"
    if engine == DUCKDB:
        return f"CAST('0x' || {piece} AS BIGINT)"
    return f"STRTOL({piece}, 16)"


def checksum_items(engine: str, h: str) -> list[str]:
    """An order-free sum of a 60-bit piece of the hash `h`. Exact: MySQL sums BIGINT UNSIGNED
    as DECIMAL, PostgreSQL bigint as numeric, DuckDB as HUGEINT; Redshift's SUM(BIGINT) would
    overflow, so it sums DECIMAL(38,0). (With the count, a changed row goes unseen only if
    another change cancels its 60 bits exactly; a second piece cost MariaDB as much again.)"""
    piece = hex_number(engine, h, 1, 15)
    if engine == REDSHIFT:
        piece = f"CAST({piece} AS DECIMAL(38,0))"
    return [f"COALESCE(SUM({piece}), 0)"]


def bucket(engine: str, h: str, buckets: int) -> str:
    """Which of `buckets` windows a row with hash `h` falls in (the last 8 hex digits, modulo)."""
    return f"({hex_number(engine, h, 25, 8)} % {int(buckets)})"


# ---------------------------------------------------------------- integer keys
# A key of one integer column needs no md5: every side first makes it the same signed 64-bit
# integer (a BIGINT UNSIGNED above 2^63 - 1 becomes its two's complement, so no value is lost and
# every later step is bigint arithmetic: PostgreSQL's numeric(20,0) costs several times more),
# its window is its low bits (the window count is a power of two), and compared by keys only its
# checksums are SUM(key) and a sum of (key mod p)^2 mod p: not linear, so two keys swapped for two
# others of the same sum are seen (a sum of (key mod p) * a mod p was not). Every engine computes
# them exactly: remainders keep the dividend's sign everywhere, (key mod p)^2 < 2^62, MySQL sums BIGINT as
# DECIMAL, PostgreSQL with a 128-bit accumulator, DuckDB as HUGEINT; Redshift's SUM(BIGINT) would
# overflow, so it sums the key as DECIMAL(38,0). This is the check that runs after every
# incremental run with hard_deletes.
P = 2147483647  # verify/lookup.py computes the same sums in Python
I64_MAX, _U64_SPAN = 9223372036854775807, 18446744073709551616


def _mod(engine: str, x: str, n: int) -> str:
    return f"MOD({x}, {n})" if engine in (MYSQL, REDSHIFT) else f"({x} % {n})"


def _unsigned64(c: Column) -> bool:
    return c.data_type == "bigint" and "unsigned" in c.mysql_type


def int_key(c: Column, engine: str, r: str, below_2_63: bool = False) -> str:
    """The integer key column `c` (referenced as `r`) as a signed 64-bit integer on `engine`.
    `below_2_63`: every key of this side is (a BIGINT UNSIGNED then needs no two's complement)."""
    if engine == MYSQL:
        return f"CAST({r} AS SIGNED)" if "unsigned" in c.mysql_type else r
    if not _unsigned64(c) or below_2_63:
        return f"({r})::int8" if engine == POSTGRES else f"CAST({r} AS BIGINT)"
    wide = f"CAST({r} AS HUGEINT)" if engine == DUCKDB else r  # DuckDB: UBIGINT
    if engine == POSTGRES:
        return f"CASE WHEN {r} > {I64_MAX} THEN ({r} - {_U64_SPAN})::int8 ELSE ({r})::int8 END"
    return f"CASE WHEN {r} > {I64_MAX} THEN CAST({wide} - {_U64_SPAN} AS BIGINT) ELSE CAST({r} AS BIGINT) END"


def int_checksum_items(engine: str, k: str) -> list[str]:
    """`k`: the key as int_key() gives it."""
    first = f"CAST({k} AS DECIMAL(38,0))" if engine == REDSHIFT else k
    m = _mod(engine, k, P)
    return [f"COALESCE(SUM({first}), 0)", f"COALESCE(SUM({_mod(engine, f'{m} * {m}', P)}), 0)"]


def int_bucket(engine: str, k: str, buckets: int) -> str:
    """`k`'s window: its low bits (`buckets` is a power of two; the same bits on every engine,
    negative keys included)."""
    if buckets & (buckets - 1):
        raise ValueError(f"the window count must be a power of two, not {buckets}")
    return f"({k} & {int(buckets) - 1})"
