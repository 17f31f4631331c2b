//! The red-team scenario catalogue and the buffer traceability map, exactly as
//! seed 002 defines them. IDs and semantics are versioned: changing a row
//! needs a security review (seed 002, "Scenario Execution Rules").

use serde::Serialize;

/// Catalogue version; bump it whenever a row changes.
pub const CATALOGUE_VERSION: &str = "2026-12-01.2";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Severity {
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Critical => "Critical",
            Severity::High => "High",
            Severity::Medium => "Medium",
        }
    }

    /// Seed 002: "Any scenario tagged Critical cannot be waived".
    pub fn waivable(self) -> bool {
        self != Severity::Critical
    }
}

/// One row of the scenario catalogue.
#[derive(Debug, Clone, Copy)]
pub struct ScenarioSpec {
    pub id: &'static str,
    pub severity: Severity,
    pub title: &'static str,
    pub attack: &'static str,
    pub expected: &'static str,
    pub evidence: &'static str,
}

const fn row(
    id: &'static str,
    severity: Severity,
    title: &'static str,
    attack: &'static str,
    expected: &'static str,
    evidence: &'static str,
) -> ScenarioSpec {
    ScenarioSpec { id, severity, title, attack, expected, evidence }
}

use Severity::{Critical, High, Medium};

/// Seed 002's eighteen rows, then rows appended by keyward (append-only:
/// an id is never reused or renumbered).
pub const CATALOGUE: [ScenarioSpec; 34] = [
    row(
        "RT-001",
        Critical,
        "Context approval bypass",
        "Request marked \"approval required\" attempts auto-sign path",
        "Deny auto-sign, transition to AwaitUserApproval",
        "FSM transition log + reason code",
    ),
    row(
        "RT-002",
        High,
        "User policy limit bypass",
        "Agent request exceeds per-user limit",
        "Prompt or deny per policy; never auto-approve",
        "Policy eval trace + decision record",
    ),
    row(
        "RT-003",
        Critical,
        "Global hard-limit bypass",
        "Request exceeds global hard cap",
        "Deny",
        "Policy layer + reason code DENY_GLOBAL_LIMIT",
    ),
    row(
        "RT-004",
        Critical,
        "Unauthorized IPC caller",
        "Non-allowed process connects to signer socket",
        "Connection rejected",
        "Peer-cred validation log",
    ),
    row(
        "RT-005",
        Critical,
        "IPC payload tamper",
        "Mutate AEAD ciphertext/tag in transit",
        "Reject payload, no signing",
        "AEAD verification failure log",
    ),
    row(
        "RT-006",
        Critical,
        "IPC replay attempt",
        "Replay prior valid encrypted message",
        "Rejected as replay",
        "Nonce/counter replay detection log",
    ),
    row(
        "RT-007",
        Critical,
        "Invalid FSM transition",
        "Force direct transition to Signing from non-approved state",
        "Deny transition, fail closed",
        "FSM error + audit event",
    ),
    row(
        "RT-008",
        High,
        "Untrusted payment authority",
        "x402 flow with unknown facilitator endpoint (if present) or untrusted merchant origin context",
        "Deny",
        "Trust-policy check log",
    ),
    row("RT-009", High, "Unapproved x402 scheme", "x402 flow with non-allowlisted scheme", "Deny", "Scheme-policy log"),
    row(
        "RT-010",
        High,
        "Amount mutation after approval",
        "Modify amount/payee after user approval",
        "Require re-approval or deny",
        "Approval invalidation log",
    ),
    row(
        "RT-011",
        Critical,
        "Blob tampering at rest",
        "Modify Cocoon blob bytes/metadata",
        "Decrypt/parse fails closed",
        "Integrity/tamper error",
    ),
    row(
        "RT-012",
        Critical,
        "Rollback blob replay",
        "Replace current blob with older valid blob",
        "Detect rollback and deny",
        "Version/epoch check log",
    ),
    row(
        "RT-013",
        Critical,
        "TPM unavailable at sign time",
        "TPM access denied/reset/unseal fails",
        "Fail closed; no degraded sign",
        "TPM error path + deny reason",
    ),
    row(
        "RT-014",
        Critical,
        "Memory-scraper simulation",
        "Attempt read from non-signer process memory path",
        "No private key exposure outside signer",
        "memory-scope assertion + process boundary evidence",
    ),
    row(
        "RT-015",
        High,
        "Core dump leakage check",
        "Trigger crash path in signer",
        "No secrets in dumps (or dump disabled)",
        "crash artifact policy check",
    ),
    row(
        "RT-016",
        Medium,
        "Migration interruption",
        "Kill process mid-migration",
        "Restart-safe + no secret loss/corruption",
        "checkpoint recovery evidence",
    ),
    row(
        "RT-017",
        Critical,
        "Legacy fallback regression",
        "Force plaintext fallback path in strict mode",
        "Deny fallback path",
        "strict-mode compliance log",
    ),
    row(
        "RT-018",
        High,
        "Audit log secret leakage",
        "Inject high-entropy secrets in request context",
        "Logs redact secrets; no plaintext leak",
        "redaction scan report",
    ),
    // Appended for x402 on Solana ("what is signed is what was decided",
    // docs/x402.md). All Critical: each is a way for a compromised agent to
    // move value the policy did not decide.
    row(
        "RT-019",
        Critical,
        "Message substitution",
        "Intent declares one payment while the submitted bytes encode another transfer",
        "Deny before unseal (DENY_TRANSACTION_MISMATCH); nothing signed or reserved",
        "Refusal audit record + signed count unchanged",
    ),
    row(
        "RT-020",
        Critical,
        "Opaque signing with a value-bearing key",
        "Agent asks a solana key to sign opaque bytes (action sign, amount 0, no payee)",
        "Deny (DENY_KEY_KIND_MISMATCH); nothing signed",
        "Refusal audit record + signed count unchanged",
    ),
    row(
        "RT-021",
        Critical,
        "Key not granted to the peer",
        "A peer (even admin) submits an intent naming a key no [[grant]] gives it",
        "Deny (DENY_KEY_NOT_GRANTED); nothing signed or reserved",
        "Refusal audit record + spent totals unchanged",
    ),
    row(
        "RT-022",
        Critical,
        "Fee-payer drain",
        "A hostile server names one of the signer's own keys as the facilitator fee payer",
        "Deny (DENY_FEE_PAYER_NOT_ALLOWED); the fee payer never appears in an instruction",
        "Client refusal + signer audit + decoded transaction",
    ),
    row(
        "RT-023",
        Critical,
        "Never-expiring transaction",
        "Obtain a signature on a transaction with a durable nonce or extra instructions",
        "Impossible: the signer builds exactly four instructions, no System program, no lookups",
        "Decoded signed transaction + codec rule checks",
    ),
    row(
        "RT-024",
        Critical,
        "Second payment for one request",
        "A hostile server answers 402 again after payment, or changes the price on retry",
        "Pay once: no second signature, the second challenge is refused",
        "Signature count + facilitator settlements + client exit status",
    ),
    // Appended for issue 14 (tamper-evident journals, a signer no local
    // user can starve). IDs are append-only.
    row(
        "RT-025",
        Critical,
        "Spend ledger reset offline",
        "With keywardd stopped, empty, delete, edit or cut ledger.jsonl to forget the day's spend",
        "Start refused (KW_LEDGER_TRUNCATED / KW_LEDGER_TAMPERED); the intact ledger starts and the cap holds",
        "Start exit status + stderr code per attack + spend after restart",
    ),
    row(
        "RT-026",
        Critical,
        "Audit log cut, deleted or rewritten",
        "Cut whole records (the stopped record too), empty or delete the log, or rewrite it with recomputed hashes",
        "keyward audit verify and the start both refuse (KW_AUDIT_TRUNCATED / KW_AUDIT_CHAIN_BROKEN)",
        "Verifier JSON + start exit status per attack",
    ),
    row(
        "RT-027",
        High,
        "Journals rolled back to an older copy",
        "Restore an older, authentic ledger, audit log and anchor together",
        "Start refused with KW_ANCHOR_ROLLED_BACK (the TPM counter moved on)",
        "Start exit status + stderr code",
    ),
    row(
        "RT-028",
        High,
        "One peer takes every session",
        "An agent opens sessions until refused and keeps them alive",
        "The agent is stopped at its quota (IPC_PEER_QUOTA); admin and approver still get sessions and answers",
        "Session counts + alert codes + admin ping result",
    ),
    row(
        "RT-029",
        High,
        "Refusal flood fills the disk",
        "A uid without a rule connects thousands of times",
        "Refusals are aggregated: a bounded number of audit records carry the full count",
        "Audit growth + summary counts",
    ),
    row(
        "RT-030",
        Critical,
        "Signature answered before its audit record is durable",
        "Make the audit write fail (file-size limit, full disk) between a payment's decision and its signed record",
        "No signature is answered; no torn record; the daemon heals when writes succeed again",
        "Client answers + audit log tail + verifier",
    ),
    row(
        "RT-031",
        High,
        "Key reaper stopped",
        "SIGSTOP/SIGCONT the signer (or attach a tracer) to kill its key-reaper thread",
        "The reaper survives and keeps wiping keys; a dead background thread stops signing",
        "Lifetimes in status + audit + stderr",
    ),
    row(
        "RT-032",
        High,
        "Socket directory owned by another user",
        "Pre-create the socket directory as another user, or place the socket in a shared sticky directory",
        "Start refused (KW_SOCKET_DIR_UNSAFE); the directory is left unchanged",
        "Start exit status + directory mode/owner before and after",
    ),
    row(
        "RT-033",
        Medium,
        "Secrets through free-text fields",
        "Put a keypair byte array, a mnemonic, split hex or a secret-looking idempotency key in an intent",
        "Free text is redacted before it is recorded; a secret-looking identifier is refused at intake",
        "Audit and ledger records + refusal code",
    ),
    row(
        "RT-034",
        Medium,
        "Ambiguous requests",
        "Send an intent with duplicate JSON keys, or requests with unknown fields",
        "Refused with a stable code; nothing decided on an ambiguous reading",
        "Answer codes + audit",
    ),
];

/// The catalogue row for `id`.
pub fn spec(id: &str) -> Option<&'static ScenarioSpec> {
    CATALOGUE.iter().find(|s| s.id == id)
}

/// One row of seed 002's "Buffer-to-Red-Team Traceability Map".
#[derive(Debug, Clone, Copy)]
pub struct BufRow {
    pub id: &'static str,
    pub surface: &'static str,
    pub primary: &'static [&'static str],
    pub secondary: &'static [&'static str],
    pub pass_condition: &'static str,
}

pub const BUF_MAP: [BufRow; 8] = [
    BufRow {
        id: "BUF-001",
        surface: "OS keyring read: in-process heap string during fetch/parse",
        primary: &["RT-014"],
        secondary: &["RT-018"],
        pass_condition: "no host-process key exposure and no leakage artifacts",
    },
    BufRow {
        id: "BUF-002",
        surface: "env var secret injection: process env + copied string buffers",
        primary: &["RT-017"],
        secondary: &["RT-018"],
        pass_condition: "strict mode rejects env-based secret persistence paths",
    },
    BufRow {
        id: "BUF-003",
        surface: "legacy file fallback read: file contents + parse buffers",
        primary: &["RT-011", "RT-012"],
        secondary: &["RT-017"],
        pass_condition: "plaintext fallback absent; blob integrity/rollback protections hold",
    },
    BufRow {
        id: "BUF-004",
        surface: "policy/context metadata: request structs/log context",
        primary: &["RT-018"],
        secondary: &["RT-001"],
        pass_condition: "metadata paths never carry/expose secret material",
    },
    BufRow {
        id: "BUF-005",
        surface: "IPC plaintext payload: sender/receiver transient buffers",
        primary: &["RT-005", "RT-006"],
        secondary: &["RT-004"],
        pass_condition: "AEAD integrity/replay checks and caller auth enforced",
    },
    BufRow {
        id: "BUF-006",
        surface: "signer decrypt window: signer process sensitive buffer",
        primary: &["RT-014"],
        secondary: &["RT-007", "RT-013"],
        pass_condition: "signer-only secret residency with bounded decrypt window",
    },
    BufRow {
        id: "BUF-007",
        surface: "crash dumps/core files: OS dump artifacts",
        primary: &["RT-015"],
        secondary: &["RT-014"],
        pass_condition: "crash paths do not expose recoverable secrets",
    },
    BufRow {
        id: "BUF-008",
        surface: "migration temporary buffers: migration worker memory",
        primary: &["RT-016"],
        secondary: &["RT-018"],
        pass_condition: "migration temps are recoverable, bounded, and non-leaking",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_ids_are_ordered_unique_and_appended() {
        for (i, s) in CATALOGUE.iter().enumerate() {
            assert_eq!(s.id, format!("RT-{:03}", i + 1));
        }
    }

    #[test]
    fn every_buf_row_names_known_scenarios() {
        for row in BUF_MAP {
            assert!(!row.primary.is_empty(), "{} needs primary coverage", row.id);
            for id in row.primary.iter().chain(row.secondary) {
                assert!(spec(id).is_some(), "{} names unknown {id}", row.id);
            }
        }
    }

    #[test]
    fn severities_match_the_seed() {
        let critical: Vec<&str> = CATALOGUE.iter().filter(|s| s.severity == Critical).map(|s| s.id).collect();
        assert_eq!(
            critical,
            [
                "RT-001", "RT-003", "RT-004", "RT-005", "RT-006", "RT-007", "RT-011", "RT-012", "RT-013", "RT-014",
                "RT-017", "RT-019", "RT-020", "RT-021", "RT-022", "RT-023", "RT-024", "RT-025", "RT-026", "RT-030"
            ]
        );
        let high: Vec<&str> = CATALOGUE[24..].iter().filter(|s| s.severity == High).map(|s| s.id).collect();
        assert_eq!(high, ["RT-027", "RT-028", "RT-029", "RT-031", "RT-032"]);
        assert_eq!(spec("RT-016").unwrap().severity, Medium);
        assert!(!Critical.waivable() && High.waivable() && Medium.waivable());
    }
}
