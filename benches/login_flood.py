#!/usr/bin/env python3
"""Open-loop login flood (issue 16): POST /v1/auth/login at a fixed offered rate,
whatever the answers take, for a number of seconds; prints what came back.

Usage: login_flood.py URL USERNAME PASSWORD RATE SECONDS
Each login runs on its own thread (a closed loop would slow down with the server and
never offer more than it can take). Wrong-password logins would cost the same bcrypt
time; the right password is used so every 200 is a real session.
"""
import json
import sys
import threading
import time
import urllib.error
import urllib.request

url, username, password, rate, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
body = json.dumps({"username": username, "password": password}).encode()
results = []  # (status, seconds, retry_after)
lock = threading.Lock()


def login():
    started = time.monotonic()
    request = urllib.request.Request(url + "/v1/auth/login", data=body, headers={"content-type": "application/json"})
    retry_after = None
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            status = answer.status
    except urllib.error.HTTPError as err:
        status, retry_after = err.code, err.headers.get("retry-after")
    except Exception:  # connection refused or timed out
        status = "transport"
    with lock:
        results.append((status, time.monotonic() - started, retry_after))


threads = []
start = time.monotonic()
sent = 0
while time.monotonic() - start < seconds:
    due = start + sent / rate
    pause = due - time.monotonic()
    if pause > 0:
        time.sleep(pause)
    thread = threading.Thread(target=login)
    thread.start()
    threads.append(thread)
    sent += 1
for thread in threads:
    thread.join()

by_status = {}
for status, took, retry_after in results:
    by_status.setdefault(status, []).append((took, retry_after))
print(f"offered {sent} logins in {seconds:.0f} s ({rate:.1f}/s)")
for status, answers in sorted(by_status.items(), key=lambda kv: str(kv[0])):
    times = sorted(t for t, _ in answers)
    with_retry = sum(1 for _, r in answers if r)
    p50, p99 = times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))]
    extra = f", {with_retry} with Retry-After" if status == 503 else ""
    print(f"  {status}: {len(answers)} (p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms{extra})")
