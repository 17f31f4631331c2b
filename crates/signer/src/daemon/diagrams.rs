//! `keywardd diagrams`: the Mermaid diagrams of the state machines, generated
//! from the machines themselves (docs/diagrams/). A test fails when the
//! committed files are stale.

use std::path::Path;

/// (file name, contents) of every generated diagram.
pub fn all() -> Vec<(&'static str, String)> {
    vec![("request-lifecycle.mmd", super::lifecycle::mermaid()), ("ipc-session.mmd", ipc::session::mermaid())]
}

/// Writes every diagram into `dir`.
pub fn write(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, text) in all() {
        super::fsutil::write_atomic(&dir.join(name), text.as_bytes(), 0o644)?;
    }
    Ok(())
}
