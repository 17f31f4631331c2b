//! Making server-written text safe to show a person.
//!
//! A 402 `error`, a `description` or a receipt's `errorReason` is written
//! by the server and may be shown in a terminal or an approval prompt.
//! Terminal escapes (`ESC [2J`), bidirectional overrides (which can make
//! `9.00` read as `00.9`) and zero-width characters (which hide text) would
//! let the server control what the person sees. We drop them rather than
//! escape them: the text is informational, never a value we act on.

/// Removes control and invisible characters and bounds the length.
///
/// Removed: C0 controls (U+0000..U+001F, including tab and newline), DEL,
/// C1 controls (U+0080..U+009F), the bidi controls U+061C, U+200E, U+200F,
/// U+202A..U+202E, U+2066..U+2069, the zero-width characters
/// U+200B..U+200D, U+2060, U+FEFF, and the line/paragraph separators
/// U+2028, U+2029. If more than `max_chars` characters remain, the result
/// is the first `max_chars - 1` of them followed by `…` (so it is never
/// longer than `max_chars` characters).
pub fn display_safe(s: &str, max_chars: usize) -> String {
    let mut kept = s.chars().filter(|&c| !is_hidden(c));
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

fn is_hidden(c: char) -> bool {
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

#[cfg(test)]
mod tests {
    use super::display_safe;

    #[test]
    fn truncation_counts_the_ellipsis() {
        assert_eq!(display_safe("abcdef", 6), "abcdef");
        assert_eq!(display_safe("abcdefg", 6), "abcde…");
        assert_eq!(display_safe("abc", 0), "");
        assert_eq!(display_safe("ab", 1), "…");
        assert_eq!(display_safe("a\u{200b}", 1), "a");
    }
}
