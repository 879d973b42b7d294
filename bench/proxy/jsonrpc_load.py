#!/usr/bin/env python3
"""Closed-loop load generator for sobot.request over the broker's JSON-RPC Unix socket.

Used by bench/proxy.sh because `sobot-broker bench --method` only knows token.get and
broker.health. Standard library only. CONNECTIONS persistent connections (threads, spread over
PROCESSES processes so one GIL does not cap the client), each sending one request line and
waiting for its reply; after WARMUP seconds, requests finished in the next DURATION seconds are
counted and timed. Prints one JSON object: requests, requests_per_s, p50_ms, p99_ms, errors.
"""
import argparse
import json
import multiprocessing
import socket
import threading
import time
from array import array

REQUEST = (json.dumps({"jsonrpc": "2.0", "id": 1, "method": "sobot.request",
                       "params": {"tenant": "acme", "path": "/api/ws/5/x", "body": {}}},
                      separators=(",", ":")) + "\n").encode()


def worker(path, measure_from, measure_until, out, errors, lock):
    latencies = array("d")
    bad = 0
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    reader = None
    try:
        sock.connect(path)
        reader = sock.makefile("rb")
        while True:
            start = time.monotonic()
            if start >= measure_until:
                break
            sock.sendall(REQUEST)
            line = reader.readline()
            end = time.monotonic()
            if not line:
                bad += 1
                break
            ok = b'"result"' in line and b'"status":200' in line
            if start >= measure_from and end <= measure_until:
                latencies.append(end - start)
                if not ok:
                    bad += 1
    except OSError:
        bad += 1
    finally:
        if reader is not None:
            reader.close()
        sock.close()
    with lock:
        out.extend(latencies)
        errors[0] += bad


def process_main(path, threads, measure_from, measure_until, queue):
    out, errors, lock = array("d"), [0], threading.Lock()
    pool = [threading.Thread(target=worker, args=(path, measure_from, measure_until, out, errors, lock))
            for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    queue.put((out.tobytes(), errors[0]))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--socket", required=True)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    args = parser.parse_args()

    processes = max(1, min(args.processes, args.connections))
    shares = [args.connections // processes + (1 if i < args.connections % processes else 0) for i in range(processes)]
    measure_from = time.monotonic() + 0.5 + args.warmup  # 0.5 s for the processes to start and connect
    measure_until = measure_from + args.duration
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    children = [context.Process(target=process_main, args=(args.socket, n, measure_from, measure_until, queue))
                for n in shares]
    for child in children:
        child.start()
    latencies, errors = array("d"), 0
    for _ in children:
        data, bad = queue.get()
        chunk = array("d")
        chunk.frombytes(data)
        latencies.extend(chunk)
        errors += bad
    for child in children:
        child.join()
        if child.exitcode != 0:
            errors += 1
    ordered = sorted(latencies)
    count = len(ordered)

    def percentile(p):
        return ordered[min(count - 1, int(p / 100.0 * count))] * 1000.0 if count else float("nan")

    print(json.dumps({"requests": count, "requests_per_s": count / args.duration,
                      "p50_ms": percentile(50), "p99_ms": percentile(99), "errors": errors,
                      "connections": args.connections, "processes": processes}))


if __name__ == "__main__":
    main()
