//! DNS label sanitising, with the exact rules Mesos-DNS applies to task, framework and port names.
//!
//! Mesos-DNS maps every character of a name to a label character (lowercase letters and digits
//! kept, `-`, `.` and `_` become `-`, everything else dropped), trims the characters a label may
//! not start or end with, and caps the length. Two specs exist: RFC 1123 (the default, 63
//! characters, may start with a digit) and RFC 952 (`EnforceRFC952`: 24 characters, must start
//! with a letter).

/// Which hostname rules labels must follow; chosen by Mesos-DNS's `EnforceRFC952` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LabelSpec {
    /// RFC 1123 labels: up to 63 characters, letters, digits and inner hyphens.
    #[default]
    Rfc1123,
    /// RFC 952 labels: up to 24 characters, starting with a letter.
    Rfc952,
}

impl LabelSpec {
    /// A label's longest length, and the characters it may not start with.
    fn limits(self) -> (usize, &'static [u8]) {
        match self {
            LabelSpec::Rfc1123 => (63, b"-"),
            LabelSpec::Rfc952 => (24, b"-0123456789"),
        }
    }

    /// Turns an arbitrary name into one DNS label (dots become hyphens), possibly empty.
    pub fn label(self, name: &str) -> String {
        let mapped: Vec<u8> = name.bytes().filter_map(map_byte).collect();
        let (max, left) = self.limits();
        let out = trim_cut(&mapped, max, left, b"-");
        // Only ASCII bytes survive `map_byte`, so this cannot fail.
        String::from_utf8(out).unwrap_or_default()
    }

    /// [`LabelSpec::label`] of `name`, borrowed when `name` already is that label (most task
    /// names are), so the common case costs no allocation.
    pub fn label_of(self, name: &str) -> std::borrow::Cow<'_, str> {
        let bytes = name.as_bytes();
        let (max, left) = self.limits();
        let plain = bytes.len() <= max
            && bytes
                .iter()
                .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && bytes.first().is_none_or(|b| !left.contains(b))
            && bytes.last().is_none_or(|&b| b != b'-');
        if plain {
            std::borrow::Cow::Borrowed(name)
        } else {
            std::borrow::Cow::Owned(self.label(name))
        }
    }

    /// Turns a dotted name into a domain fragment: each dot-separated part sanitised as a label,
    /// empty parts dropped (Mesos-DNS's `DomainFrag`, used for framework names).
    pub fn domain_frag(self, name: &str) -> String {
        let mut out = String::with_capacity(name.len());
        for part in name.split('.') {
            let label = self.label(part);
            if !label.is_empty() {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&label);
            }
        }
        out
    }
}

/// Maps one byte of a name to its label byte, or drops it. Multi-byte UTF-8 sequences consist
/// of bytes >= 0x80 and are dropped entirely, as Mesos-DNS drops the runes they encode.
fn map_byte(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b.to_ascii_lowercase()),
        b'a'..=b'z' | b'0'..=b'9' => Some(b),
        b'-' | b'.' | b'_' => Some(b'-'),
        _ => None,
    }
}

/// Cuts `label` to at most `max` bytes after trimming `left` from its start, then trims `right`
/// from the end; when trimming the end shortened it, the label is refilled from the characters
/// after the cut (Mesos-DNS's `trimCut`).
fn trim_cut(label: &[u8], max: usize, left: &[u8], right: &[u8]) -> Vec<u8> {
    let start = label
        .iter()
        .position(|b| !left.contains(b))
        .unwrap_or(label.len());
    let trim = &label[start..];
    let size = trim.len().min(max);
    let head_len = trim[..size]
        .iter()
        .rposition(|b| !right.contains(b))
        .map_or(0, |p| p + 1);
    let mut head = trim[..head_len].to_vec();
    if head.len() == size {
        return head;
    }
    let rest = &trim[size..];
    let tail_start = rest
        .iter()
        .position(|b| !right.contains(b))
        .unwrap_or(rest.len());
    let tail = &rest[tail_start..];
    if !tail.is_empty() {
        let take = tail.len().min(size - head.len());
        head.extend_from_slice(&tail[..take]);
    }
    head
}

#[cfg(test)]
mod tests {
    use super::LabelSpec::{Rfc1123, Rfc952};

    #[test]
    fn rfc1123_maps_and_trims() {
        assert_eq!(Rfc1123.label("liquor.store"), "liquor-store");
        assert_eq!(Rfc1123.label("Big_Dog"), "big-dog");
        assert_eq!(Rfc1123.label("--a b--"), "ab");
        assert_eq!(Rfc1123.label("1abc"), "1abc");
        assert_eq!(Rfc1123.label("ünïcode"), "ncode");
        assert_eq!(Rfc1123.label("!!!"), "");
        assert_eq!(Rfc1123.label(&"a".repeat(70)).len(), 63);
    }

    #[test]
    fn rfc952_requires_leading_letter_and_24_chars() {
        assert_eq!(Rfc952.label("1abc"), "abc");
        assert_eq!(Rfc952.label("-9-x"), "x");
        assert_eq!(
            Rfc952.label("chronos with a space AND MIXED CASE-2"),
            "chronoswithaspaceandmixe"
        );
        assert_eq!(Rfc952.label("0"), "");
    }

    #[test]
    fn cut_refills_after_trailing_hyphens() {
        // 62 letters, then "--", then "xyz": the cut at 63 ends in '-', which is trimmed, and
        // the label is refilled from what follows the hyphens.
        let name = format!("{}--xyz", "a".repeat(62));
        let got = Rfc1123.label(&name);
        assert_eq!(got, format!("{}x", "a".repeat(62)));
    }

    #[test]
    fn domain_frag_keeps_dots_and_drops_empty_parts() {
        assert_eq!(
            Rfc1123.domain_frag("chronos with a space AND MIXED CASE-2.0.1"),
            "chronoswithaspaceandmixedcase-2.0.1"
        );
        assert_eq!(
            Rfc952.domain_frag("chronos with a space AND MIXED CASE-2.0.1"),
            "chronoswithaspaceandmixe"
        );
        assert_eq!(Rfc1123.domain_frag("..a..b.."), "a.b");
        assert_eq!(Rfc1123.domain_frag("no pid"), "nopid");
    }

    /// `label_of` is `label`, whether it borrows or not.
    #[test]
    fn label_of_is_label() {
        let long = "a".repeat(70);
        for spec in [Rfc1123, Rfc952] {
            for name in [
                "web",
                "app-12",
                "",
                "-web",
                "web-",
                "9lives",
                "Web",
                "a.b",
                "a_b",
                "a b",
                "web--x",
                "ünï",
                &long,
                "abcdefghijklmnopqrstuvwxyz",
            ] {
                assert_eq!(spec.label_of(name), spec.label(name), "{spec:?} {name:?}");
            }
        }
        assert!(matches!(
            Rfc1123.label_of("app-12"),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
