//! The redaction filter for free-text fields (RT-018).
//!
//! Free text that reaches the audit log or a prompt (an intent's rationale, a
//! denial's reason) is written by software that may have been tricked into
//! pasting a secret. The filter replaces every token that looks like key
//! material with `[REDACTED]`:
//!
//! * a run of 16 or more hex digits, or of 20 or more base58/base64/base64url
//!   characters (what seeds, keys and tokens are encoded as), or
//! * any token of 12 or more characters whose Shannon entropy is at least
//!   3.5 bits per character (random-looking text in any alphabet).
//!
//! Ordinary words, numbers and short identifiers pass. A false positive
//! costs a redacted word in a log; a false negative costs a key.

/// The replacement text.
pub const REDACTED: &str = "[REDACTED]";

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '_' | '-')
}

fn entropy_bits_per_char(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    let mut n = 0u32;
    for b in s.bytes() {
        counts[b as usize] += 1;
        n += 1;
    }
    let n = f64::from(n.max(1));
    counts.iter().filter(|&&c| c > 0).map(|&c| f64::from(c) / n).map(|p| -p * p.log2()).sum()
}

fn looks_secret(token: &str) -> bool {
    let len = token.chars().count();
    if len >= 16 && token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return true;
    }
    let has_digit = token.bytes().any(|b| b.is_ascii_digit());
    let has_upper = token.bytes().any(|b| b.is_ascii_uppercase());
    let has_lower = token.bytes().any(|b| b.is_ascii_lowercase());
    if len >= 20 && has_digit && has_upper && has_lower {
        return true;
    }
    len >= 12 && entropy_bits_per_char(token) >= 3.5 && (has_digit || has_upper)
}

/// Whether `c` must not reach a person's terminal as it is: C0 and C1
/// controls (U+0000..U+001F, U+007F..U+009F), the bidi controls U+061C,
/// U+200E, U+200F, U+202A..U+202E, U+2066..U+2069, the zero-width
/// characters U+200B..U+200D, U+2060, U+FEFF, and the line and paragraph
/// separators U+2028, U+2029. They could run terminal escapes, reorder
/// (`9.00` read as `00.9`) or hide what an approver reads.
pub fn is_display_hostile(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{1f}'
            | '\u{7f}'..='\u{9f}'
            | '\u{61c}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'
            | '\u{2066}'..='\u{2069}'
            | '\u{feff}'
    )
}

/// Text a caller or a server wrote, made safe to show to a person: hostile
/// characters removed, and never longer than `max_chars` characters (when
/// more remain, the first `max_chars - 1` and an ellipsis `…`).
pub fn display_safe(text: &str, max_chars: usize) -> String {
    let mut kept = text.chars().filter(|&c| !is_display_hostile(c));
    let mut out = String::new();
    for n in 0..max_chars {
        let Some(c) = kept.next() else {
            return out;
        };
        if n + 1 == max_chars && kept.clone().next().is_some() {
            out.push('…');
            return out;
        }
        out.push(c);
    }
    out
}

/// `text` with every secret-looking token replaced.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String| {
        if !token.is_empty() {
            out.push_str(if looks_secret(token) { REDACTED } else { token });
            token.clear();
        }
    };
    for c in text.chars() {
        if is_token_char(c) {
            token.push(c);
        } else {
            flush(&mut token, &mut out);
            out.push(c);
        }
    }
    flush(&mut token, &mut out);
    out
}

/// Whether `text` still contains something the filter would redact.
pub fn contains_secret_like(text: &str) -> bool {
    redact(text) != text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_their_usual_encodings_are_redacted() {
        let seed_hex = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
        let b58 = "4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T";
        let b64 = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
        let jwt_like = "sk_live_51H8xYzAbCdEfGh12";
        for s in [seed_hex, b58, b64, jwt_like] {
            let text = format!("pay the API, my key is {s}, thanks");
            let r = redact(&text);
            assert!(!r.contains(s), "{r}");
            assert!(r.contains(REDACTED) && r.starts_with("pay the API, my key is "), "{r}");
        }
    }

    #[test]
    fn ordinary_text_passes() {
        for s in [
            "weather API call for job 42",
            "Paying merchant for 3 requests (invoice INV-2026-001)",
            "approved by the operator after review",
            "",
        ] {
            assert_eq!(redact(s), s);
        }
    }

    #[test]
    fn display_safe_strips_what_could_disguise_a_prompt() {
        let hostile = "pay\u{202e}eeyap\u{200b} \u{1b}[2Jok\u{7f}\u{2066}x\u{feff}";
        assert_eq!(display_safe(hostile, 100), "payeeyap [2Jokx");
        assert_eq!(display_safe("Zürich", 10), "Zürich");
        assert_eq!(display_safe("pay \u{202E}00.9\u{202C} USDC", 100), "pay 00.9 USDC");
        assert_eq!(display_safe("in\u{200B}visible", 100), "invisible");
        assert_eq!(display_safe("\x1b[2Jcleared", 100), "[2Jcleared");
        assert_eq!(display_safe("del\u{7f}eted", 100), "deleted");
        assert_eq!(display_safe("a\nb\tc\r\0d\u{85}e\u{9b}f", 100), "abcdef");
        let all = "\u{200E}\u{200F}\u{202A}\u{202B}\u{202C}\u{202D}\u{202E}\u{2066}\u{2067}\u{2068}\u{2069}\u{061C}\
                   \u{200B}\u{200C}\u{200D}\u{2060}\u{FEFF}\u{2028}\u{2029}";
        assert_eq!(display_safe(all, 100), "");
        assert_eq!(display_safe("Café 東京 ✓", 100), "Café 東京 ✓");
        assert_eq!(display_safe("", 10), "");
    }

    #[test]
    fn display_safe_is_never_longer_than_asked_ellipsis_included() {
        assert_eq!(display_safe("abcdef", 3), "ab…");
        assert_eq!(display_safe("abcdef", 6), "abcdef");
        assert_eq!(display_safe("abcdefg", 6), "abcde…");
        assert_eq!(display_safe("abc", 0), "");
        assert_eq!(display_safe("ab", 1), "…");
        assert_eq!(display_safe("a\u{200b}", 1), "a");
        assert_eq!(display_safe("Café 東京 ✓", 5), "Café…");
        assert_eq!(display_safe(&"x".repeat(1000), 10).chars().count(), 10);
    }
}
