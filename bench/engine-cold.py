#!/usr/bin/env python3
"""The engine's share of a cold job: a fresh process loads the library with ctypes (as a host
does: no PowerShell), adds an environment for the Graph emulator, connects with an access token
and keeps one call alive twice. Each round is a new python3 process; prints each step in ms.
    python3 bench/engine-cold.py [rounds]      (expects a release build: cargo build --release --workspace)
"""
import ctypes, json, os, subprocess, sys, time

repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def job(library, url, call):
    t = [time.perf_counter()]
    lib = ctypes.CDLL(library)
    t.append(time.perf_counter())
    def answer(function, *args):
        out = ctypes.c_void_p()
        status = function(*args, ctypes.byref(out))
        if out.value:
            lib.mgka_string_free(out)
        t.append(time.perf_counter())
        return status
    statuses = [
        answer(lib.mgka_environment_add, json.dumps({"name": "Bench", "azureADEndpoint": url, "graphEndpoint": url}).encode()),
        answer(lib.mgka_connect, json.dumps({"authType": "AccessToken", "environment": "Bench"}).encode(), b"bench-token", ctypes.c_size_t(11)),
        answer(lib.mgka_keep_alive_by_id, call.encode(), None),
        answer(lib.mgka_keep_alive_by_id, call.encode(), None),
    ]
    assert statuses == [0, 0, 0, 0], statuses
    steps = ["load", "environment", "connect", "first keep-alive", "second keep-alive"]
    print("  ".join(f"{name} {1000 * (b - a):.2f}" for name, a, b in zip(steps, t, t[1:])) + f"  total {1000 * (t[-1] - t[0]):.1f} ms")

if __name__ == "__main__":
    if len(sys.argv) == 4:
        job(*sys.argv[1:])
        sys.exit(0)
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    emulator = subprocess.Popen([f"{repo}/target/release/graph-emulator", "--port", "0", "--log-capacity", "0"], stdout=subprocess.PIPE, text=True)
    try:
        url = emulator.stdout.readline().strip().removeprefix("graph-emulator listening on ")
        import urllib.request
        request = urllib.request.Request(f"{url}/_emulator/calls", data=b'{"count":1}', headers={"content-type": "application/json"})
        call = json.load(urllib.request.urlopen(request))["ids"][0]
        for _ in range(rounds):
            subprocess.run([sys.executable, __file__, f"{repo}/target/release/libmgkeepalive.so", url, call], check=True)
    finally:
        emulator.kill()
