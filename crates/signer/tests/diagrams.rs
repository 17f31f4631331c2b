//! The Mermaid diagrams in docs/diagrams are generated from the state
//! machines (`keywardd diagrams`). This fails when they are stale.

#[test]
fn the_committed_diagrams_match_the_machines() {
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/diagrams");
    for (name, generated) in signer::daemon::diagrams::all() {
        let committed = std::fs::read_to_string(docs.join(name)).unwrap_or_default();
        assert_eq!(
            committed, generated,
            "docs/diagrams/{name} is stale: run `cargo run -p signer --bin keywardd -- diagrams --out docs/diagrams`"
        );
    }
}
