#!/usr/bin/env python3
"""Builds sample-data/ (embedded in the binary by `kiln serve --load-sample-data`).

Usage: python3 tools/make_sample_data.py [../shared/data]
Writes gzip files with mtime 0 so the output is byte-for-byte reproducible.
"""
import glob
import gzip
import io
import os
import sys

data = sys.argv[1] if len(sys.argv) > 1 else "../shared/data"
out = os.path.join(os.path.dirname(__file__), "..", "sample-data")
os.makedirs(out, exist_ok=True)


def write_gz(name, payload):
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write(payload)
    with open(os.path.join(out, name), "wb") as f:
        f.write(buffer.getvalue())


lines = b""
for path in sorted(glob.glob(os.path.join(data, "synthea", "small", "*.ndjson"))):
    with open(path, "rb") as f:
        content = f.read()
    lines += content if content.endswith(b"\n") else content + b"\n"
write_gz("synthea-small.ndjson.gz", lines)

for name in ["uscore_bundle_patient_85.json", "uscore_bundle_patient_355.json", "uscore_group_1a.json"]:
    with open(os.path.join(data, "us-core-testdata", name), "rb") as f:
        write_gz(name + ".gz", f.read())
