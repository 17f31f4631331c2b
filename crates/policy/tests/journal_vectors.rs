//! The journal format against vectors written from docs/audit-log.md alone
//! by an independent implementation (`tests/vectors/journal/generate.py`,
//! Python's `cryptography`): the verifier accepts them, the anchor parses
//! and names the key, and every single-byte change, a cut, and a record
//! moved between journals are refused with the documented codes.

use policy::journal::{Anchor, JournalError, Rules, Stream, verify};

const AUDIT: &str = include_str!("vectors/journal/audit.jsonl");
const LEDGER: &str = include_str!("vectors/journal/ledger.jsonl");
const ANCHOR: &str = include_str!("vectors/journal/anchor.json");
const KEY: &str = include_str!("vectors/journal/journal_key.hex");

fn key() -> [u8; 32] {
    policy::unhex(KEY.trim()).unwrap().try_into().unwrap()
}

fn rules<'a>(stream: Stream, key: &'a [u8; 32], anchor: &'a Anchor) -> Rules<'a> {
    let position = match stream {
        Stream::Audit => &anchor.audit,
        Stream::Ledger => &anchor.ledger,
    };
    Rules {
        stream,
        key: Some(key),
        anchor: Some((position.records, &position.head)),
        check_anchored_signatures: true,
        adopting: false,
    }
}

#[test]
fn independent_vectors_verify() {
    let anchor = Anchor::parse(ANCHOR.as_bytes()).expect("the anchor parses and its signature verifies");
    assert_eq!(anchor.journal_key, key());
    assert_eq!((anchor.counter, anchor.audit.records, anchor.ledger.records), (7, 4, 2));
    let k = key();
    let a = verify(AUDIT, rules(Stream::Audit, &k, &anchor), |_, _| {}).unwrap();
    assert_eq!((a.records, a.unsigned, a.signatures_checked), (5, 2, 3));
    let l = verify(LEDGER, rules(Stream::Ledger, &k, &anchor), |_, _| {}).unwrap();
    assert_eq!((l.records, l.unsigned), (2, 0));
}

#[test]
fn every_single_byte_change_is_refused() {
    let anchor = Anchor::parse(ANCHOR.as_bytes()).unwrap();
    let k = key();
    let bytes = AUDIT.as_bytes();
    for i in 0..bytes.len() {
        if bytes[i] == b'\n' {
            continue;
        }
        let mut changed = bytes.to_vec();
        changed[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
        let Ok(text) = String::from_utf8(changed) else { continue };
        assert!(verify(&text, rules(Stream::Audit, &k, &anchor), |_, _| {}).is_err(), "byte {i} changed");
    }
    for i in 0..ANCHOR.len() - 1 {
        let mut changed = ANCHOR.as_bytes().to_vec();
        changed[i] = if changed[i] == b'1' { b'2' } else { b'1' };
        assert!(Anchor::parse(&changed).is_err(), "anchor byte {i} changed");
    }
}

#[test]
fn cuts_and_moved_records_are_refused() {
    let anchor = Anchor::parse(ANCHOR.as_bytes()).unwrap();
    let k = key();
    let cut: String = AUDIT.lines().take(3).map(|l| format!("{l}\n")).collect();
    let e = verify(&cut, rules(Stream::Audit, &k, &anchor), |_, _| {}).unwrap_err();
    assert_eq!(
        (e.code(), &e),
        ("KW_AUDIT_TRUNCATED", &JournalError::Truncated { stream: Stream::Audit, records: 3, anchored: 4 })
    );
    // The ledger read as an audit log: other hash domain.
    let e = verify(LEDGER, Rules { stream: Stream::Audit, ..rules(Stream::Ledger, &k, &anchor) }, |_, _| {});
    assert_eq!(e.unwrap_err().code(), "KW_AUDIT_CHAIN_BROKEN");
    // Another key pinned.
    let other = [9u8; 32];
    assert!(verify(AUDIT, rules(Stream::Audit, &other, &anchor), |_, _| {}).is_err());
}
