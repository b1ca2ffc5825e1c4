#!/usr/bin/env python3
"""The select-heavy join of issue 23: 8 tables of 100 rows joined on equality predicates
written in WHERE, on Shoal and on PostgreSQL, through psql; prints the answers (which must
agree) and the median of --runs timed runs on each.

    scripts/bench-join8.py --pg-port 25432 --pg-db tpch --shoal-port 15431

Tables j1..j8 (k INT PRIMARY KEY, v INT) hold k = 1..100 and v = (k * 7) % 100 + 1; the query
counts the chains j1.v = j2.k, j2.v = j3.k, ... The timed figure is the whole psql call
(start-up included, the same on both), in milliseconds.
"""
import argparse
import statistics
import subprocess
import sys
import time

TABLES = 8
ROWS = 100


def psql(host, port, user, db, sql):
    cmd = ["psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h", host, "-p", str(port),
           "-U", user, "-d", db, "-c", sql]
    started = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = (time.monotonic() - started) * 1000
    if done.returncode != 0:
        sys.exit(f"psql on port {port} failed: {done.stderr.strip()}")
    return done.stdout.strip(), elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pg-host", default="127.0.0.1")
    parser.add_argument("--pg-port", type=int, default=54330)
    parser.add_argument("--pg-user", default="postgres")
    parser.add_argument("--pg-db", default="postgres")
    parser.add_argument("--shoal-host", default="127.0.0.1")
    parser.add_argument("--shoal-port", type=int, default=15432)
    parser.add_argument("--shoal-user", default="root")
    parser.add_argument("--shoal-db", default="defaultdb")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    systems = [
        ("PostgreSQL", (args.pg_host, args.pg_port, args.pg_user, args.pg_db)),
        ("Shoal", (args.shoal_host, args.shoal_port, args.shoal_user, args.shoal_db)),
    ]
    rows = ", ".join(f"({k}, {(k * 7) % ROWS + 1})" for k in range(1, ROWS + 1))
    setup = []
    for i in range(1, TABLES + 1):
        setup.append(f"DROP TABLE IF EXISTS j{i}")
        setup.append(f"CREATE TABLE j{i} (k INT PRIMARY KEY, v INT)")
        setup.append(f"INSERT INTO j{i} VALUES {rows}")
    setup.append("ANALYZE")
    tables = ", ".join(f"j{i}" for i in range(1, TABLES + 1))
    chain = " AND ".join(f"j{i}.v = j{i + 1}.k" for i in range(1, TABLES))
    query = f"SELECT count(*), sum(j1.k + j{TABLES}.v) FROM {tables} WHERE {chain}"
    print(f"query: {query}")
    answers = {}
    for name, conn in systems:
        for statement in setup:
            psql(*conn, statement)
        answer, _ = psql(*conn, query)
        times = [psql(*conn, query)[1] for _ in range(args.runs)]
        answers[name] = answer
        print(f"{name}: answer {answer}, median {statistics.median(times):.1f} ms "
              f"over {args.runs} runs (min {min(times):.1f}, max {max(times):.1f})")
    if len(set(answers.values())) != 1:
        sys.exit(f"the answers differ: {answers}")


if __name__ == "__main__":
    main()
