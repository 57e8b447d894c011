"""Send the commands given as arguments to the kv server of this pair, one per line,
print each with its answer, and report the mean round trip as a metric."""
import os
import socket
import subprocess
import sys
import time

host = os.environ["PAIRBENCH_REMOTE_HOST"]
port = int(os.environ.get("PAIRBENCH_PORT") or os.environ.get("KV_PORT") or "7781")
took = []
with socket.create_connection((host, port), timeout=10) as s, s.makefile("rw") as f:
    for cmd in sys.argv[1:]:
        start = time.monotonic()
        f.write(cmd + "\n")
        f.flush()
        reply = f.readline().strip()
        took.append((time.monotonic() - start) * 1000)
        print(f"> {cmd}\n{reply}")
    f.write("QUIT\n")
    f.flush()
mean = sum(took) / len(took)
subprocess.run(["report_metric", "round_trip_ms", f"{mean:.3f}", "ms"], check=True)
