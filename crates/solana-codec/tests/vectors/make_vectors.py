#!/usr/bin/env python3
"""Generate exact_transfer.json with solders, an implementation independent of solana-codec.

solders wraps the Rust solana-sdk (solana-message's CompiledKeys, find_program_address, the
compute-budget instruction builders). This script builds keyward's 4-instruction x402 "exact"
message with those, *not* with any byte layout of its own, and records inputs and the result:

    [SetComputeUnitLimit, SetComputeUnitPrice, TransferChecked(src, mint, dst, authority), Memo]

Run:  pip install solders==0.29.0 && python3 make_vectors.py   (writes exact_transfer.json here)
The Rust tests read only the JSON; they never need Python.
"""

import hashlib
import json
import os
import struct

import solders
from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import MessageV0, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.token.associated import get_associated_token_address

TOKEN = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
TOKEN_2022 = Pubkey.from_string("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb")
ATA_PROGRAM = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")
MEMO = Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr")
USDC = Pubkey.from_string("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v")
USDC_DEVNET = Pubkey.from_string("4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU")
BERN_2022 = Pubkey.from_string("CKfatsPMUf8SkiURsDXs7eK6GWb4Jsd6UDbs7twMCWxo")


def det(label: str) -> bytes:
    return hashlib.sha256(b"keyward solana-codec vector " + label.encode()).digest()


def wallet(label: str) -> Pubkey:
    """A deterministic on-curve wallet key."""
    return Keypair.from_seed(det(label)).pubkey()


def wallet_with_first_byte(label: str, want) -> Pubkey:
    """A deterministic on-curve key whose first byte satisfies `want` (to steer key order)."""
    i = 0
    while True:
        pk = wallet(f"{label}/{i}")
        if want(bytes(pk)[0]):
            return pk
        i += 1


def raw_key(first: int, label: str) -> Pubkey:
    """A deterministic 32-byte key with a chosen first byte (used for mints)."""
    return Pubkey(bytes([first]) + det(label)[1:])


def ata(owner: Pubkey, mint: Pubkey, program: Pubkey) -> Pubkey:
    a = get_associated_token_address(owner, mint, program)
    b, _ = Pubkey.find_program_address([bytes(owner), bytes(program), bytes(mint)], ATA_PROGRAM)
    assert a == b
    return a


def build(case: dict) -> dict:
    fee_payer, authority, payee = case["fee_payer"], case["authority"], case["payee"]
    mint, program = case["mint"], case["token_program"]
    src, dst = ata(authority, mint, program), ata(payee, mint, program)
    transfer = Instruction(
        program,
        bytes([12]) + struct.pack("<QB", case["amount"], case["decimals"]),
        [
            AccountMeta(src, is_signer=False, is_writable=True),
            AccountMeta(mint, is_signer=False, is_writable=False),
            AccountMeta(dst, is_signer=False, is_writable=True),
            AccountMeta(authority, is_signer=True, is_writable=False),
        ],
    )
    memo = Instruction(MEMO, case["memo"], [])
    ixs = [
        set_compute_unit_limit(case["compute_unit_limit"]),
        set_compute_unit_price(case["compute_unit_price"]),
        transfer,
        memo,
    ]
    blockhash = Hash(case["blockhash"])
    msg = MessageV0.try_compile(fee_payer, ixs, [], blockhash)
    raw = to_bytes_versioned(msg)
    h = msg.header
    return {
        "name": case["name"],
        "fee_payer": str(fee_payer),
        "authority": str(authority),
        "payee": str(payee),
        "mint": str(mint),
        "token_program": str(program),
        "decimals": case["decimals"],
        "amount": str(case["amount"]),
        "memo_hex": case["memo"].hex(),
        "compute_unit_limit": case["compute_unit_limit"],
        "compute_unit_price_micro_lamports": str(case["compute_unit_price"]),
        "recent_blockhash": str(blockhash),
        "source_ata": str(src),
        "destination_ata": str(dst),
        "header": [h.num_required_signatures, h.num_readonly_signed_accounts, h.num_readonly_unsigned_accounts],
        "account_keys": [str(k) for k in msg.account_keys],
        "message_hex": raw.hex(),
    }


def cases():
    hex_memo = det("memo")[:16].hex().encode()  # the reference client's 16 random bytes, hex
    long_memo = ("x402 " + "é" * 200)[:]  # multi-byte UTF-8
    long_memo = long_memo.encode()[:256]
    while True:  # trim to valid UTF-8 of at most 256 bytes, then pad to exactly 256
        try:
            long_memo.decode()
            break
        except UnicodeDecodeError:
            long_memo = long_memo[:-1]
    long_memo = long_memo + b"!" * (256 - len(long_memo))
    assert len(long_memo) == 256
    out = [
        dict(name="usdc_token_defaults", fee_payer=wallet("fp1"), authority=wallet("me1"), payee=wallet("payee1"),
             mint=USDC, token_program=TOKEN, decimals=6, amount=10_000, memo=hex_memo,
             compute_unit_limit=20_000, compute_unit_price=1, blockhash=det("bh1")),
        dict(name="usdc_devnet_long_memo", fee_payer=wallet_with_first_byte("fp2", lambda b: b == 0),
             authority=wallet("me2"), payee=wallet("payee2"), mint=USDC_DEVNET, token_program=TOKEN,
             decimals=6, amount=1, memo=long_memo, compute_unit_limit=50_000, compute_unit_price=5_000_000,
             blockhash=det("bh2")),
        dict(name="token2022_bern", fee_payer=wallet_with_first_byte("fp3", lambda b: b == 0xff),
             authority=wallet_with_first_byte("me3", lambda b: b == 0), payee=wallet("payee3"), mint=BERN_2022,
             token_program=TOKEN_2022, decimals=5, amount=2**64 - 1, memo=b"order 42",
             compute_unit_limit=1, compute_unit_price=0, blockhash=det("bh3")),
        dict(name="token2022_mint_sorts_first", fee_payer=wallet("fp4"), authority=wallet("me4"),
             payee=wallet("payee4"), mint=raw_key(0x00, "mint4"), token_program=TOKEN_2022, decimals=0,
             amount=123_456_789, memo=b"a", compute_unit_limit=400_000, compute_unit_price=1_000_000,
             blockhash=det("bh4")),
        dict(name="token_mint_between_memo_and_token", fee_payer=wallet("fp5"), authority=wallet("me5"),
             payee=wallet("payee5"), mint=raw_key(0x05, "mint5"), token_program=TOKEN, decimals=9,
             amount=2**32, memo="payé".encode(), compute_unit_limit=20_000, compute_unit_price=2**40,
             blockhash=det("bh5")),
        dict(name="token_mint_sorts_last", fee_payer=wallet("fp6"), authority=wallet("me6"),
             payee=wallet("payee6"), mint=raw_key(0xfe, "mint6"), token_program=TOKEN, decimals=18,
             amount=7, memo=b"{\"k\":\"v\"}", compute_unit_limit=2**32 - 1, compute_unit_price=2**64 - 1,
             blockhash=det("bh6")),
        dict(name="fee_payer_is_payee", fee_payer=wallet("fp7"), authority=wallet("me7"),
             payee=wallet("fp7"), mint=USDC, token_program=TOKEN, decimals=6, amount=999,
             memo=hex_memo, compute_unit_limit=20_000, compute_unit_price=1, blockhash=det("bh7")),
    ]
    return out


def main():
    vectors = [build(c) for c in cases()]
    orders = {(v["account_keys"][2] == v["source_ata"]) for v in vectors}
    assert orders == {True, False}, "want both writable orders among the vectors"
    doc = {
        "generator": f"make_vectors.py with solders {solders.__version__} (MessageV0.try_compile, "
        "compute_budget builders, get_associated_token_address)",
        "vectors": vectors,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "exact_transfer.json")
    with open(path, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    print(f"wrote {len(vectors)} vectors to {path}")


if __name__ == "__main__":
    main()
