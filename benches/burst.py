#!/usr/bin/env python3
"""A burst of wrong logins released at once against a `barong` binary; prints the answers'
statuses and the server's peak resident set (VmHWM) before and after.

    python3 benches/burst.py target/release/barong            # default limits
    python3 benches/burst.py target/release/barong -n 200 --limits-off
    python3 benches/burst.py BIN -e BARONG_PASSWORD_HASH_QUEUE=8

Each request gets its own connection and is written except its last byte; then every last
byte is sent together, so the server sees the whole burst at the same instant. The server runs
on SQLite in a temporary directory, on loopback ports. Only the standard library is used.
"""

import argparse
import collections
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

PASSWORD = "Iequ4geiEWQw"


def vm_hwm_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    return -1


def request(addr, path, body):
    data = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nhost: {addr[0]}:{addr[1]}\r\n"
        "content-type: application/json\r\nconnection: close\r\n"
        f"content-length: {len(data)}\r\n\r\n"
    ).encode()
    return head + data


def exchange(addr, raw, barrier=None):
    with socket.create_connection(addr) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.sendall(raw[:-1])
        if barrier is not None:
            barrier.wait()
        conn.sendall(raw[-1:])
        chunks = []
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    answer = b"".join(chunks)
    return int(answer.split(b" ", 2)[1])


def start(binary, data_dir, env):
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "BARONG_DATA_DIR": data_dir,
        "BARONG_DATABASE_URL": f"sqlite://{data_dir}/barong.db",
        "BARONG_API_ADDR": "127.0.0.1:0",
        "BARONG_AUTHZ_ADDR": "127.0.0.1:0",
        "BARONG_LOG_FORMAT": "json",
        "RUST_LOG": "info",
    }
    environment.update(env)
    server = subprocess.Popen(
        [binary, "serve"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in server.stderr:
        try:
            fields = json.loads(line).get("fields", {})
        except ValueError:
            continue
        if fields.get("message") == "barong listening":
            host, port = fields["api"].rsplit(":", 1)
            # Keep draining the log so the server never blocks on a full pipe.
            threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()
            return server, (host, int(port))
    raise SystemExit("barong did not start")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("-n", type=int, default=200, help="requests in the burst")
    parser.add_argument("--limits-off", action="store_true", help="every login is checked")
    parser.add_argument(
        "--spread", action="store_true", help="each login for another unknown e-mail (per-address limit)"
    )
    parser.add_argument("-e", action="append", default=[], help="extra KEY=VALUE settings")
    args = parser.parse_args()
    env = dict(kv.split("=", 1) for kv in args.e)
    if args.limits_off:
        env.setdefault("BARONG_RATE_LIMIT_LOGIN_IP", "0")
        env.setdefault("BARONG_RATE_LIMIT_LOGIN_ACCOUNT", "0")
    with tempfile.TemporaryDirectory() as data_dir:
        server, addr = start(args.binary, data_dir, env)
        try:
            email = "burst@barong.test"
            signup = request(addr, "/api/v2/barong/identity/users", {"email": email, "password": PASSWORD})
            assert exchange(addr, signup) == 201, "sign-up"
            logins = [
                request(
                    addr,
                    "/api/v2/barong/identity/sessions",
                    {"email": f"nobody{n}@barong.test" if args.spread else email, "password": "Wrong123Pass"},
                )
                for n in range(args.n)
            ]
            before = vm_hwm_mib(server.pid)
            barrier = threading.Barrier(args.n)
            statuses = collections.Counter()
            lock = threading.Lock()

            def one(login):
                status = exchange(addr, login, barrier)
                with lock:
                    statuses[status] += 1

            started = time.monotonic()
            threads = [threading.Thread(target=one, args=(login,)) for login in logins]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.monotonic() - started
            after = vm_hwm_mib(server.pid)
            print(
                json.dumps(
                    {
                        "binary": args.binary,
                        "requests": args.n,
                        "spread": args.spread,
                        "settings": env,
                        "statuses": dict(sorted(statuses.items())),
                        "vm_hwm_mib_before": before,
                        "vm_hwm_mib_after": after,
                        "seconds": round(elapsed, 2),
                    }
                )
            )
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    sys.exit(main())
