"""Runs SQL statements on chdb (ClickHouse in process) for the Go tests.

Usage: python3 chdb_server.py DATA_DIR
Reads one JSON request per line on stdin: {"sql": "..."}; answers one JSON
line per request on stdout: {"meta": [...], "data": [[...]]} (the
statement's JSONCompact result, empty for statements without rows) or
{"error": "...", "code": N}.
"""
import json
import re
import sys

import chdb
from chdb import session


def main():
    sess = session.Session(sys.argv[1])
    print(json.dumps({"ready": True, "version": chdb.__version__,
                      "engine": str(sess.query("SELECT version()", "CSV")).strip().strip('"')}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        try:
            res = sess.query(req["sql"], "JSONCompact")
            text = res.bytes().decode("utf-8") if hasattr(res, "bytes") else str(res)
            out = json.loads(text) if text.strip() else {"meta": [], "data": []}
            print(json.dumps({"meta": out.get("meta", []), "data": out.get("data", [])}), flush=True)
        except Exception as e:  # noqa: BLE001 - every error goes back to the caller
            msg = str(e)
            m = re.search(r"Code: (\d+)", msg)
            print(json.dumps({"error": msg, "code": int(m.group(1)) if m else 0}), flush=True)


if __name__ == "__main__":
    main()
