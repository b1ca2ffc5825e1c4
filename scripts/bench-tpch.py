#!/usr/bin/env python3
"""TPC-H on PostgreSQL and Shoal: load the same data into both, run the 22 queries, compare.

Usage:

    scripts/bench-tpch.py --data /path/to/tpch-sf1            load both, run all 22 queries
    scripts/bench-tpch.py --data DIR --skip-load --queries 1,6,14 --out docs/tpch.md

--data DIR holds dbgen's output: region.tbl, nation.tbl, part.tbl, supplier.tbl, partsupp.tbl,
customer.tbl, orders.tbl and lineitem.tbl, pipe-delimited with a trailing `|` (a table split
into chunks, `lineitem.tbl.1`, `lineitem.tbl.2`, ..., is read chunk by chunk when `t.tbl` is
absent). The queries are bench/tpch/qNN.sql, with the specification's validation parameters
(Q11's FRACTION 0.0001 is the value for scale factor 1).

Loading (skipped with --skip-load):
  * both systems: drop the 8 tables and create them from one DDL with a per-system type map
    (TYPE_MAP below); then ANALYZE and check each table's count(*) against the file.
  * PostgreSQL: `\\copy t FROM 'file' WITH (FORMAT csv, DELIMITER '|')` of a copy of each file
    with the trailing `|` stripped. The database (--pg-db) is created if missing, with C
    collation so that ORDER BY on text sorts bytewise, as Shoal does.
  * Shoal: multi-row `INSERT INTO t VALUES (...), ...` of --batch rows (500) each, streamed to
    one `psql -v ON_ERROR_STOP=1 -q -f -` per table.
  Rows and seconds per table are printed. A failed load exits with status 1.

Queries: each runs once per system in its own `psql -X -A -t -F '|' -q -v ON_ERROR_STOP=1`,
the wall time measured around the whole psql process, so it includes psql's start-up and
connection, the same way on both. The per-query limit --timeout is statement_timeout
(PGOPTIONS on PostgreSQL, `SET statement_timeout` first in the same psql on Shoal), and the
psql is killed 60 s after it. Results are compared row by row in order; if that fails but the
sorted rows are equal the result is "same rows, different order" (ties in ORDER BY may
legitimately come out in either order, and TPC-H's single-row queries have no ORDER BY at
all), which counts as a match. Fields that both parse as numbers are equal within a relative
1e-6 (an absolute 0.005 below 1: PostgreSQL prints `0.0500` where Shoal prints `0.05`);
others compare as strings with CHAR padding (trailing spaces) stripped.

The report is a markdown table, `| query | PostgreSQL ms | Shoal ms | ratio | result |` with
ratio = Shoal ms / PostgreSQL ms, then the geometric mean of the ratio over the matching
queries. It is printed and, with --out FILE, appended to FILE (created if missing). The exit
status is 0 however the queries fare; only a failed load (or bad arguments) is an error.

Connections: PostgreSQL --pg-host/--pg-port/--pg-user/--pg-db (127.0.0.1 54330 postgres tpch),
Shoal --shoal-host/--shoal-port (127.0.0.1 15432: a node's --pg-addr, not its node-to-node
port 26257) as --shoal-user root, database --shoal-db defaultdb, sslmode disabled. PGPASSWORD
and the other libpq variables apply as usual. Standard library only; needs psql on PATH.
"""

import argparse
import datetime
import glob
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUERY_DIR = ROOT / "bench" / "tpch"

# The TPC-H schema (spec 1.4.1) in load order, with primary keys. Column kinds: int (keys and
# integers), decimal (money, quantity, discount, tax), char(n), varchar(n), date.
TABLES = [
    ("region", [
        ("r_regionkey", "int"), ("r_name", "char(25)"), ("r_comment", "varchar(152)"),
    ], ["r_regionkey"]),
    ("nation", [
        ("n_nationkey", "int"), ("n_name", "char(25)"), ("n_regionkey", "int"),
        ("n_comment", "varchar(152)"),
    ], ["n_nationkey"]),
    ("part", [
        ("p_partkey", "int"), ("p_name", "varchar(55)"), ("p_mfgr", "char(25)"),
        ("p_brand", "char(10)"), ("p_type", "varchar(25)"), ("p_size", "int"),
        ("p_container", "char(10)"), ("p_retailprice", "decimal"), ("p_comment", "varchar(23)"),
    ], ["p_partkey"]),
    ("supplier", [
        ("s_suppkey", "int"), ("s_name", "char(25)"), ("s_address", "varchar(40)"),
        ("s_nationkey", "int"), ("s_phone", "char(15)"), ("s_acctbal", "decimal"),
        ("s_comment", "varchar(101)"),
    ], ["s_suppkey"]),
    ("partsupp", [
        ("ps_partkey", "int"), ("ps_suppkey", "int"), ("ps_availqty", "int"),
        ("ps_supplycost", "decimal"), ("ps_comment", "varchar(199)"),
    ], ["ps_partkey", "ps_suppkey"]),
    ("customer", [
        ("c_custkey", "int"), ("c_name", "varchar(25)"), ("c_address", "varchar(40)"),
        ("c_nationkey", "int"), ("c_phone", "char(15)"), ("c_acctbal", "decimal"),
        ("c_mktsegment", "char(10)"), ("c_comment", "varchar(117)"),
    ], ["c_custkey"]),
    ("orders", [
        ("o_orderkey", "int"), ("o_custkey", "int"), ("o_orderstatus", "char(1)"),
        ("o_totalprice", "decimal"), ("o_orderdate", "date"), ("o_orderpriority", "char(15)"),
        ("o_clerk", "char(15)"), ("o_shippriority", "int"), ("o_comment", "varchar(79)"),
    ], ["o_orderkey"]),
    ("lineitem", [
        ("l_orderkey", "int"), ("l_partkey", "int"), ("l_suppkey", "int"),
        ("l_linenumber", "int"), ("l_quantity", "decimal"), ("l_extendedprice", "decimal"),
        ("l_discount", "decimal"), ("l_tax", "decimal"), ("l_returnflag", "char(1)"),
        ("l_linestatus", "char(1)"), ("l_shipdate", "date"), ("l_commitdate", "date"),
        ("l_receiptdate", "date"), ("l_shipinstruct", "char(25)"), ("l_shipmode", "char(10)"),
        ("l_comment", "varchar(44)"),
    ], ["l_orderkey", "l_linenumber"]),
]

# Column kind -> SQL type, per system.
#  * int: Shoal's INT is 8 bytes; PostgreSQL gets BIGINT so both store the same width (and
#    o_orderkey cannot overflow a 4-byte INTEGER at large scale factors).
#  * char(n): Shoal accepts CHAR(n) and pads it, but its comparisons count the padding (README
#    limitations), so `c_mktsegment = 'BUILDING'` would match nothing; Shoal gets VARCHAR(n),
#    which holds the same (unpadded) text. PostgreSQL keeps the spec's CHAR(n).
TYPE_MAP = {
    "pg": {"int": "BIGINT", "decimal": "DECIMAL(15,2)", "char": "CHAR({n})",
           "varchar": "VARCHAR({n})", "date": "DATE"},
    "shoal": {"int": "INT", "decimal": "DECIMAL(15,2)", "char": "VARCHAR({n})",
              "varchar": "VARCHAR({n})", "date": "DATE"},
}

NUMERIC_KINDS = ("int", "decimal")
NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
ERROR_LINE = re.compile(r"(?:ERROR|FATAL):\s+(?:([0-9A-Z]{5}):\s+)?(.*)")
KILL_GRACE = 60  # seconds past statement_timeout before psql itself is killed


class LoadError(Exception):
    pass


def kind_of(spec):
    """'char(25)' -> ('char', 25); 'int' -> ('int', None)."""
    m = re.fullmatch(r"(\w+)(?:\((\d+)\))?", spec)
    return m.group(1), (int(m.group(2)) if m.group(2) else None)


def ddl(system, table, columns, key):
    types = TYPE_MAP[system]
    cols = []
    for name, spec in columns:
        kind, n = kind_of(spec)
        cols.append(f"    {name} {types[kind].format(n=n)} NOT NULL")
    cols.append(f"    PRIMARY KEY ({', '.join(key)})")
    return f"CREATE TABLE {table} (\n" + ",\n".join(cols) + "\n);\n"


def drop(system, table):
    if system == "pg":
        return f"DROP TABLE IF EXISTS {table} CASCADE;\n"
    return f"DROP TABLE IF EXISTS {table};\n"


class System:
    def __init__(self, key, label, host, port, user, db):
        self.key, self.label = key, label
        self.host, self.port, self.user, self.db = host, port, user, db

    def argv(self, db=None):
        return ["psql", "-X", "-h", self.host, "-p", str(self.port), "-U", self.user,
                "-d", db or self.db, "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose"]

    def env(self, timeout=None):
        env = dict(os.environ)
        if self.key == "shoal":
            env.setdefault("PGSSLMODE", "disable")
        elif timeout:
            opts = env.get("PGOPTIONS", "")
            env["PGOPTIONS"] = (opts + f" -c statement_timeout={timeout_text(timeout)}").strip()
        return env

    def run(self, sql, extra=(), timeout=None, db=None):
        """Runs `sql` (fed on stdin) in one psql; returns (rc, stdout, stderr, seconds)."""
        argv = self.argv(db) + list(extra) + ["-f", "-"]
        if timeout and self.key == "shoal":
            sql = f"SET statement_timeout = '{timeout_text(timeout)}';\n" + sql
        start = time.perf_counter()
        try:
            p = subprocess.run(argv, input=sql, capture_output=True, text=True,
                               env=self.env(timeout),
                               timeout=(timeout + KILL_GRACE) if timeout else None)
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            return None, out, "psql killed: no answer within the timeout", \
                time.perf_counter() - start
        return p.returncode, p.stdout, p.stderr, time.perf_counter() - start

    def scalar(self, sql, db=None):
        rc, out, err, _ = self.run(sql, ["-A", "-t", "-q"], db=db)
        if rc != 0:
            raise LoadError(f"{self.label}: {first_error(err)[1]}")
        return out.strip()


def timeout_text(seconds):
    """statement_timeout's value: '300s', or milliseconds ('1500ms') for a fraction."""
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{max(1, round(seconds * 1000))}ms"


def first_error(stderr):
    """(sqlstate or None, message) of the first ERROR line psql printed."""
    for line in stderr.splitlines():
        m = ERROR_LINE.search(line)
        if m:
            return m.group(1), m.group(2).strip()
    lines = [l for l in stderr.splitlines() if l.strip()]
    return None, (lines[0].strip() if lines else "psql failed with no message")


# ---------------------------------------------------------------------------------- loading

def table_files(data, table):
    whole = data / f"{table}.tbl"
    if whole.is_file():
        return [whole]
    chunks = glob.glob(str(data / f"{table}.tbl.*"))
    chunks.sort(key=lambda p: int(p.rsplit(".", 1)[1]) if p.rsplit(".", 1)[1].isdigit() else 0)
    return [Path(c) for c in chunks]


def tbl_rows(files):
    """Yields each line of the files without its newline and trailing `|`."""
    for path in files:
        with open(path, encoding="utf-8", newline="") as f:
            for line in f:
                line = line.rstrip("\r\n")
                if not line:
                    continue
                if line.endswith("|"):
                    line = line[:-1]
                yield line


def ensure_pg_database(pg):
    exists = pg.scalar(f"SELECT 1 FROM pg_database WHERE datname = '{pg.db}';", db="postgres")
    if not exists:
        print(f"PostgreSQL: creating database {pg.db} (C collation)")
        pg.scalar(f'CREATE DATABASE "{pg.db}" TEMPLATE template0 ENCODING \'UTF8\' '
                  f"LC_COLLATE 'C' LC_CTYPE 'C';", db="postgres")
        return
    collate = pg.scalar(f"SELECT datcollate FROM pg_database WHERE datname = '{pg.db}';",
                        db="postgres")
    if collate.split(".")[0] not in ("C", "POSIX"):
        print(f"warning: PostgreSQL database {pg.db} has collation {collate}; ORDER BY on text"
              " may differ from Shoal's bytewise order (drop it to have it recreated with C)",
              file=sys.stderr)


def create_tables(system):
    sql = "DROP VIEW IF EXISTS revenue0;\n"
    sql += "".join(drop(system.key, t) for t, _, _ in reversed(TABLES))
    sql += "".join(ddl(system.key, t, c, k) for t, c, k in TABLES)
    rc, _, err, _ = system.run(sql, ["-q"])
    if rc != 0:
        raise LoadError(f"{system.label}: creating the tables: {first_error(err)[1]}")


def load_pg(pg, table, files, tmpdir):
    start = time.perf_counter()
    clean = Path(tmpdir) / f"{table}.csv"
    rows = 0
    with open(clean, "w", encoding="utf-8", newline="\n") as out:
        for line in tbl_rows(files):
            out.write(line)
            out.write("\n")
            rows += 1
    path = str(clean).replace("'", "''")
    rc, _, err, _ = pg.run(f"\\copy {table} FROM '{path}' WITH (FORMAT csv, DELIMITER '|')\n",
                           ["-q"])
    clean.unlink()
    if rc != 0:
        raise LoadError(f"PostgreSQL: loading {table}: {first_error(err)[1]}")
    return rows, time.perf_counter() - start


def sql_value(field, kind):
    if kind in NUMERIC_KINDS:
        if not NUMBER.match(field):
            raise LoadError(f"not a number: {field!r}")
        return field
    return "'" + field.replace("'", "''") + "'"


def load_shoal(shoal, table, columns, files, batch):
    kinds = [kind_of(spec)[0] for _, spec in columns]
    start = time.perf_counter()
    argv = shoal.argv() + ["-q", "-f", "-"]
    with tempfile.TemporaryFile("w+") as errf:
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=errf, text=True, env=shoal.env())
        rows, pending, broken = 0, [], False
        report_every, next_report = 500_000, 500_000

        def flush():
            p.stdin.write(f"INSERT INTO {table} VALUES\n" + ",\n".join(pending) + ";\n")
            pending.clear()

        try:
            for line in tbl_rows(files):
                fields = line.split("|")
                if len(fields) != len(kinds):
                    raise LoadError(f"Shoal: {table}: a line has {len(fields)} fields, "
                                    f"not {len(kinds)}: {line[:100]!r}")
                pending.append("(" + ", ".join(sql_value(f, k) for f, k in zip(fields, kinds))
                               + ")")
                rows += 1
                if len(pending) >= batch:
                    flush()
                if rows >= next_report:
                    print(f"  shoal {table}: {rows} rows, {time.perf_counter() - start:.0f} s",
                          flush=True)
                    next_report += report_every
            if pending:
                flush()
            p.stdin.close()
        except BrokenPipeError:  # psql stopped (ON_ERROR_STOP): its stderr says why
            broken = True
            try:
                p.stdin.close()
            except OSError:
                pass
        except LoadError:
            p.kill()
            p.wait()
            raise
        rc = p.wait()
        errf.seek(0)
        err = errf.read()
    if rc != 0 or broken:
        raise LoadError(f"Shoal: loading {table}: {first_error(err)[1]}")
    return rows, time.perf_counter() - start


def load(args, pg, shoal):
    data = Path(args.data)
    files = {}
    for table, _, _ in TABLES:
        files[table] = table_files(data, table)
        if not files[table]:
            raise LoadError(f"no {table}.tbl in {data}")
    ensure_pg_database(pg)
    for system in (pg, shoal):
        create_tables(system)
    counts = {}
    with tempfile.TemporaryDirectory(prefix="tpch-load-") as tmpdir:
        for table, columns, _ in TABLES:
            rows, secs = load_pg(pg, table, files[table], tmpdir)
            print(f"PostgreSQL {table:<9} {rows:>10} rows {secs:9.1f} s", flush=True)
            rows2, secs2 = load_shoal(shoal, table, columns, files[table], args.batch)
            print(f"Shoal      {table:<9} {rows2:>10} rows {secs2:9.1f} s", flush=True)
            counts[table] = rows
    for system in (pg, shoal):
        start = time.perf_counter()
        rc, _, err, _ = system.run("ANALYZE;\n", ["-q"])
        if rc != 0:
            raise LoadError(f"{system.label}: ANALYZE: {first_error(err)[1]}")
        print(f"{system.label}: ANALYZE {time.perf_counter() - start:.1f} s")
        for table, _, _ in TABLES:
            n = system.scalar(f"SELECT count(*) FROM {table};")
            if n != str(counts[table]):
                raise LoadError(f"{system.label}: {table} has {n} rows, the file {counts[table]}")
    print("row counts match the files on both systems")


# -------------------------------------------------------------------------------- comparing

def field_eq(a, b):
    a, b = a.rstrip(" "), b.rstrip(" ")
    if a == b:
        return True
    if NUMBER.match(a) and NUMBER.match(b):
        x, y = float(a), float(b)
        scale = max(abs(x), abs(y))
        if scale < 1:
            return abs(x - y) <= 0.005
        return abs(x - y) <= 1e-6 * scale
    return False


def row_eq(r, s):
    return len(r) == len(s) and all(field_eq(a, b) for a, b in zip(r, s))


def sort_key(row):
    return tuple((0, float(f), "") if NUMBER.match(f.rstrip(" ")) else (1, 0.0, f.rstrip(" "))
                 for f in row)


def show_row(row, limit=80):
    text = ", ".join(f.rstrip(" ") for f in row)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def compare(pg_rows, shoal_rows):
    """Returns (result text, whether it counts as a match)."""
    if len(pg_rows) == len(shoal_rows) and all(map(row_eq, pg_rows, shoal_rows)):
        return "match", True
    if len(pg_rows) == len(shoal_rows):
        a, b = sorted(pg_rows, key=sort_key), sorted(shoal_rows, key=sort_key)
        if all(map(row_eq, a, b)):
            return "same rows, different order", True
    i = next((i for i, (r, s) in enumerate(zip(pg_rows, shoal_rows)) if not row_eq(r, s)),
             min(len(pg_rows), len(shoal_rows)))
    counts = "" if len(pg_rows) == len(shoal_rows) else \
        f"PostgreSQL {len(pg_rows)} rows, Shoal {len(shoal_rows)}; "
    pg_row = show_row(pg_rows[i]) if i < len(pg_rows) else "(none)"
    shoal_row = show_row(shoal_rows[i]) if i < len(shoal_rows) else "(none)"
    return (f"MISMATCH ({counts}first differing row {i + 1}: PostgreSQL `{pg_row}`, "
            f"Shoal `{shoal_row}`)"), False


# --------------------------------------------------------------------------------- queries

QUERY_FLAGS = ["-A", "-t", "-F", "|", "-q"]


def run_query(system, n, sql, timeout):
    """Returns (ms, rows, failure): failure None, 'timeout' or 'error: ...'."""
    if n == 15:  # a run stopped between the CREATE VIEW and the DROP VIEW left it behind
        system.run("DROP VIEW IF EXISTS revenue0;\n", ["-q"])
    rc, out, err, secs = system.run(sql, QUERY_FLAGS, timeout=timeout)
    ms = secs * 1000
    if rc is None:
        return ms, None, "timeout"
    if rc != 0:
        state, msg = first_error(err)
        if state == "57014" or "statement timeout" in msg:
            return ms, None, "timeout"
        return ms, None, "error: " + msg + (f" (SQLSTATE {state})" if state else "")
    return ms, [line.split("|") for line in out.splitlines()], None


def md_cell(text):
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def version(system):
    try:
        return system.scalar("SELECT version();").splitlines()[0]
    except (LoadError, IndexError):
        return "version unknown"


def run_queries(args, pg, shoal):
    numbers = args.queries
    header = [
        f"TPC-H, {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, "
        f"data {args.data or '(as loaded)'}, {os.cpu_count()} cores",
        f"PostgreSQL {pg.host}:{pg.port}/{pg.db}: {version(pg)}",
        f"Shoal {shoal.host}:{shoal.port}/{shoal.db}: {version(shoal)}",
        "Times are wall-clock ms around one psql process per query (they include psql start-up "
        "and connection, measured the same way on both); ratio = Shoal / PostgreSQL; "
        f"timeout {args.timeout:g} s.",
        "",
        "| query | PostgreSQL ms | Shoal ms | ratio | result |",
        "|---|---:|---:|---:|---|",
    ]
    for line in header:
        print(line)
    lines, ratios, matches = [], [], 0
    for n in numbers:
        sql = (QUERY_DIR / f"q{n:02d}.sql").read_text()
        pg_ms, pg_rows, pg_fail = run_query(pg, n, sql, args.timeout)
        sh_ms, sh_rows, sh_fail = run_query(shoal, n, sql, args.timeout)
        ratio = ""
        if pg_fail:
            result = f"PostgreSQL {pg_fail}" + (f"; Shoal {sh_fail}" if sh_fail else "")
        elif sh_fail:
            result = sh_fail
        else:
            result, ok = compare(pg_rows, sh_rows)
            ratio = f"{sh_ms / pg_ms:.2f}" if pg_ms > 0 else ""
            if ok:
                matches += 1
                if pg_ms > 0 and sh_ms > 0:
                    ratios.append(sh_ms / pg_ms)
        pg_cell = "" if pg_fail == "timeout" else f"{pg_ms:.0f}"
        sh_cell = "" if sh_fail == "timeout" else f"{sh_ms:.0f}"
        line = f"| Q{n} | {pg_cell} | {sh_cell} | {ratio} | {md_cell(result)} |"
        print(line, flush=True)
        lines.append(line)
    if ratios:
        geo = math.exp(sum(map(math.log, ratios)) / len(ratios))
        summary = (f"Geometric mean of the ratio over the {len(ratios)} matching queries: "
                   f"{geo:.2f}; {matches} of {len(numbers)} queries match.")
    else:
        summary = f"No matching queries to average; {matches} of {len(numbers)} queries match."
    print()
    print(summary)
    if args.out:
        out = Path(args.out)
        with open(out, "a", encoding="utf-8") as f:
            if out.stat().st_size > 0:
                f.write("\n")
            f.write("\n".join(header + lines + ["", summary]) + "\n")
        print(f"appended to {out}")


def parse_queries(text):
    try:
        numbers = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of query numbers: {text!r}")
    bad = [n for n in numbers if not 1 <= n <= 22]
    if bad or not numbers:
        raise argparse.ArgumentTypeError(f"queries are numbered 1 to 22: {text!r}")
    return numbers


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="See the module docstring (top of this file) for details.")
    ap.add_argument("--data", help="directory of TPC-H .tbl files (not needed with --skip-load)")
    ap.add_argument("--pg-host", default="127.0.0.1")
    ap.add_argument("--pg-port", type=int, default=54330)
    ap.add_argument("--pg-user", default="postgres")
    ap.add_argument("--pg-db", default="tpch")
    ap.add_argument("--shoal-host", default="127.0.0.1")
    ap.add_argument("--shoal-port", type=int, default=15432,
                    help="a node's pgwire port (--pg-addr), default 15432")
    ap.add_argument("--shoal-user", default="root")
    ap.add_argument("--shoal-db", default="defaultdb")
    ap.add_argument("--queries", type=parse_queries, default=list(range(1, 23)),
                    help="comma-separated query numbers, default all 22")
    ap.add_argument("--skip-load", action="store_true", help="use the tables already loaded")
    ap.add_argument("--out", help="append the markdown report to this file")
    ap.add_argument("--timeout", type=float, default=300,
                    help="per-query statement_timeout in seconds (0: none), default 300")
    ap.add_argument("--batch", type=int, default=500, help="rows per INSERT into Shoal")
    args = ap.parse_args()
    if args.batch < 1:
        ap.error("--batch must be at least 1")
    if not args.skip_load and not (args.data and Path(args.data).is_dir()):
        ap.error(f"--data DIR (a directory of .tbl files) is needed unless --skip-load")

    pg = System("pg", "PostgreSQL", args.pg_host, args.pg_port, args.pg_user, args.pg_db)
    shoal = System("shoal", "Shoal", args.shoal_host, args.shoal_port, args.shoal_user,
                   args.shoal_db)
    if not args.skip_load:
        try:
            load(args, pg, shoal)
        except (LoadError, OSError) as e:
            print(f"load failed: {e}", file=sys.stderr)
            return 1
    run_queries(args, pg, shoal)
    return 0


if __name__ == "__main__":
    sys.exit(main())
