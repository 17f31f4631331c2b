//! The redaction filter for free-text fields (RT-018).
//!
//! Free text that reaches the audit log or a prompt (an intent's rationale, a
//! denial's reason) is written by software that may have been tricked into
//! pasting a secret. The filter replaces whatever looks like key material
//! with `[REDACTED]`. First, spans that a secret's usual *written-out* forms
//! take are replaced as a whole:
//!
//! * a byte array: 16 or more byte values in a row (decimal `0..=255` or
//!   `0x`-prefixed hex), separated by commas and/or whitespace, brackets
//!   included when present (`[12,34,…]`, a Solana keypair file; `[0x12,
//!   0x34,…]`; one per line);
//! * split hex: two or more groups of hex digits separated by one `:`, one
//!   `-` or whitespace (`de ad be ef …`, `de:ad:be:ef…`, a UUID), 16 or more
//!   digits in all, among them at least one decimal digit and one letter
//!   `a-f` (so that dates, times and runs of English words pass);
//! * a mnemonic: [`MNEMONIC_RUN`] (8) or more words of the BIP-39 English
//!   wordlist in a row, any case, separated by at most 8 characters of
//!   whitespace, digits or punctuation (`1. abandon 2. ability …`,
//!   `["abandon", "ability", …]`); a 12..24-word phrase is always caught;
//! * split base64/base58: a run of two or more whitespace-separated chunks
//!   of base64/base58 characters, each 4 or more long (or a shorter last one
//!   ending in `=` padding; punctuation around a chunk aside). Its core (the
//!   run without the word-like chunks at its ends: words, capitalised words,
//!   acronyms, numbers, `base64`, `10ms`) must look random: the share of
//!   chunks that are not word-like plus the share of neighbouring
//!   characters whose class (upper, lower, digit, other) changes is at least
//!   0.8 (about 1.5 for random text, under 0.5 for prose), or all chunks but
//!   the last have one width (four or more groups). Word-like chunks of the
//!   core's width next to it (the key's own first or last groups) are taken
//!   with it. Together at least 24 characters, with upper and lower case,
//!   digits (or, without digits, groups of one width, or a very random core
//!   with 4.5 bits of entropy per character) and at least 3.5 bits of
//!   entropy per character.
//!
//! Inside a URL (`http://` or `https://` up to whitespace), `/` separates
//! tokens, so that a path is judged segment by segment.
//!
//! Then every remaining token (a run of letters, digits and `+/=_-`) that
//! looks like a secret on its own is replaced:
//!
//! * a run of 16 or more hex digits, or of 20 or more base58/base64/base64url
//!   characters with upper case, lower case and digits, or
//! * any token of 12 or more characters whose Shannon entropy is at least
//!   3.5 bits per character (random-looking text in any alphabet).
//!
//! Ordinary words, numbers, amounts, dates and URLs pass (the corpus in
//! `tests/vectors/redaction-corpus.json` holds both sides). A false positive
//! costs a redacted word in a log; a false negative costs a key.

use std::ops::Range;
use std::sync::OnceLock;

/// The replacement text.
pub const REDACTED: &str = "[REDACTED]";

/// The BIP-39 English wordlist (2048 words, sorted; SHA-256
/// `2f5eed53a4727b4bf8880d8f3f199efc90e58503646d9ff8eff3a2ed3b24dbda`).
pub const BIP39_ENGLISH: &str = include_str!("bip39-english.txt");

/// This many BIP-39 words in a row are redacted as one span.
pub const MNEMONIC_RUN: usize = 8;
/// This many byte values in a row are redacted as one span.
pub const BYTE_ARRAY_MIN: usize = 16;
/// This many hex digits in separated groups are redacted as one span.
pub const SPLIT_HEX_MIN_DIGITS: usize = 16;

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

/// `text` with every secret-looking span and token replaced.
pub fn redact(text: &str) -> String {
    let mut spans: Vec<Range<usize>> = Vec::new();
    spans.extend(byte_arrays(text));
    spans.extend(split_hex(text));
    spans.extend(mnemonic_runs(text));
    spans.extend(split_base64(text));
    spans.sort_by_key(|r| (r.start, r.end));
    let mut merged: Vec<Range<usize>> = Vec::new();
    for r in spans {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for r in merged {
        out.push_str(&redact_tokens(&text[pos..r.start]));
        out.push_str(REDACTED);
        pos = r.end;
    }
    out.push_str(&redact_tokens(&text[pos..]));
    out
}

/// Where URLs (`http://` or `https://` up to whitespace or a quote) are.
fn url_spans(text: &str) -> Vec<Range<usize>> {
    let b = text.as_bytes();
    let mut out: Vec<Range<usize>> = Vec::new();
    for (i, _) in text.match_indices("://") {
        let scheme = b[..i].iter().rev().take_while(|c| c.is_ascii_alphabetic()).count();
        let start = i - scheme;
        let s = &text[start..i];
        if !(s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https"))
            || (start > 0 && b[start - 1].is_ascii_alphanumeric())
            || out.last().is_some_and(|r| start < r.end)
        {
            continue;
        }
        let len = b[i..].iter().take_while(|c| !c.is_ascii_whitespace() && !b"\"'<>`".contains(c)).count();
        out.push(start..i + len);
    }
    out
}

/// `text` with every secret-looking token (on its own) replaced. Inside a
/// URL, `/` separates tokens (path segments are judged one by one).
fn redact_tokens(text: &str) -> String {
    let urls = url_spans(text);
    let mut out = String::with_capacity(text.len());
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String| {
        if !token.is_empty() {
            out.push_str(if looks_secret(token) { REDACTED } else { token });
            token.clear();
        }
    };
    for (i, c) in text.char_indices() {
        let in_url = urls.iter().any(|r| r.contains(&i));
        if is_token_char(c) && !(in_url && c == '/') {
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

/// The wordlist, one word per line, as a sorted slice.
fn bip39_words() -> &'static [&'static str] {
    static WORDS: OnceLock<Vec<&'static str>> = OnceLock::new();
    WORDS.get_or_init(|| BIP39_ENGLISH.lines().map(str::trim).filter(|w| !w.is_empty()).collect())
}

/// Whether `word` (any case) is in the BIP-39 English wordlist.
pub fn is_bip39_word(word: &str) -> bool {
    if !(3..=8).contains(&word.len()) || !word.is_ascii() {
        return false;
    }
    bip39_words().binary_search(&word.to_ascii_lowercase().as_str()).is_ok()
}

/// The end of the byte value that starts at `i` (`0..=255` in decimal, or
/// `0x` and one or two hex digits), if one does and nothing glued to it
/// makes it part of a longer word or a decimal fraction.
fn byte_value_end(b: &[u8], i: usize) -> Option<usize> {
    let end = if b[i..].len() > 2 && b[i] == b'0' && (b[i + 1] | 0x20) == b'x' {
        let n = b[i + 2..].iter().take(3).take_while(|c| c.is_ascii_hexdigit()).count();
        if !(1..=2).contains(&n) {
            return None;
        }
        i + 2 + n
    } else {
        let n = b[i..].iter().take(4).take_while(|c| c.is_ascii_digit()).count();
        if !(1..=3).contains(&n) {
            return None;
        }
        let v: u32 = b[i..i + n].iter().fold(0, |v, d| v * 10 + u32::from(d - b'0'));
        if v > 255 {
            return None;
        }
        i + n
    };
    let glued = match b.get(end) {
        Some(c) if c.is_ascii_alphanumeric() || *c == b'_' => true,
        Some(b'.') => b.get(end + 1).is_some_and(u8::is_ascii_digit),
        _ => false,
    };
    (!glued).then_some(end)
}

/// Spans of [`BYTE_ARRAY_MIN`] or more byte values in a row.
fn byte_arrays(text: &str) -> Vec<Range<usize>> {
    let b = text.as_bytes();
    let skip_ws = |mut k: usize| {
        while b.get(k).is_some_and(u8::is_ascii_whitespace) {
            k += 1;
        }
        k
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let starts = b[i].is_ascii_digit()
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || matches!(b[i - 1], b'.' | b'_' | b'-')));
        let Some(first_end) = starts.then(|| byte_value_end(b, i)).flatten() else {
            i += 1;
            continue;
        };
        let (mut count, mut end) = (1, first_end);
        loop {
            let mut k = skip_ws(end);
            if b.get(k) == Some(&b',') {
                k = skip_ws(k + 1);
            }
            if k == end || k >= b.len() || !b[k].is_ascii_digit() {
                break;
            }
            match byte_value_end(b, k) {
                Some(e) => {
                    count += 1;
                    end = e;
                }
                None => break,
            }
        }
        if count >= BYTE_ARRAY_MIN {
            let mut start = i;
            let before = b[..i].iter().rposition(|c| !c.is_ascii_whitespace());
            if let Some(p) = before.filter(|&p| b[p] == b'[') {
                start = p;
            }
            let mut stop = end;
            let mut k = skip_ws(end);
            if b.get(k) == Some(&b',') {
                k = skip_ws(k + 1);
            }
            if b.get(k) == Some(&b']') {
                stop = k + 1;
            }
            out.push(start..stop);
        }
        i = end;
    }
    out
}

/// Maximal runs of ASCII letters and digits, as byte ranges.
fn alnum_runs(b: &[u8]) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_alphanumeric() {
            let start = i;
            while i < b.len() && b[i].is_ascii_alphanumeric() {
                i += 1;
            }
            runs.push(start..i);
        } else {
            i += 1;
        }
    }
    runs
}

/// Spans of hex written in separated groups (`de ad be ef`, `de:ad:…`,
/// `dead-beef-…`), [`SPLIT_HEX_MIN_DIGITS`] digits or more in all.
fn split_hex(text: &str) -> Vec<Range<usize>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut chain: Vec<Range<usize>> = Vec::new();
    let close = |chain: &mut Vec<Range<usize>>, out: &mut Vec<Range<usize>>| {
        let digits: usize = chain.iter().map(|r| r.len()).sum();
        let all = || chain.iter().flat_map(|r| &b[r.clone()]);
        if chain.len() >= 2
            && digits >= SPLIT_HEX_MIN_DIGITS
            && all().any(u8::is_ascii_digit)
            && all().any(u8::is_ascii_alphabetic)
        {
            out.push(chain[0].start..chain[chain.len() - 1].end);
        }
        chain.clear();
    };
    for run in alnum_runs(b) {
        let hex = b[run.clone()].iter().all(u8::is_ascii_hexdigit);
        let joins = chain.last().is_some_and(|prev| {
            let gap = &b[prev.end..run.start];
            gap == b":" || gap == b"-" || (!gap.is_empty() && gap.iter().all(u8::is_ascii_whitespace))
        });
        if !(hex && joins) {
            close(&mut chain, &mut out);
        }
        if hex {
            chain.push(run);
        }
    }
    close(&mut chain, &mut out);
    out
}

/// Spans of [`MNEMONIC_RUN`] or more BIP-39 words in a row.
fn mnemonic_runs(text: &str) -> Vec<Range<usize>> {
    let mut words: Vec<Range<usize>> = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain(std::iter::once((text.len(), ' '))) {
        match (c.is_alphabetic(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                words.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    let separator = |gap: &str| {
        !gap.is_empty()
            && gap.len() <= 8
            && gap.bytes().all(|c| c.is_ascii_whitespace() || c.is_ascii_digit() || c.is_ascii_punctuation())
    };
    let mut out = Vec::new();
    let mut run: Option<(Range<usize>, usize)> = None;
    let close = |run: &mut Option<(Range<usize>, usize)>, out: &mut Vec<Range<usize>>| {
        if let Some((span, n)) = run.take()
            && n >= MNEMONIC_RUN
        {
            out.push(span);
        }
    };
    for w in words {
        if !is_bip39_word(&text[w.clone()]) {
            close(&mut run, &mut out);
            continue;
        }
        match &mut run {
            Some((span, n)) if separator(&text[span.end..w.start]) => {
                span.end = w.end;
                *n += 1;
            }
            _ => {
                close(&mut run, &mut out);
                run = Some((w, 1));
            }
        }
    }
    close(&mut run, &mut out);
    out
}

fn is_b64_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b'_' | b'-')
}

/// A word, a capitalised word, an acronym or a number, a word and a number
/// (`base64`, `SHA256`, `x402`) or a number and a unit (`3rd`, `10ms`), or
/// several joined by `-`, `_`, `+`, `/`, `=` (`INV-2026-001`): what prose is
/// made of.
fn wordlike(chunk: &[u8]) -> bool {
    // An acronym, or a (capitalised) word with a vowel if it is long.
    let word = |w: &[u8]| {
        let vowel = || w.len() < 4 || w.iter().any(|c| b"aeiouyAEIOUY".contains(c));
        !w.is_empty()
            && (w.iter().all(u8::is_ascii_uppercase)
                || (w[0].is_ascii_alphabetic() && w[1..].iter().all(u8::is_ascii_lowercase) && vowel()))
    };
    chunk.split(|c| !c.is_ascii_alphanumeric()).filter(|p| !p.is_empty()).all(|p| {
        let digits = p.iter().position(u8::is_ascii_digit).unwrap_or(p.len());
        let (head, tail) = p.split_at(digits);
        let letters = tail.iter().position(|c| !c.is_ascii_digit()).unwrap_or(tail.len());
        let (number, unit) = tail.split_at(letters);
        let tail_digits = tail.iter().all(u8::is_ascii_digit);
        (head.is_empty() && (unit.is_empty() || unit.iter().all(u8::is_ascii_lowercase)) && !number.is_empty())
            || (word(head) && tail_digits)
    })
}

/// How often the character class (upper case, lower case, digit, other)
/// changes from one character to the next inside the chunks: about 0.64 for
/// random base64 or base58, under 0.2 for words.
fn class_changes<'a>(chunks: impl Iterator<Item = &'a [u8]>) -> f64 {
    let class = |c: u8| match c {
        b'A'..=b'Z' => 0,
        b'a'..=b'z' => 1,
        b'0'..=b'9' => 2,
        _ => 3,
    };
    let (mut pairs, mut changes) = (0u32, 0u32);
    for chunk in chunks {
        for w in chunk.windows(2) {
            pairs += 1;
            changes += u32::from(class(w[0]) != class(w[1]));
        }
    }
    if pairs == 0 { 0.0 } else { f64::from(changes) / f64::from(pairs) }
}

/// Spans of base64/base58 text broken up by whitespace.
fn split_base64(text: &str) -> Vec<Range<usize>> {
    let b = text.as_bytes();
    // Maximal runs of non-whitespace (byte ranges; whitespace is ASCII),
    // without the punctuation prose puts around a word.
    let mut chunks: Vec<Option<Range<usize>>> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let mut start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut end = i;
        while start < end && b"([{\"'".contains(&b[start]) {
            start += 1;
        }
        while end > start && b".,;:!?)]}\"'".contains(&b[end - 1]) {
            end -= 1;
        }
        // Four characters or more, or a short last group with its padding.
        let long_enough = end - start >= 4 || (end - start >= 2 && b[end - 1] == b'=');
        let ok = long_enough && b[start..end].iter().all(|&c| is_b64_char(c));
        chunks.push(ok.then_some(start..end));
    }
    let mut out = Vec::new();
    for run in chunks.split(Option::is_none) {
        let run: Vec<&Range<usize>> = run.iter().flatten().collect();
        let random = |r: &&Range<usize>| !wordlike(&b[(*r).clone()]);
        let (Some(first), Some(last)) = (run.iter().position(random), run.iter().rposition(random)) else {
            continue;
        };
        let core = &run[first..=last];
        // Word-like chunks of the core's own group width at either end are
        // a key's first or last groups as likely as prose: they are judged
        // and replaced with it.
        let width = core.iter().map(|r| r.len()).max().unwrap_or(0);
        let same_width = |r: &&&Range<usize>| r.len() == width;
        let before = run[..first].iter().rev().take_while(same_width).count();
        let mut after = run[last + 1..].iter().take_while(same_width).count();
        if run.get(last + after + 1).is_some_and(|r| r.len() < width && b[r.end - 1] == b'=') {
            after += 1; // a shorter last group with base64 padding
        }
        let span = &run[first - before..=last + after];
        let joined: String = span.iter().map(|r| &text[(*r).clone()]).collect();
        let random_chunks = core.iter().filter(|r| !wordlike(&b[(**r).clone()])).count();
        let randomness = f64::from(random_chunks as u32) / f64::from(core.len() as u32)
            + class_changes(core.iter().map(|r| &b[(*r).clone()]));
        let entropy = entropy_bits_per_char(&joined);
        // A key cut into groups: four or more of one width (the last may be
        // shorter). Prose words are rarely all as long as each other.
        let uniform = span.split_last().is_some_and(|(tail, groups)| {
            groups.len() >= 3 && groups.iter().all(|r| r.len() == width) && tail.len() <= width
        });
        if core.len() >= 2
            && (randomness >= 0.8 || uniform)
            && joined.len() >= 24
            && joined.bytes().any(|c| c.is_ascii_uppercase())
            && joined.bytes().any(|c| c.is_ascii_lowercase())
            && (joined.bytes().any(|c| c.is_ascii_digit()) || uniform || (randomness >= 1.3 && entropy >= 4.5))
            && entropy >= 3.5
        {
            out.push(span[0].start..span[span.len() - 1].end);
        }
    }
    out
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

    /// 64 bytes standing in for a keypair (derived, not a real key).
    fn keypair() -> Vec<u8> {
        use sha2::{Digest, Sha256};
        let mut v = Sha256::digest(b"keyward redaction test, half 1").to_vec();
        v.extend(Sha256::digest(b"keyward redaction test, half 2"));
        v
    }

    fn joined(bytes: &[u8], f: impl Fn(&u8) -> String, sep: &str) -> String {
        bytes.iter().map(f).collect::<Vec<_>>().join(sep)
    }

    /// `secret` inside prose is replaced as a whole and the prose survives.
    fn assert_wrapped_redacted(secret: &str) {
        let text = format!("pay the API, my key is {secret} thanks");
        assert_eq!(redact(&text), format!("pay the API, my key is {REDACTED} thanks"), "{secret}");
    }

    #[test]
    fn byte_arrays_are_redacted_whole() {
        let k = keypair();
        for text in [
            format!("[{}]", joined(&k, u8::to_string, ",")),
            format!("[{}]", joined(&k, u8::to_string, ", ")),
            format!("[\n  {}\n]", joined(&k, u8::to_string, ",\n  ")),
            format!("[ {} ]", joined(&k, u8::to_string, " , ")),
            format!("[{}]", joined(&k, |b| format!("0x{b:02x}"), ", ")),
            format!("[{}]", joined(&k, |b| format!("0x{b:X}"), ",")),
            joined(&k, |b| format!("0x{b:02x}"), " "),
            joined(&k[..32], u8::to_string, ", "),
            format!("[{},]", joined(&k[..16], u8::to_string, ",")),
        ] {
            assert_wrapped_redacted(&text);
        }
        // Below the threshold, lists of numbers are prose.
        let fifteen = format!("[{}]", joined(&k[..15], u8::to_string, ","));
        assert_eq!(redact(&fifteen), fifteen);
        for prose in ["retry after 1, 2, 4, 8 and 16 seconds", "versions 1.2.3, 1.2.4 and 2.0.0", "[300, 400, 500]"] {
            assert_eq!(redact(prose), prose);
        }
    }

    #[test]
    fn hex_split_by_spaces_colons_dashes_or_lines_is_redacted() {
        let k = &keypair()[..32];
        let hex2 = |b: &u8| format!("{b:02x}");
        for text in [
            joined(k, hex2, " "),
            joined(k, hex2, ":"),
            joined(k, |b| format!("{b:02X}"), ":"),
            joined(k, hex2, "-"),
            k.chunks(4).map(|c| joined(c, hex2, "")).collect::<Vec<_>>().join(" "),
            k.chunks(16).map(|c| joined(c, hex2, " ")).collect::<Vec<_>>().join("\n"),
            joined(&k[..8], hex2, ":"),
            "550e8400-e29b-41d4-a716-446655440000".to_string(),
        ] {
            assert_wrapped_redacted(&text);
        }
        // Dates, times, a MAC address and English words made of hex letters pass.
        for prose in [
            "at 2026-05-01 12:30:45 UTC",
            "device 00:1a:2b:3c:4d:5e on port 8080",
            "a bad cafe added a decade of beef",
            "call 555 123 4567 or 555 987 6543",
        ] {
            assert_eq!(redact(prose), prose);
        }
    }

    #[test]
    fn mnemonics_are_redacted_whole() {
        let k = keypair();
        let words: Vec<&str> =
            k.chunks(2).map(|c| bip39_words()[usize::from(u16::from_be_bytes([c[0], c[1]]) % 2048)]).collect();
        for n in [12, 15, 18, 21, 24] {
            let phrase = words[..n].join(" ");
            assert_wrapped_redacted(&phrase);
            assert_wrapped_redacted(&phrase.to_uppercase());
            assert_wrapped_redacted(&words[..n].join("\n"));
            let numbered: Vec<String> = words[..n].iter().enumerate().map(|(i, w)| format!("{}. {w}", i + 1)).collect();
            let text = format!("my phrase is {}, thanks", numbered.join(" "));
            assert_eq!(redact(&text), format!("my phrase is 1. {REDACTED}, thanks"), "{n} numbered words");
            let quoted: Vec<String> = words[..n].iter().map(|w| format!("\"{w}\"")).collect();
            assert_eq!(
                redact(&format!("mnemonic: [{}]", quoted.join(", "))),
                format!("mnemonic: [\"{REDACTED}\"]"),
                "{n} quoted words"
            );
        }
        // The rule: eight wordlist words in a row, not seven.
        let eight = "abandon ability able about above absent absorb abstract";
        assert_eq!(redact(eight), REDACTED);
        let seven = "abandon ability able about above absent absorb";
        assert_eq!(redact(seven), seven);
        assert!(is_bip39_word("Zoo") && is_bip39_word("abandon") && !is_bip39_word("the") && !is_bip39_word("zoos"));
    }

    #[test]
    fn base64_and_base58_split_by_whitespace_are_redacted() {
        let b64 = "+uY3aW/R5lbcBvAXFbbj3g0BFEWJ3fzftdRtrzewpkc=";
        let b58 = solana_codec::base58::encode(&keypair());
        for key in [b64, b58.as_str()] {
            for width in [4, 6, 8, 11] {
                let chunks: Vec<String> =
                    key.as_bytes().chunks(width).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
                let (first, rest) = chunks.split_at(chunks.len() - 1);
                // A short last chunk (padding) may stay; nothing long may.
                for sep in [" ", "\n", "  "] {
                    let text = format!("key: {} end", chunks.join(sep));
                    let r = redact(&text);
                    assert!(r.starts_with(&format!("key: {REDACTED}")) && r.ends_with(" end"), "{width}: {r}");
                    assert!(!r.contains(&first.join(sep)), "{width}: {r}");
                    let last = &rest[0];
                    let may_stay = last.len() < width && !last.ends_with('=') && wordlike(last.as_bytes());
                    assert!(may_stay || !r.contains(last.as_str()), "{width}: {r}");
                }
            }
        }
    }

    #[test]
    fn many_random_keys_split_in_groups_are_all_caught() {
        use sha2::{Digest, Sha256};
        let mut missed = Vec::new();
        let mut seed = Sha256::digest(b"keyward split-key sweep").to_vec();
        for n in 0..2000 {
            seed = Sha256::digest(&seed).to_vec();
            let mut long = seed.clone();
            long.extend(Sha256::digest(&long));
            let b58_32 = solana_codec::base58::encode(&seed);
            let b58_64 = solana_codec::base58::encode(&long);
            let b64 = b64_encode(if n % 2 == 0 { &seed } else { &long });
            for key in [&b58_32, &b58_64, &b64] {
                for width in [4, 5, 8] {
                    let groups: Vec<&str> =
                        key.as_bytes().chunks(width).map(|c| std::str::from_utf8(c).unwrap()).collect();
                    let text = format!("key: {} -- ok", groups.join(" "));
                    let r = redact(&text);
                    let full = &groups[..groups.len() - 1];
                    if full.iter().any(|g| r.contains(&format!(" {g} "))) || !r.contains(REDACTED) {
                        missed.push(r);
                    }
                }
            }
        }
        assert!(missed.is_empty(), "{} missed, e.g. {:?}", missed.len(), &missed[..missed.len().min(5)]);
    }

    fn b64_encode(bytes: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for c in bytes.chunks(3) {
            let n = c.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
            for i in 0..4 {
                out.push(if i <= c.len() { A[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
            }
        }
        out
    }

    #[test]
    fn arbitrary_text_never_panics_and_redacting_twice_changes_nothing() {
        use sha2::{Digest, Sha256};
        let pieces = [
            "a", "Z", "0", "9", "f", " ", "\n", ",", ":", "-", "[", "]", "0x", "=", "/", "+", "_", ".", "é", "東", "✓",
            "\u{202e}", "https://", "abandon ", "zoo ", "de:", "12, ", "x402-",
        ];
        let mut state = Sha256::digest(b"redact fuzz").to_vec();
        for _ in 0..3000 {
            state = Sha256::digest(&state).to_vec();
            let text: String = state
                .iter()
                .chain(Sha256::digest(&state).iter())
                .map(|b| pieces[usize::from(*b) % pieces.len()])
                .collect();
            let once = redact(&text);
            assert_eq!(redact(&once), once, "{text:?}");
        }
    }

    #[test]
    fn prose_amounts_and_urls_pass() {
        for s in [
            "pay 0.25 USDC for the weather API call at https://api.example.com/v1/forecast",
            "Paying merchant for 3 requests (invoice INV-2026-001) at 12:30 on 2026-05-01",
            "Buy one ticket for the next train to the city; budget 12.50 USD, job 42",
            "the agent will buy a ticket again because the review is also about the weather",
            "x402 payment for https://merchant.example:8443/reports/q3?format=pdf&lang=en",
            "retry 3 of 5: GET /v2/items/1234 returned 402 Payment Required",
            "Transfer 1,000,000 lamports (0.001 SOL) to the treasury after approval",
            "approved by alice@example.com; ticket OPS-1234; see docs/policy.md",
            "Café Zürich 東京 ✓ — 50 CHF",
        ] {
            assert_eq!(redact(s), s);
        }
    }

    #[test]
    fn the_embedded_wordlist_is_bip39_english() {
        use sha2::{Digest, Sha256};
        assert_eq!(
            crate::hex(&Sha256::digest(BIP39_ENGLISH.as_bytes())),
            "2f5eed53a4727b4bf8880d8f3f199efc90e58503646d9ff8eff3a2ed3b24dbda"
        );
        let words = bip39_words();
        assert_eq!(words.len(), 2048);
        assert!(words.windows(2).all(|w| w[0] < w[1]), "sorted and unique: binary search depends on it");
        assert_eq!((words[0], words[2047]), ("abandon", "zoo"));
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
