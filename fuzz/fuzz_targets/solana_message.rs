//! The Solana decoders keyward runs on bytes it did not build (a message
//! or wire transaction from a caller, a facilitator or a test): no panic;
//! a decoded message re-encodes to the same bytes; a message accepted as
//! keyward's exact layout re-compiles to exactly those bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use solana_codec::{MessageV0, Pubkey};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = MessageV0::decode(data) {
        assert_eq!(m.encode(), data, "decoding is one-to-one");
    }
    if let Ok((sigs, message)) = solana_codec::decode_transaction(data) {
        assert_eq!(solana_codec::wire_transaction(&message, &sigs).unwrap(), data);
    }
    if data.len() > 32 {
        let payee = Pubkey::new(data[..32].try_into().unwrap());
        if let Ok(t) = solana_codec::parse_exact(&data[32..], &payee) {
            assert_eq!(t.compile().unwrap(), &data[32..]);
        }
    }
    let _ = solana_codec::base58::decode(&String::from_utf8_lossy(data));
});
