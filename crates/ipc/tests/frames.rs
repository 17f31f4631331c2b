//! Property tests of the frame codec and of record parsing on hostile bytes.

use ipc::frame::{MAX_FRAME, read_frame, split_frame, write_frame};
use proptest::prelude::*;

proptest! {
    #[test]
    fn frames_round_trip_in_any_chunking(bodies in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..2048), 1..8), cut in 1usize..64) {
        let mut wire = Vec::new();
        for b in &bodies {
            write_frame(&mut wire, b).unwrap();
        }
        // Blocking reader.
        let mut r = &wire[..];
        for b in &bodies {
            prop_assert_eq!(read_frame(&mut r, MAX_FRAME).unwrap().unwrap(), b.clone());
        }
        prop_assert_eq!(read_frame(&mut r, MAX_FRAME).unwrap(), None);
        // Incremental reader fed `cut` bytes at a time.
        let mut buf = Vec::new();
        let mut out = Vec::new();
        for chunk in wire.chunks(cut) {
            buf.extend_from_slice(chunk);
            while let Some((f, used)) = split_frame(&buf, MAX_FRAME).unwrap() {
                out.push(f.to_vec());
                buf.drain(..used);
            }
        }
        prop_assert_eq!(out, bodies);
    }

    #[test]
    fn truncated_frames_are_errors_not_hangs(body in prop::collection::vec(any::<u8>(), 1..512), keep in 1usize..512) {
        let mut wire = Vec::new();
        write_frame(&mut wire, &body).unwrap();
        let keep = keep.min(wire.len() - 1);
        let mut r = &wire[..keep];
        prop_assert_eq!(read_frame(&mut r, MAX_FRAME).unwrap_err().code(), "IPC_TRUNCATED");
    }

    #[test]
    fn hostile_bytes_never_panic_the_record_or_handshake_parsers(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let identity = ipc::SignerIdentity::generate().unwrap();
        let _ = ipc::ServerHandshake::respond(&identity, &bytes, 1_800_000_000, ipc::SuitePolicy::Strict);
        let (client, hello) = ipc::ClientHandshake::start(identity.public(), "", ipc::Suite::XChaCha20Poly1305, 1_800_000_000).unwrap();
        let _ = client.finish(&bytes, 1_800_000_000);
        // A signer waiting for ClientFinished, fed the hostile bytes.
        let (server, _) = ipc::ServerHandshake::respond(&identity, &hello, 1_800_000_000, ipc::SuitePolicy::Strict).unwrap();
        let _ = server.finish(&bytes);
    }

    #[test]
    fn hostile_records_are_refused_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let identity = ipc::SignerIdentity::generate().unwrap();
        let (client, hello) = ipc::ClientHandshake::start(identity.public(), "", ipc::Suite::XChaCha20Poly1305, 1_800_000_000).unwrap();
        let (server, sh) = ipc::ServerHandshake::respond(&identity, &hello, 1_800_000_000, ipc::SuitePolicy::Strict).unwrap();
        let (_c, fin) = client.finish(&sh, 1_800_000_000).unwrap();
        let mut s = server.finish(&fin).unwrap();
        prop_assert!(s.open(&bytes, &ipc::SystemClock::default()).is_err());
        prop_assert!(s.is_closed());
    }
}

#[test]
fn oversized_lengths_are_refused_before_allocation() {
    let wire = (u32::MAX).to_be_bytes();
    let mut r = &wire[..];
    assert_eq!(read_frame(&mut r, MAX_FRAME).unwrap_err().code(), "IPC_FRAME_TOO_LARGE");
    assert_eq!(split_frame(&wire, MAX_FRAME).unwrap_err().code(), "IPC_FRAME_TOO_LARGE");
    assert_eq!(write_frame(&mut Vec::new(), &vec![0u8; MAX_FRAME + 1]).unwrap_err().code(), "IPC_FRAME_TOO_LARGE");
}
