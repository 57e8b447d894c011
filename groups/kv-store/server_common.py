"""Shared by both servers (a helper file): the tiny key-value protocol.

    SET key value  -> OK
    GET key        -> VALUE value | MISSING
    BULK n         -> (reads n bytes) GOT n
"""
import os


def port():
    """This run's port: pairbench gives each run its own (PAIRBENCH_PORT), the same on both
    sides; SERVER_PORT overrides it."""
    return int(os.environ.get("SERVER_PORT") or os.environ["PAIRBENCH_PORT"])


def answer(store, line, read_exact):
    words = line.split(" ", 2)
    if words[0] == "SET" and len(words) == 3:
        store[words[1]] = words[2]
        return "OK\n"
    if words[0] == "GET" and len(words) == 2:
        v = store.get(words[1])
        return "MISSING\n" if v is None else f"VALUE {v}\n"
    if words[0] == "BULK" and len(words) == 2:
        n = int(words[1])
        read_exact(n)
        return f"GOT {n}\n"
    return "ERR\n"
