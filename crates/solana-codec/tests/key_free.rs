//! Guard: this crate is linked by the client, so it must never depend on a
//! crate that defines a signing key.

#[test]
fn manifest_has_no_signing_key_crates() {
    let manifest = include_str!("../Cargo.toml");
    let deps = manifest
        .split("\n[")
        .filter(|section| section.starts_with("dependencies]") || section.starts_with("dev-dependencies]"))
        .collect::<Vec<_>>()
        .join("\n");
    for forbidden in ["ed25519", "solana-keypair", "solana-sdk", "secmem", "crypto ", "crypto=", "crypto.", "vault"] {
        let found = deps.lines().any(|l| !l.trim_start().starts_with('#') && l.contains(forbidden));
        assert!(!found, "solana-codec must not depend on {forbidden}");
    }
}
