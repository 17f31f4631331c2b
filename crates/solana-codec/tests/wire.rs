//! Wire transaction framing.

mod common;

use common::sample;
use solana_codec::{decode_transaction, shortvec, wire_transaction};

#[test]
fn round_trip_with_two_signatures() {
    let msg = sample().compile().unwrap();
    let sigs = [[0u8; 64], [0xab; 64]];
    let wire = wire_transaction(&msg, &sigs).unwrap();
    assert_eq!(wire[0], 2);
    assert_eq!(wire.len(), 1 + 128 + msg.len());
    assert_eq!(&wire[1..65], &[0u8; 64]);
    assert_eq!(&wire[65..129], &[0xab; 64]);
    let (got_sigs, got_msg) = decode_transaction(&wire).unwrap();
    assert_eq!(got_sigs, sigs);
    assert_eq!(got_msg, msg);
}

#[test]
fn rejects_wrong_signature_counts() {
    let msg = sample().compile().unwrap();
    for n in [0usize, 1, 3] {
        let sigs = vec![[1u8; 64]; n];
        assert_eq!(wire_transaction(&msg, &sigs).unwrap_err().code, "SOL_MESSAGE_MALFORMED", "{n}");
        // Hand-framed with the wrong count: the decoder must refuse too.
        let mut wire = Vec::new();
        shortvec::encode(n as u16, &mut wire);
        for s in &sigs {
            wire.extend_from_slice(s);
        }
        wire.extend_from_slice(&msg);
        assert_eq!(decode_transaction(&wire).unwrap_err().code, "SOL_MESSAGE_MALFORMED", "{n}");
    }
}

#[test]
fn rejects_malformed_wire() {
    let msg = sample().compile().unwrap();
    let wire = wire_transaction(&msg, &[[0u8; 64], [1u8; 64]]).unwrap();
    // Truncated anywhere, or one byte too many.
    for cut in [0, 1, 64, 129, 130, wire.len() - 1] {
        assert!(decode_transaction(&wire[..cut]).is_err(), "cut {cut}");
    }
    let mut long = wire.clone();
    long.push(0);
    assert_eq!(decode_transaction(&long).unwrap_err().code, "SOL_MESSAGE_MALFORMED");
    // Non-minimal signature count.
    let mut non_minimal = vec![0x82, 0x00];
    non_minimal.extend_from_slice(&wire[1..]);
    assert_eq!(decode_transaction(&non_minimal).unwrap_err().code, "SOL_MESSAGE_MALFORMED");
    // Over the packet limit.
    assert_eq!(decode_transaction(&vec![0u8; 1233]).unwrap_err().code, "SOL_MESSAGE_TOO_LARGE");
    // Not a message at all.
    assert!(wire_transaction(&[0x80], &[]).is_err());
}
