//! `display_safe`: server text shown to a person.

use x402::display_safe;

#[test]
fn strips_controls_bidi_and_zero_width() {
    assert_eq!(display_safe("pay \u{202E}00.9\u{202C} USDC", 100), "pay 00.9 USDC");
    assert_eq!(display_safe("in\u{200B}visible", 100), "invisible");
    assert_eq!(display_safe("\x1b[2Jcleared", 100), "[2Jcleared");
    assert_eq!(display_safe("del\u{7f}eted", 100), "deleted");
    assert_eq!(display_safe("a\nb\tc\r\0d\u{85}e\u{9b}f", 100), "abcdef");
    let all = "\u{200E}\u{200F}\u{202A}\u{202B}\u{202C}\u{202D}\u{202E}\u{2066}\u{2067}\u{2068}\u{2069}\u{061C}\
               \u{200B}\u{200C}\u{200D}\u{2060}\u{FEFF}\u{2028}\u{2029}";
    assert_eq!(display_safe(all, 100), "");
}

#[test]
fn keeps_ordinary_unicode_and_truncates() {
    assert_eq!(display_safe("Café 東京 ✓", 100), "Café 東京 ✓");
    assert_eq!(display_safe("Café 東京 ✓", 5), "Café…");
    assert_eq!(display_safe(&"x".repeat(1000), 10).chars().count(), 10);
    assert_eq!(display_safe("", 10), "");
}
