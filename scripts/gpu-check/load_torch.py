#!/usr/bin/env python3
"""The GPU load of `npm run gpu-check` when python3 has torch: half-precision 8192x8192
matrix products on cuda:0 (the caller sets CUDA_VISIBLE_DEVICES to the GPU or MIG instance),
plus 512 MiB of plain allocation so the process's memory is easy to see.

    python3 scripts/gpu-check/load_torch.py [--seconds S]

Prints one JSON line: {"ready": true, "pid": ..., "kind": "torch", ...} once the first
product is done, or {"ready": false, "error": ...} and exits 3 when torch or CUDA is missing.
Runs until SIGTERM or SIGINT, until its standard input closes (the check is gone), or for
S seconds (default 120) at most. It only computes: no GPU setting is touched.
"""
import json
import os
import signal
import sys
import threading
import time


def main(argv):
    seconds = 120.0
    if "--seconds" in argv:
        seconds = float(argv[argv.index("--seconds") + 1])
    try:
        import torch
    except Exception as e:
        print(json.dumps({"ready": False, "error": "import torch failed: %s" % e}), flush=True)
        return 3
    if not torch.cuda.is_available():
        print(json.dumps({"ready": False, "error": "torch %s sees no CUDA device" % torch.__version__}), flush=True)
        return 3
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def watch_stdin():
        try:
            sys.stdin.read()
        except Exception:
            pass
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    try:
        dev = torch.device("cuda:0")
        n = 8192
        a = torch.randn(n, n, device=dev, dtype=torch.float16)
        b = torch.randn(n, n, device=dev, dtype=torch.float16)
        c = torch.empty(n, n, device=dev, dtype=torch.float16)
        ballast = torch.zeros(512 * 1024 * 1024, dtype=torch.uint8, device=dev)
        torch.matmul(a, b, out=c)
        torch.cuda.synchronize()
    except Exception as e:
        print(json.dumps({"ready": False, "error": "CUDA failed: %s" % e}), flush=True)
        return 3
    print(json.dumps({"ready": True, "pid": os.getpid(), "kind": "torch", "device": torch.cuda.get_device_name(0),
                      "torch": torch.__version__, "ballast_bytes": ballast.numel()}), flush=True)
    deadline = time.time() + seconds
    while not stop.is_set() and time.time() < deadline:
        for _ in range(10):
            torch.matmul(a, b, out=c)
        torch.cuda.synchronize()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
