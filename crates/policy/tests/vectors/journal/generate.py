#!/usr/bin/env python3
"""Journal vectors written from docs/audit-log.md alone, with Python's
`cryptography` (an implementation independent of keyward's Rust code).

Writes audit.jsonl (two records in the earlier, unsigned format, then three
signed ones), ledger.jsonl (two signed records), anchor.json (covering four
audit records and both ledger records) and journal_key.hex. The seed is fixed
so that the files are reproducible; it is a test key and signs nothing else.

    python3 generate.py   # in this directory
"""
import hashlib
import json
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

SEED = bytes(range(32))
KEY = Ed25519PrivateKey.from_private_bytes(SEED)
PUBLIC = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
GENESIS = "0" * 64
DOMAINS = {"audit": b"keyward/audit/v1\0", "ledger": b"keyward/ledger/v1\0"}


def link_hash(stream, seq, prev, rec):
    return hashlib.sha256(DOMAINS[stream] + str(seq).encode() + b"\0" + prev.encode() + b"\0" + rec.encode()).hexdigest()


def sign_record(stream, h):
    return KEY.sign(b"keyward/journal/v2\0" + stream.encode() + b"\0" + h.encode()).hex()


def journal(stream, recs, unsigned=0):
    prev, lines = GENESIS, []
    for i, rec in enumerate(recs, start=1):
        body = json.dumps(rec, separators=(",", ":"))
        h = link_hash(stream, i, prev, body)
        if i <= unsigned:
            lines.append(f'{{"seq":{i},"prev":"{prev}","hash":"{h}","rec":{body}}}\n')
        else:
            lines.append(f'{{"seq":{i},"prev":"{prev}","hash":"{h}","sig":"{sign_record(stream, h)}","rec":{body}}}\n')
        prev = h
    return "".join(lines), [json.loads(l)["hash"] for l in lines]


audit_recs = [
    {"ts_ms": 1796000000000, "event": "initialized", "ok": True},
    {"ts_ms": 1796000000001, "event": "starting", "pid": 41},
    {"ts_ms": 1796000000002, "event": "journals_anchored", "adopted_audit_records": 2, "adopted_ledger_records": 0},
    {"ts_ms": 1796000000003, "event": "intent_decided", "request_id": "r-1", "decision": "auto_approve"},
    {"ts_ms": 1796000000004, "event": "signed", "request_id": "r-1", "signature": "00" * 64},
]
ledger_recs = [
    {"t": "approved", "id": "r-0", "ts": 1796000000, "by": 0},
    {"t": "expired", "id": "r-0", "ts": 1796000300},
]
audit, audit_hashes = journal("audit", audit_recs, unsigned=2)
ledger, ledger_hashes = journal("ledger", ledger_recs)
counter, ts = 7, 1796000000005
fields = [str(counter), "4", audit_hashes[3], "2", ledger_hashes[1], str(ts), PUBLIC.hex()]
sig = KEY.sign(b"keyward/anchor/v1\0" + "\0".join(fields).encode()).hex()
anchor = (
    f'{{"v":1,"counter":{counter},"audit_records":4,"audit_head":"{audit_hashes[3]}","ledger_records":2,'
    f'"ledger_head":"{ledger_hashes[1]}","ts_ms":{ts},"journal_key":"{PUBLIC.hex()}","sig":"{sig}"}}\n'
)
for name, text in [("audit.jsonl", audit), ("ledger.jsonl", ledger), ("anchor.json", anchor),
                   ("journal_key.hex", PUBLIC.hex() + "\n")]:
    with open(name, "w") as f:
        f.write(text)
