//! Every parser of untrusted input returns an error on garbage, never panics.

use crypto::kes::{self, KesAlgorithm, KesSignature};
use crypto::{cbor, direct, envelope};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn garbage_is_refused_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
        let mut locked = secmem::MLockedBytes::new(bytes.len()).unwrap();
        locked.as_mut_slice().copy_from_slice(&bytes);
        prop_assert!(envelope::read_sum6_signing_key(&locked).is_err());
        let _ = envelope::read_sum6_verification_key(&bytes);
        let _ = cbor::decode_bytes(&bytes, 32);
        let _ = <kes::Sum6 as KesAlgorithm>::Signature::read_raw(&bytes);
        let _ = <kes::CompactSum6 as KesAlgorithm>::Signature::from_cbor(&bytes);
        let _ = crypto::hex::decode_locked(&bytes);
        if bytes.len() != 608 {
            prop_assert!(direct::from_slice::<kes::Sum6>(&bytes).is_err());
        }
    }

    /// JSON-shaped garbage around the envelope fields.
    #[test]
    fn envelope_like_text_never_panics(
        kind in "[A-Za-z_^0-9]{0,40}",
        hex in "[0-9a-fA-Fz ]{0,1300}",
        junk in "[{}\":, \\\\a-z]{0,20}",
    ) {
        let text = format!("{{\"type\": \"{kind}\", {junk} \"cborHex\": \"{hex}\"}}");
        let mut locked = secmem::MLockedBytes::new(text.len()).unwrap();
        locked.as_mut_slice().copy_from_slice(text.as_bytes());
        let _ = envelope::read_sum6_signing_key(&locked);
        let _ = envelope::read_sum6_verification_key(text.as_bytes());
    }
}
