//! Safe file and folder names from identifiers the network gave us (call ids, participant rawIds,
//! tokens): no path separators, no `..`, no leading dot, no control characters, bounded length,
//! and distinct inputs never share a name (a short hash marks every altered name, and
//! [`NameSet`] settles the rest within a folder).

use std::collections::HashSet;

/// Longest name produced (before an extension), in bytes.
pub const MAX_NAME_LEN: usize = 80;

/// A filesystem-safe name for `id`: ASCII letters, digits, `-`, `_` and `.` are kept (a leading
/// `.` becomes `_`), everything else becomes `_`; when anything was changed or cut, `-` and 8 hex
/// digits of a hash of the whole original are appended, so `8:acs:x` and `8_acs_x` stay distinct.
/// Empty input gives `unnamed`.
pub fn sanitize(id: &str) -> String {
    sanitize_with(id, true)
}

/// Like [`sanitize`], but `.` is replaced too (for NATS subject tokens and other dot-separated
/// names); altered ids still get the hash suffix, so `a.b` and `a_b` stay distinct.
pub fn sanitize_no_dots(id: &str) -> String {
    sanitize_with(id, false)
}

fn sanitize_with(id: &str, allow_dot: bool) -> String {
    const HASH_LEN: usize = 9; // "-" + 8 hex
    let mut out = String::with_capacity(id.len().min(MAX_NAME_LEN));
    let mut altered = false;
    for (i, ch) in id.chars().enumerate() {
        let keep = ch.is_ascii_alphanumeric()
            || ch == '-'
            || ch == '_'
            || (ch == '.' && allow_dot && i > 0);
        if out.len() >= MAX_NAME_LEN - HASH_LEN {
            altered = true;
            break;
        }
        if keep {
            out.push(ch);
        } else {
            out.push('_');
            altered = true;
        }
    }
    if out.is_empty() {
        out.push_str("unnamed");
        altered = !id.is_empty();
    }
    if altered {
        out.push('-');
        out.push_str(&format!("{:08x}", fnv1a(id.as_bytes()) as u32));
    }
    out
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Names already given out in one folder; [`NameSet::claim`] returns a fresh one.
#[derive(Debug, Default, Clone)]
pub struct NameSet {
    used: HashSet<String>,
}

impl NameSet {
    /// A set where `reserved` names are already taken.
    pub fn with_reserved(reserved: &[&str]) -> Self {
        Self {
            used: reserved.iter().map(|s| s.to_ascii_lowercase()).collect(),
        }
    }

    /// Claims `base` (compared case-insensitively, for case-insensitive filesystems), or
    /// `base-2`, `base-3`, ... when taken.
    pub fn claim(&mut self, base: &str) -> String {
        let mut candidate = base.to_string();
        let mut n = 2u32;
        while !self.used.insert(candidate.to_ascii_lowercase()) {
            candidate = format!("{base}-{n}");
            n += 1;
        }
        candidate
    }

    /// Claims the name as given, without reserving it further (for names produced elsewhere).
    pub fn reserve(&mut self, name: &str) -> bool {
        self.used.insert(name.to_ascii_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_ids_cannot_escape_or_hide() {
        for id in [
            "../../etc/passwd",
            "..",
            ".",
            "/abs/path",
            "a\\b",
            "C:\\x",
            "nul\0byte",
            "line\nbreak",
            ".hidden",
        ] {
            let n = sanitize(id);
            assert!(
                !n.contains('/') && !n.contains('\\') && !n.contains('\0'),
                "{n}"
            );
            assert!(!n.starts_with('.'), "{n}");
            assert_ne!(n, "..");
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
                "{n}"
            );
        }
        assert!(sanitize("../../etc/passwd").starts_with("_._.._etc_passwd-"));
    }

    #[test]
    fn plain_ids_are_kept_and_altered_ones_stay_distinct() {
        assert_eq!(sanitize("abc-DEF_1.2"), "abc-DEF_1.2");
        let a = sanitize("8:acs:x");
        let b = sanitize("8_acs_x");
        assert_ne!(a, b);
        assert_eq!(b, "8_acs_x");
        assert!(a.starts_with("8_acs_x-"));
        assert_eq!(sanitize(""), "unnamed");
        assert_ne!(sanitize("日本"), sanitize("中文"));
    }

    #[test]
    fn no_dots_variant_keeps_ids_distinct() {
        assert_eq!(sanitize_no_dots("plain-id_1"), "plain-id_1");
        let (a, b) = (sanitize_no_dots("a.b"), sanitize_no_dots("a_b"));
        assert!(!a.contains('.'));
        assert_ne!(a, b);
    }

    #[test]
    fn length_is_bounded_and_long_ids_stay_distinct() {
        let long_a = "a".repeat(10_000);
        let long_b = format!("{}b", "a".repeat(9_999));
        let (na, nb) = (sanitize(&long_a), sanitize(&long_b));
        assert!(na.len() <= MAX_NAME_LEN && nb.len() <= MAX_NAME_LEN);
        assert_ne!(na, nb);
        let multibyte = "é".repeat(500);
        assert!(sanitize(&multibyte).len() <= MAX_NAME_LEN);
    }

    #[test]
    fn name_set_settles_collisions_case_insensitively() {
        let mut s = NameSet::with_reserved(&["mixed"]);
        assert_eq!(s.claim("mixed"), "mixed-2");
        assert_eq!(s.claim("Bob"), "Bob");
        assert_eq!(s.claim("bob"), "bob-2");
        assert_eq!(s.claim("bob"), "bob-3");
    }
}
