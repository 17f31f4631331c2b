#!/usr/bin/env python3
"""An independent implementation of the keyward IPC v1 key schedule and
record layer, written from docs/ipc-protocol.md alone (Python `cryptography`
plus a pure-Python HChaCha20). It prints the known-answer vectors that
crates/ipc/tests/vectors/kat-v1.txt holds and the Rust tests check, so the
spec, this script and the Rust code must all agree.

Usage: python3 scripts/ipc_kat.py > crates/ipc/tests/vectors/kat-v1.txt
"""
import hashlib
import hmac
import struct

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def x25519_pub(sk):
    return X25519PrivateKey.from_private_bytes(sk).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def x25519(sk, pk):
    return X25519PrivateKey.from_private_bytes(sk).exchange(X25519PublicKey.from_public_bytes(pk))


def hkdf_extract(salt, ikm):
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def hkdf_expand(prk, info, length):
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:length]


def rotl(v, c):
    return ((v << c) & 0xFFFFFFFF) | (v >> (32 - c))


def hchacha20(key, nonce16):
    s = list(struct.unpack("<4I", b"expand 32-byte k")) + list(struct.unpack("<8I", key)) + list(struct.unpack("<4I", nonce16))

    def qr(a, b, c, d):
        s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = rotl(s[d] ^ s[a], 16)
        s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = rotl(s[b] ^ s[c], 12)
        s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = rotl(s[d] ^ s[a], 8)
        s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = rotl(s[b] ^ s[c], 7)

    for _ in range(10):
        qr(0, 4, 8, 12); qr(1, 5, 9, 13); qr(2, 6, 10, 14); qr(3, 7, 11, 15)
        qr(0, 5, 10, 15); qr(1, 6, 11, 12); qr(2, 7, 8, 13); qr(3, 4, 9, 14)
    return struct.pack("<8I", *(s[0:4] + s[12:16]))


def xchacha_seal(key, nonce24, aad, pt):
    sub = hchacha20(key, nonce24[:16])
    return ChaCha20Poly1305(sub).encrypt(b"\0\0\0\0" + nonce24[16:], pt, aad)


MAGIC, VERSION = b"KWIP", 1


def record(keys, session_id, sender, msg_type, counter, payload):
    key, nonce_key = keys
    header = struct.pack(">H", VERSION) + session_id + bytes([sender, msg_type]) + struct.pack(">Q", counter)
    nonce = hkdf_expand(nonce_key, b"kw1 record nonce" + session_id + struct.pack(">Q", counter) + bytes([sender]), 24)
    return header + xchacha_seal(key, nonce, header, payload)


def main():
    static_sk = bytes(range(1, 33))
    client_e = bytes(range(33, 65))
    server_e = bytes(range(65, 97))
    session_id = bytes(range(0xA0, 0xB0))
    t_client, t_server = 1_795_000_000, 1_795_000_001
    claims = b"role=agent"
    static_pk = x25519_pub(static_sk)

    ch = MAGIC + struct.pack(">HBB", VERSION, 1, 1) + struct.pack(">Q", t_client) + x25519_pub(client_e)
    ch += hashlib.sha256(static_pk).digest()[:16] + bytes([len(claims)]) + claims
    sh_body = MAGIC + struct.pack(">HBB", VERSION, 2, 1) + struct.pack(">Q", t_server) + session_id + static_pk + x25519_pub(server_e)
    th1 = hashlib.sha256(b"keyward-ipc-v1 handshake" + ch + sh_body).digest()
    ee = x25519(client_e, x25519_pub(server_e))
    es = x25519(client_e, static_pk)
    prk = hkdf_extract(th1, ee + es)
    k = {label: hkdf_expand(prk, label.encode(), 32) for label in
         ["kw1 server finished", "kw1 client finished", "kw1 c2s key", "kw1 s2c key", "kw1 c2s nonce", "kw1 s2c nonce"]}
    server_confirm = hmac.new(k["kw1 server finished"], th1, hashlib.sha256).digest()
    sh = sh_body + server_confirm
    th2 = hashlib.sha256(th1 + server_confirm).digest()
    cf = MAGIC + struct.pack(">HBB", VERSION, 3, 1) + session_id + hmac.new(k["kw1 client finished"], th2, hashlib.sha256).digest()
    c2s = (k["kw1 c2s key"], k["kw1 c2s nonce"])
    s2c = (k["kw1 s2c key"], k["kw1 s2c nonce"])
    r1 = record(c2s, session_id, 1, 0x10, 1, b"hello signer")
    r2 = record(s2c, session_id, 2, 0x11, 1, b"hello client")
    # Ratchet the c2s direction (KeyUpdate as counter 2), then counter 3.
    ku = record(c2s, session_id, 1, 0x7E, 2, b"")
    c2s_next = (hkdf_expand(c2s[0], b"kw1 key update", 32), hkdf_expand(c2s[1], b"kw1 nonce update", 32))
    r3 = record(c2s_next, session_id, 1, 0x10, 3, b"after rekey")

    out = [
        ("static_secret", static_sk), ("static_public", static_pk), ("client_ephemeral_secret", client_e),
        ("server_ephemeral_secret", server_e), ("session_id", session_id), ("client_time", struct.pack(">Q", t_client)),
        ("server_time", struct.pack(">Q", t_server)), ("claims", claims), ("client_hello", ch), ("server_hello", sh),
        ("th1", th1), ("prk", prk), ("c2s_key", c2s[0]), ("c2s_nonce_key", c2s[1]), ("s2c_key", s2c[0]),
        ("s2c_nonce_key", s2c[1]), ("client_finished", cf), ("record_c2s_1", r1), ("record_s2c_1", r2),
        ("record_c2s_2_key_update", ku), ("c2s_key_after_update", c2s_next[0]), ("record_c2s_3", r3),
    ]
    print("# keyward IPC v1 known-answer vectors (hex). Generated by scripts/ipc_kat.py,")
    print("# an implementation independent of the Rust code; see docs/ipc-protocol.md.")
    for name, value in out:
        print(f"{name} = {value.hex()}")


if __name__ == "__main__":
    main()
