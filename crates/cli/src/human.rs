//! Human-readable output (without `--json`). Plain lines, no colour, nothing
//! a script should parse: scripts use `--json`.

use ipc::api::{PendingView, Response};

fn pending(p: &PendingView) -> String {
    let mut s = format!(
        "request {}  [{}]\n  {} {} of {} on {} to {}\n",
        p.request_id, p.state, p.actor, p.action, p.asset_id, p.chain_id, p.payee
    );
    s += &format!("  amount:            {} (atomic units)\n", p.amount_atomic);
    if let Some(x) = &p.scheme_id {
        s += &format!("  scheme:            {x}\n");
    }
    if let Some(a) = &p.payment_authority {
        s += &format!("  payment authority: {a}\n");
    }
    s += &format!("  signing key:       {}\n  rationale:         {}\n", p.key, p.rationale);
    s += &format!("  why asked:         {} ({})\n", p.reason_code, p.reason);
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
            s
        }
        Response::Pending { requests } if requests.is_empty() => "no request is waiting for approval\n".into(),
        Response::Pending { requests } => requests.iter().map(pending).collect::<Vec<_>>().join("\n"),
        Response::Key { name, key_kind, public_key } => format!("key {name} ({key_kind}): {public_key}\n"),
        Response::Keys { names, proof_keys } if names.is_empty() && proof_keys.is_empty() => "no signing keys\n".into(),
        Response::Keys { names, proof_keys } => names
            .iter()
            .map(|n| format!("{n} (ed25519)\n"))
            .chain(proof_keys.iter().map(|n| format!("{n} (proof-ed25519)\n")))
            .collect(),
        Response::Signature { signature, public_key } => format!("signature:  {signature}\npublic key: {public_key}\n"),
        Response::Daemon { status } => serde_json::to_string_pretty(status).unwrap_or_default() + "\n",
    }
}
