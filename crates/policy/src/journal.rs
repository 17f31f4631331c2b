//! The signer's two journals (the audit log and the spend ledger) and their
//! anchors: the line format, the verifier and the anchor document
//! (normative: docs/audit-log.md).
//!
//! A hash chain alone proves order, not authorship: whoever can write the
//! file can recompute every hash after an edit, cut the tail, or delete the
//! file. So every record is also **signed** by the signer's journal key (an
//! Ed25519 key sealed in the vault; only `keywardd` holds it), and the
//! chain's head is **anchored**: an anchor is a signed statement of both
//! journals' (records, head) at a value of a TPM monotonic counter, and the
//! counter is incremented to commit it. A file cut back below the last
//! anchor, or a whole old copy with its old anchor, no longer matches the
//! counter, which only goes up. Records after the last anchor are covered by
//! their signatures; records up to it are covered by the anchor's head hash
//! (so the daemon checks signatures only past the anchor, and the records
//! the previous, unsigned format wrote before the journals were anchored
//! stay verifiable).
//!
//! ```text
//! {"seq":N,"prev":"<hex>","hash":"<hex>","sig":"<hex>","rec":{...}}
//! hash = SHA-256(domain ‖ decimal(N) ‖ "\0" ‖ prev ‖ "\0" ‖ rec bytes as written)
//! sig  = Ed25519(journal key, "keyward/journal/v2\0" ‖ stream ‖ "\0" ‖ hash)
//! ```
//!
//! `domain` is `keyward/audit/v1\0` for the audit log and
//! `keyward/ledger/v1\0` for the ledger; `stream` is `audit` or `ledger`, so
//! a record cannot be moved from one journal to the other.

use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

/// `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Domain separation of record signatures.
pub const SIGNATURE_DOMAIN: &[u8] = b"keyward/journal/v2\0";

/// Domain separation of anchor signatures.
pub const ANCHOR_DOMAIN: &[u8] = b"keyward/anchor/v1\0";

/// Which journal a record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Audit,
    Ledger,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Audit => "audit",
            Stream::Ledger => "ledger",
        }
    }

    fn hash_domain(self) -> &'static [u8] {
        match self {
            Stream::Audit => b"keyward/audit/v1\0",
            Stream::Ledger => b"keyward/ledger/v1\0",
        }
    }

    /// The stable code for a journal whose records were changed.
    pub fn tampered_code(self) -> &'static str {
        match self {
            Stream::Audit => "KW_AUDIT_CHAIN_BROKEN",
            Stream::Ledger => "KW_LEDGER_TAMPERED",
        }
    }

    /// The stable code for a journal shorter than its anchor (cut, emptied
    /// or deleted).
    pub fn truncated_code(self) -> &'static str {
        match self {
            Stream::Audit => "KW_AUDIT_TRUNCATED",
            Stream::Ledger => "KW_LEDGER_TRUNCATED",
        }
    }
}

/// The hash of record `seq` after `prev` with body `rec`.
pub fn link_hash(stream: Stream, seq: u64, prev: &str, rec: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(stream.hash_domain());
    h.update(seq.to_string().as_bytes());
    h.update(b"\0");
    h.update(prev.as_bytes());
    h.update(b"\0");
    h.update(rec);
    crate::hex(&h.finalize())
}

/// The bytes the journal key signs for a record with hash `hash`.
pub fn signing_message(stream: Stream, hash: &str) -> Vec<u8> {
    let mut m = SIGNATURE_DOMAIN.to_vec();
    m.extend_from_slice(stream.name().as_bytes());
    m.push(0);
    m.extend_from_slice(hash.as_bytes());
    m
}

/// The line (newline included) for record body `rec` (compact JSON, no
/// newline) at `seq` after `prev`, signed with `sign`; and its hash.
pub fn seal(stream: Stream, seq: u64, prev: &str, rec: &str, sign: impl FnOnce(&[u8]) -> [u8; 64]) -> (String, String) {
    let hash = link_hash(stream, seq, prev, rec.as_bytes());
    let sig = crate::hex(&sign(&signing_message(stream, &hash)));
    (format!("{{\"seq\":{seq},\"prev\":\"{prev}\",\"hash\":\"{hash}\",\"sig\":\"{sig}\",\"rec\":{rec}}}\n"), hash)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line<'a> {
    seq: u64,
    prev: String,
    hash: String,
    /// Absent for a record of the earlier format; `null` is malformed.
    #[serde(default, deserialize_with = "present")]
    sig: Option<String>,
    #[serde(borrow)]
    rec: &'a RawValue,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    String::deserialize(d).map(Some)
}

/// `s` is exactly `len` lower-case hex digits.
fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Why a journal does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalError {
    /// A record was changed, inserted, removed, reordered or forged; `line`
    /// is 1-based.
    Broken { stream: Stream, line: usize, why: &'static str },
    /// The journal has fewer records than its anchor covers.
    Truncated { stream: Stream, records: u64, anchored: u64 },
}

impl JournalError {
    pub fn code(&self) -> &'static str {
        match self {
            JournalError::Broken { stream, .. } => stream.tampered_code(),
            JournalError::Truncated { stream, .. } => stream.truncated_code(),
        }
    }
}

impl std::fmt::Display for JournalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JournalError::Broken { stream, line, why } => {
                write!(f, "{}: {} line {line}: {why}", self.code(), stream.name())
            }
            JournalError::Truncated { stream, records, anchored } => write!(
                f,
                "{}: the {} journal has {records} records but its anchor covers {anchored}: records were cut off \
                 or the file was replaced",
                self.code(),
                stream.name()
            ),
        }
    }
}

impl std::error::Error for JournalError {}

/// What a verified journal holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub records: u64,
    /// The last record's hash ([`GENESIS`] when empty).
    pub head: String,
    /// Records without a signature (written before the journals were
    /// anchored; allowed only up to the anchor).
    pub unsigned: u64,
    /// Records whose signature was checked.
    pub signatures_checked: u64,
}

/// How to verify.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    pub stream: Stream,
    /// The journal key; `None` checks the chain only.
    pub key: Option<&'a [u8; 32]>,
    /// (records, head) the journal must extend.
    pub anchor: Option<(u64, &'a str)>,
    /// Check signatures of records up to the anchor too (the public
    /// verifier does; the daemon, which trusts its own anchor, does not).
    pub check_anchored_signatures: bool,
    /// Accept unsigned records past the anchor (only when the journals are
    /// being adopted on their first anchored start).
    pub adopting: bool,
}

/// A verifier fed one line at a time (so a reader can bound its memory).
#[derive(Debug)]
pub struct Verifier<'r> {
    rules: Rules<'r>,
    anchored: u64,
    prev: String,
    seq: u64,
    unsigned: u64,
    checked: u64,
    line: usize,
}

impl<'r> Verifier<'r> {
    pub fn new(rules: Rules<'r>) -> Verifier<'r> {
        let anchored = rules.anchor.map_or(0, |(n, _)| n);
        Verifier { rules, anchored, prev: GENESIS.to_string(), seq: 0, unsigned: 0, checked: 0, line: 0 }
    }

    fn broken(&self, why: &'static str) -> JournalError {
        JournalError::Broken { stream: self.rules.stream, line: self.line, why }
    }

    /// Checks the next line (without its newline) and returns its `rec`.
    pub fn line<'t>(&mut self, text: &'t str) -> Result<&'t str, JournalError> {
        self.line += 1;
        let stream = self.rules.stream;
        let l: Line<'t> = serde_json::from_str(text).map_err(|_| self.broken("not a chained record"))?;
        let hex_ok = is_lower_hex(&l.prev, 64)
            && is_lower_hex(&l.hash, 64)
            && l.sig.as_deref().is_none_or(|s| is_lower_hex(s, 128));
        if !hex_ok || !l.rec.get().starts_with('{') {
            return Err(self.broken("not a chained record"));
        }
        if l.seq != self.seq + 1 {
            return Err(self.broken("sequence number out of order"));
        }
        if l.prev != self.prev {
            return Err(self.broken("prev does not match the previous record's hash"));
        }
        let body = l.rec.get();
        if link_hash(stream, l.seq, &l.prev, body.as_bytes()) != l.hash {
            return Err(self.broken("hash does not match the record"));
        }
        match &l.sig {
            None if self.unsigned + 1 != l.seq => return Err(self.broken("unsigned record after signed records")),
            None if l.seq > self.anchored && !self.rules.adopting => {
                return Err(self.broken("unsigned record past the anchor"));
            }
            None => self.unsigned += 1,
            Some(sig) => {
                if let Some(key) = self.rules.key
                    && (l.seq > self.anchored || self.rules.check_anchored_signatures)
                {
                    let sig: [u8; 64] = crate::unhex(sig)
                        .and_then(|s| s.try_into().ok())
                        .ok_or_else(|| self.broken("malformed signature"))?;
                    sigverify::verify(key, &signing_message(stream, &l.hash), &sig)
                        .map_err(|_| self.broken("signature does not verify under the journal key"))?;
                    self.checked += 1;
                }
            }
        }
        if l.seq == self.anchored
            && let Some((_, head)) = self.rules.anchor
            && l.hash != head
        {
            return Err(self.broken("record does not match the anchor (the journal was rewritten)"));
        }
        self.seq = l.seq;
        self.prev = l.hash;
        Ok(body)
    }

    /// Ends verification: the journal must reach its anchor.
    pub fn finish(self) -> Result<Verified, JournalError> {
        if self.seq < self.anchored {
            return Err(JournalError::Truncated {
                stream: self.rules.stream,
                records: self.seq,
                anchored: self.anchored,
            });
        }
        Ok(Verified { records: self.seq, head: self.prev, unsigned: self.unsigned, signatures_checked: self.checked })
    }
}

/// Verifies every record of `text`, calling `each(seq, rec)` on each, and
/// reports the first failure.
pub fn verify<'t>(
    text: &'t str,
    rules: Rules<'_>,
    mut each: impl FnMut(u64, &'t str),
) -> Result<Verified, JournalError> {
    let mut v = Verifier::new(rules);
    let mut rest = text;
    while !rest.is_empty() {
        let Some(end) = rest.find('\n') else {
            v.line += 1;
            return Err(v.broken("truncated record (no newline)"));
        };
        let body = v.line(&rest[..end])?;
        each(v.seq, body);
        rest = &rest[end + 1..];
    }
    v.finish()
}

/// The byte length of the longest prefix of `text` made of whole lines: what
/// survives when a crash tore the last write.
pub fn whole_lines_len(text: &[u8]) -> usize {
    text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)
}

/// One journal's position in an anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub records: u64,
    pub head: String,
}

impl Position {
    pub fn empty() -> Position {
        Position { records: 0, head: GENESIS.into() }
    }
}

/// A signed statement that, when the anchor counter read `counter`, the
/// journals held these records (file: `anchor.json` beside the audit log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub counter: u64,
    pub audit: Position,
    pub ledger: Position,
    pub ts_ms: u64,
    pub journal_key: [u8; 32],
    pub signature: [u8; 64],
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnchorJson {
    v: u32,
    counter: u64,
    audit_records: u64,
    audit_head: String,
    ledger_records: u64,
    ledger_head: String,
    ts_ms: u64,
    journal_key: String,
    sig: String,
}

/// The largest anchor file accepted.
pub const MAX_ANCHOR_BYTES: u64 = 4096;

impl Anchor {
    /// The bytes the journal key signs.
    pub fn message(counter: u64, audit: &Position, ledger: &Position, ts_ms: u64, journal_key: &[u8; 32]) -> Vec<u8> {
        let mut m = ANCHOR_DOMAIN.to_vec();
        let fields = [
            counter.to_string(),
            audit.records.to_string(),
            audit.head.clone(),
            ledger.records.to_string(),
            ledger.head.clone(),
            ts_ms.to_string(),
            crate::hex(journal_key),
        ];
        m.extend_from_slice(fields.join("\0").as_bytes());
        m
    }

    /// The anchor file's text.
    pub fn to_json(&self) -> String {
        format!(
            "{{\"v\":1,\"counter\":{},\"audit_records\":{},\"audit_head\":\"{}\",\"ledger_records\":{},\
             \"ledger_head\":\"{}\",\"ts_ms\":{},\"journal_key\":\"{}\",\"sig\":\"{}\"}}\n",
            self.counter,
            self.audit.records,
            self.audit.head,
            self.ledger.records,
            self.ledger.head,
            self.ts_ms,
            crate::hex(&self.journal_key),
            crate::hex(&self.signature)
        )
    }

    /// Parses an anchor file and checks its signature under the key it
    /// names (the caller compares that key with the one it trusts).
    pub fn parse(bytes: &[u8]) -> Result<Anchor, &'static str> {
        if bytes.len() as u64 > MAX_ANCHOR_BYTES {
            return Err("the anchor file is too large");
        }
        let j: AnchorJson = serde_json::from_slice(bytes).map_err(|_| "the anchor file is not an anchor")?;
        if j.v != 1 {
            return Err("unknown anchor version");
        }
        let position = |records: u64, head: &str| {
            // An empty journal's head is the genesis value.
            (is_lower_hex(head, 64) && (records > 0 || head == GENESIS))
                .then(|| Position { records, head: head.to_string() })
        };
        let audit = position(j.audit_records, &j.audit_head).ok_or("bad audit head")?;
        let ledger = position(j.ledger_records, &j.ledger_head).ok_or("bad ledger head")?;
        if !is_lower_hex(&j.journal_key, 64) || !is_lower_hex(&j.sig, 128) {
            return Err("bad journal key or signature encoding");
        }
        let journal_key: [u8; 32] =
            crate::unhex(&j.journal_key).and_then(|k| k.try_into().ok()).ok_or("bad journal key")?;
        let signature: [u8; 64] = crate::unhex(&j.sig).and_then(|k| k.try_into().ok()).ok_or("bad signature")?;
        let message = Anchor::message(j.counter, &audit, &ledger, j.ts_ms, &journal_key);
        sigverify::verify(&journal_key, &message, &signature).map_err(|_| "the anchor's signature does not verify")?;
        Ok(Anchor { counter: j.counter, audit, ledger, ts_ms: j.ts_ms, journal_key, signature })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic stand-in signer for format tests: the real signer is
    /// Ed25519 in `keywardd`; these tests check the chain and placement, and
    /// signature checks are exercised with `key: None`.
    fn no_sig(_: &[u8]) -> [u8; 64] {
        [0u8; 64]
    }

    fn log(stream: Stream, n: u64) -> (String, String) {
        let mut prev = GENESIS.to_string();
        let mut out = String::new();
        for i in 1..=n {
            let (line, h) = seal(stream, i, &prev, &format!("{{\"event\":\"x\",\"n\":{i}}}"), no_sig);
            out.push_str(&line);
            prev = h;
        }
        (out, prev)
    }

    fn rules(stream: Stream, anchor: Option<(u64, &str)>) -> Rules<'_> {
        Rules { stream, key: None, anchor, check_anchored_signatures: false, adopting: false }
    }

    #[test]
    fn chains_verify_and_streams_do_not_mix() {
        let (audit, head) = log(Stream::Audit, 5);
        let v = verify(&audit, rules(Stream::Audit, Some((5, &head))), |_, _| {}).unwrap();
        assert_eq!((v.records, v.unsigned), (5, 0));
        let e = verify(&audit, rules(Stream::Ledger, None), |_, _| {}).unwrap_err();
        assert_eq!(e.code(), "KW_LEDGER_TAMPERED");
    }

    #[test]
    fn cut_emptied_and_rewritten_journals_are_refused_against_the_anchor() {
        let (audit, head) = log(Stream::Audit, 6);
        let cut: String = audit.lines().take(4).map(|l| format!("{l}\n")).collect();
        let e = verify(&cut, rules(Stream::Audit, Some((6, &head))), |_, _| {}).unwrap_err();
        assert_eq!(e, JournalError::Truncated { stream: Stream::Audit, records: 4, anchored: 6 });
        let e = verify("", rules(Stream::Audit, Some((6, &head))), |_, _| {}).unwrap_err();
        assert_eq!(e.code(), "KW_AUDIT_TRUNCATED");
        // A rewrite with every hash recomputed still differs from the anchor.
        let (other, _) = {
            let mut prev = GENESIS.to_string();
            let mut out = String::new();
            for i in 1..=6 {
                let (line, h) = seal(Stream::Audit, i, &prev, &format!("{{\"event\":\"y\",\"n\":{i}}}"), no_sig);
                out.push_str(&line);
                prev = h;
            }
            (out, prev)
        };
        let e = verify(&other, rules(Stream::Audit, Some((6, &head))), |_, _| {}).unwrap_err();
        assert!(matches!(e, JournalError::Broken { line: 6, .. }), "{e}");
    }

    #[test]
    fn unsigned_records_only_as_an_anchored_prefix() {
        let mut prev = GENESIS.to_string();
        let mut text = String::new();
        for i in 1..=3u64 {
            let body = format!("{{\"n\":{i}}}");
            let hash = link_hash(Stream::Audit, i, &prev, body.as_bytes());
            text.push_str(&format!("{{\"seq\":{i},\"prev\":\"{prev}\",\"hash\":\"{hash}\",\"rec\":{body}}}\n"));
            prev = hash;
        }
        let e = verify(&text, rules(Stream::Audit, None), |_, _| {}).unwrap_err();
        assert!(matches!(e, JournalError::Broken { line: 1, why: "unsigned record past the anchor", .. }));
        let v = verify(&text, rules(Stream::Audit, Some((3, &prev))), |_, _| {}).unwrap();
        assert_eq!(v.unsigned, 3);
        let (signed, _) = seal(Stream::Audit, 4, &prev, "{\"n\":4}", no_sig);
        text.push_str(&signed);
        assert!(verify(&text, rules(Stream::Audit, Some((3, &prev))), |_, _| {}).is_ok());
    }
}
