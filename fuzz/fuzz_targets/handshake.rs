//! Every message a peer can send, as arbitrary bytes: a ClientHello to the
//! signer, a ServerHello to the client, a ClientFinished to the signer after a
//! genuine exchange, a record to an open channel, and an API request body.
//! None may panic, and none may yield a session or a record: a forgery that
//! succeeded would trip the assertions.
#![no_main]

use ipc::handshake::{ClientHandshake, ServerHandshake, SignerIdentity, SuitePolicy};
use ipc::record::{Clock, Suite};
use libfuzzer_sys::fuzz_target;
use zeroize::Zeroizing;

const NOW: u64 = 1_800_000_000;

struct Fixed;
impl Clock for Fixed {
    fn now(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

/// A client hello with fixed randomness, so that the exchange in step 3 is
/// the same genuine one on every input.
fn genuine_client(id: &SignerIdentity) -> (ClientHandshake, Vec<u8>) {
    ClientHandshake::start_with_ephemeral(Zeroizing::new([3u8; 32]), id.public(), "", Suite::XChaCha20Poly1305, NOW)
        .unwrap()
}

fn identity() -> SignerIdentity {
    SignerIdentity::from_secret(Zeroizing::new([7u8; 32]))
}

fuzz_target!(|data: &[u8]| {
    let id = identity();
    // 1. As a ClientHello: may be accepted only if well formed; then the
    //    fuzzer cannot also produce the ClientFinished MAC.
    if let Ok((server, _hello)) =
        ServerHandshake::respond_with(&id, data, NOW, SuitePolicy::Compatibility, Zeroizing::new([9u8; 32]), [1u8; 16])
    {
        assert!(server.finish(data).is_err());
    }
    // 2. As a ServerHello to a real client.
    let (client, hello) = genuine_client(&id);
    assert!(client.finish(data, NOW).is_err());
    // 3. As a ClientFinished and as a record after a genuine exchange.
    let (server, server_hello) =
        ServerHandshake::respond_with(&id, &hello, NOW, SuitePolicy::Strict, Zeroizing::new([5u8; 32]), [2u8; 16])
            .unwrap();
    assert!(server.finish(data).is_err());
    let (client, _) = genuine_client(&id);
    let (mut channel, _fin) = client.finish(&server_hello, NOW).unwrap();
    assert!(channel.open(data, &Fixed).is_err());
    assert!(channel.is_closed());
    // 4. As a request body.
    let _ = ipc::api::parse_request(data);
});
