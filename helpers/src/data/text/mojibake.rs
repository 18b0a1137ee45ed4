//! Repairing the CrowdFlower tweets' encoding damage. Their file is not UTF-8: typographic
//! punctuation went through a wrong-charset round trip (UTF-8 bytes read as Mac Roman and
//! written again, with unmappable bytes replaced by `_`), and emoji became runs of
//! debris. The punctuation is recovered from a table of the damaged byte sequences, each
//! read off its contexts in the file (`youäó»d` is `you’d`); what no table entry covers
//! is debris whose original cannot be recovered — it is removed and counted.

/// Damaged byte sequences and the character each stood for, longest first within a
/// shared prefix (they are tried in this order).
const REPAIRS: &[(&[u8], &str)] = &[
    (b"\xd5\xa2_\x8a\xce_\x86\xa2", "\u{2019}"),
    (b"\xd5\xa2_\x8a\xce\x81\xd0", "\u{201c}"),
    (b"\xd5\xa2_\x8a\xce\xeb\x9d", "\u{201d}"),
    (b"\xd5\xa2_\x8a\xce\xeb_", "\u{2026}"),
    (b"\xe4\xf3\xbb", "\u{2019}"),
    (b"\xe4\xf3\xec", "\u{201c}"),
    (b"\xe4\xf3\x9d", "\u{201d}"),
    (b"\xe4\xf3\xd6", "\u{2018}"),
    (b"\xe4\xf3_", "\u{2026}"),
    (b"\x8a\x97\xc8", "\u{2019}"),
    (b"\x8a\x97\x93", "\u{201c}"),
];

/// What [`repair`] did to one text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Repair {
    /// Damaged sequences replaced by the punctuation they stood for.
    pub restored: usize,
    /// Runs of unrecoverable bytes removed.
    pub removed: usize,
}

impl Repair {
    pub fn touched(&self) -> bool {
        self.restored + self.removed > 0
    }
}

/// The text of `bytes`: UTF-8 as it is when it is valid UTF-8; otherwise each table
/// sequence restored and every other run of bytes ≥ 0x80 (with the `_` that stand for
/// lost bytes inside it) replaced by one space.
pub fn repair(bytes: &[u8]) -> (String, Repair) {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return (text.to_string(), Repair::default());
    }
    let (mut out, mut done) = (String::with_capacity(bytes.len()), Repair::default());
    let mut i = 0;
    while i < bytes.len() {
        if let Some((from, to)) = REPAIRS
            .iter()
            .find(|(from, _)| bytes[i..].starts_with(from))
        {
            out.push_str(to);
            done.restored += 1;
            i += from.len();
        } else if bytes[i] >= 0x80 || in_debris(bytes, i) {
            let mut end = i;
            while end < bytes.len() && (bytes[end] >= 0x80 || in_debris(bytes, end)) {
                end += 1;
            }
            out.push(' ');
            done.removed += 1;
            i = end;
        } else {
            out.push(bytes[i] as char);
            i += 1;
        }
    }
    (out, done)
}

/// A `_` before a damaged byte is a lost byte, not text.
fn in_debris(bytes: &[u8], at: usize) -> bool {
    bytes[at] == b'_' && bytes.get(at + 1).is_some_and(|&b| b >= 0x80)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_is_kept_and_damage_is_repaired_or_removed() {
        assert_eq!(repair("café ’".as_bytes()).0, "café ’");
        let (text, done) =
            repair(b"you\xe4\xf3\xbbd say \xe4\xf3\xecyes\xe4\xf3\x9d _\xf4\xd6\x89_\xf4\xd6 ok");
        assert_eq!(text, "you\u{2019}d say \u{201c}yes\u{201d}   ok");
        assert_eq!(
            done,
            Repair {
                restored: 3,
                removed: 1
            }
        );
    }
}
