# Memory under large request bodies: N concurrent 10 MB POSTs against a running kiln, printing
# the process's VmRSS (peak, right after, +5 s, +30 s). Usage: large_bodies.py PORT PID [N] [binary|invalid]
import sys, json, threading, time, http.client, base64, os
port = int(sys.argv[1]); pid = int(sys.argv[2]); n = int(sys.argv[3]) if len(sys.argv) > 3 else 200
kind = sys.argv[4] if len(sys.argv) > 4 else "binary"
def mem():
    d = {}
    for line in open(f"/proc/{pid}/status"):
        k, v = line.split(":", 1)
        if k in ("VmRSS", "VmHWM"): d[k] = int(v.split()[0]) // 1024
    return d
raw = os.urandom(7_500_000)
if kind == "binary":
    body = json.dumps({"resourceType": "Binary", "contentType": "application/octet-stream",
                       "data": base64.b64encode(raw).decode()}).encode()
    path = "/fhir/Binary"
else:  # a 10 MB body the validator refuses
    body = json.dumps({"resourceType": "Patient", "name": [{"text": "x" * 10_000_000}]}).encode()
    path = "/fhir/Patient"
print("body MB", len(body) / 1e6, "before", mem(), flush=True)
status = {}
lock = threading.Lock()
def send():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("POST", path, body, {"Content-Type": "application/fhir+json"})
    r = c.getresponse(); r.read()
    with lock: status[r.status] = status.get(r.status, 0) + 1
peak = [0]
done = threading.Event()
def watch():
    while not done.is_set():
        peak[0] = max(peak[0], mem()["VmRSS"]); time.sleep(0.2)
w = threading.Thread(target=watch); w.start()
t0 = time.time()
ts = [threading.Thread(target=send) for _ in range(n)]
for t in ts: t.start()
for t in ts: t.join()
done.set(); w.join()
print("statuses", status, "seconds", round(time.time() - t0, 1), "peak RSS MB", peak[0], "after", mem(), flush=True)
for s in (5, 30):
    time.sleep(s); print(f"+{s}s", mem(), flush=True)
