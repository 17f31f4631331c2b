//! Human-readable output (without `--json`). Plain lines, no colour, nothing
//! a script should parse: scripts use `--json`.

use ipc::api::{PendingView, Response};
use policy::redact::display_safe;

/// What an approver reads. Everything the signer relays from a caller or a
/// server passes through [`display_safe`] again here: an approver's
/// terminal must not run escape sequences or reorder text, whichever side
/// forgot to clean it.
fn pending(p: &PendingView) -> String {
    let t = |v: &str| display_safe(v, 512);
    let mut s = format!(
        "request {}  [{}]\n  {} {} of {} on {} to {}\n",
        t(&p.request_id),
        t(&p.state),
        t(&p.actor),
        t(&p.action),
        t(&p.asset_id),
        t(&p.chain_id),
        t(&p.payee)
    );
    match &p.amount_units {
        Some(u) => {
            s += &format!("  amount:            {} {} ({} atomic units)\n", t(u), t(&p.asset_id), t(&p.amount_atomic))
        }
        None => s += &format!("  amount:            {} (atomic units)\n", t(&p.amount_atomic)),
    }
    if !p.max_amount_atomic.is_empty() {
        s += &format!("  at most:           {} (atomic units, the caller's limit)\n", t(&p.max_amount_atomic));
    }
    if let Some(m) = &p.mint {
        s += &format!("  mint:              {}\n", t(m));
    }
    if let Some(x) = &p.scheme_id {
        let v = p.x402_version.map(|v| format!(" (x402 v{v})")).unwrap_or_default();
        s += &format!("  scheme:            {}{v}\n", t(x));
    }
    if let Some(r) = &p.resource {
        s += &format!("  resource:          {} (as the client reports it)\n", t(r));
    }
    if let Some(o) = &p.origin {
        s += &format!("  origin:            {}\n", t(o));
    }
    if let Some(a) = &p.payment_authority {
        s += &format!("  payment authority: {}\n", t(a));
    }
    if let Some(f) = &p.fee_payer {
        s += &format!("  fee payer:         {} (lands the transaction)\n", t(f));
    }
    if !p.message_sha256.is_empty() {
        s += &format!("  signs:             {} bytes, SHA-256 {}\n", p.message_len, t(&p.message_sha256));
    }
    s += &format!("  signing key:       {}\n  rationale:         {}\n", t(&p.key), t(&p.rationale));
    s += &format!("  why asked:         {} ({})\n", t(&p.reason_code), t(&p.reason));
    s += &format!("  expires at:        {} (Unix seconds)\n  intent hash:       {}\n", p.expires_at, p.intent_hash);
    s
}

/// One response as text.
pub(crate) fn response(r: &Response) -> String {
    match r {
        Response::Pong { uid, role, session } => format!("uid {uid}, role {}, session {session}\n", role.name()),
        Response::Decision {
            request_id,
            intent_hash,
            decision,
            state,
            reason_code,
            layer,
            policy_id,
            detail,
            signature,
            public_key,
            transaction,
        } => {
            let mut s = match request_id {
                Some(id) => format!("request {id}: {decision} -> {state}\n"),
                None => format!("preview: {decision}\n"),
            };
            s += &format!("  reason: {reason_code} (layer {layer}, policy {policy_id}): {detail}\n");
            if let Some(h) = intent_hash {
                s += &format!("  intent hash: {h}\n");
            }
            if let (Some(sig), Some(pk)) = (signature, public_key) {
                s += &format!("  signature:  {sig}\n  public key: {pk}\n");
            }
            if let Some(tx) = transaction {
                s += &format!("  transaction (base64, fee payer's slot empty): {tx}\n");
            }
            s
        }
        Response::Pending { requests } if requests.is_empty() => "no request is waiting for approval\n".into(),
        Response::Pending { requests } => requests.iter().map(pending).collect::<Vec<_>>().join("\n"),
        Response::Key { name, key_kind, public_key } => format!("key {name} ({key_kind}): {public_key}\n"),
        Response::Keys { names, proof_keys, keys } if names.is_empty() && proof_keys.is_empty() && keys.is_empty() => {
            "no signing keys\n".into()
        }
        Response::Keys { keys, .. } if !keys.is_empty() => {
            keys.iter().map(|k| format!("{} ({}): {}\n  signs: {}\n", k.name, k.kind, k.public_key, k.signs)).collect()
        }
        Response::Keys { names, proof_keys, .. } => names
            .iter()
            .map(|n| format!("{n}\n"))
            .chain(proof_keys.iter().map(|n| format!("{n} (proof-ed25519)\n")))
            .collect(),
        Response::Signature { signature, public_key } => format!("signature:  {signature}\npublic key: {public_key}\n"),
        Response::Daemon { status } => serde_json::to_string_pretty(status).unwrap_or_default() + "\n",
    }
}
