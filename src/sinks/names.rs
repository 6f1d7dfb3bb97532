//! Safe file and folder names from identifiers the network gave us (call ids, participant rawIds,
//! tokens): no path separators, no `..`, no leading or trailing dot, no control characters, no
//! Windows device name (`CON`, `NUL`, `COM1`, … with or without an extension, any case), none of
//! the names a sink keeps for its own files, bounded length, and distinct inputs never share a
//! name (a short hash marks every altered name, and [`NameSet`] settles the rest within a folder,
//! case-insensitively).

use std::collections::HashSet;

/// Longest name produced (before an extension), in bytes.
pub(crate) const MAX_NAME_LEN: usize = 80;

/// Windows device names: a file whose name before the first `.` is one of these (any case) is
/// the device, not a file, on Windows (and on SMB shares and some sync tools).
pub(crate) const WINDOWS_DEVICE_NAMES: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Whether `name` is taken by a Windows device or by one of `reserved`: its part before the first
/// `.` equals one of them, ignoring case (so `con`, `CON.txt`, `Mixed.wav` all match).
pub(crate) fn is_reserved(name: &str, reserved: &[&str]) -> bool {
    let stem = name.split('.').next().unwrap_or(name);
    WINDOWS_DEVICE_NAMES
        .iter()
        .chain(reserved)
        .any(|r| r.eq_ignore_ascii_case(stem))
}

/// A filesystem-safe name for `id`: ASCII letters, digits, `-`, `_` and `.` are kept (a leading
/// or trailing `.` becomes `_`), everything else becomes `_`; when anything was changed or cut,
/// `-` and 8 hex digits of a hash of the whole original are appended, so `8:acs:x` and `8_acs_x`
/// stay distinct. A Windows device name gets the hash after its stem (`CON` → `CON-1a2b3c4d`,
/// `con.txt` → `con-5e6f7a8b.txt`). Empty input gives `unnamed`.
pub(crate) fn sanitize(id: &str) -> String {
    sanitize_with(id, true, &[])
}

/// Like [`sanitize`], and the result is never one of `reserved` either (compared like
/// [`is_reserved`]): a sink passes the names of its own files, so a participant called `mixed`
/// or `CALL.json` gets `mixed-<hash>` / `CALL-<hash>.json` and the sink's files keep their names.
pub(crate) fn sanitize_avoiding(id: &str, reserved: &[&str]) -> String {
    sanitize_with(id, true, reserved)
}

/// Like [`sanitize`], but `.` is replaced too (for NATS subject tokens and other dot-separated
/// names that never reach a file system, so device names are kept); altered ids still get the
/// hash suffix, so `a.b` and `a_b` stay distinct.
pub(crate) fn sanitize_no_dots(id: &str) -> String {
    sanitize_with(id, false, &[])
}

fn sanitize_with(id: &str, allow_dot: bool, reserved: &[&str]) -> String {
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
    if out.ends_with('.') {
        // Windows drops trailing dots: `a.` would be `a`
        out.pop();
        out.push('_');
        altered = true;
    }
    if out.is_empty() {
        out.push_str("unnamed");
        altered = !id.is_empty();
    }
    let hash = format!("-{:08x}", fnv1a(id.as_bytes()) as u32);
    if allow_dot && is_reserved(&out, reserved) {
        // the hash goes into the stem, which is what Windows (and the sink) look at
        let at = out.find('.').unwrap_or(out.len());
        out.insert_str(at, &hash);
    } else if altered {
        out.push_str(&hash);
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
pub(crate) struct NameSet {
    used: HashSet<String>,
}

impl NameSet {
    /// A set where `reserved` names are already taken.
    pub(crate) fn with_reserved(reserved: &[&str]) -> Self {
        Self {
            used: reserved.iter().map(|s| s.to_ascii_lowercase()).collect(),
        }
    }

    /// Claims `base` (compared case-insensitively, for case-insensitive filesystems), or
    /// `base-2`, `base-3`, ... when taken.
    pub(crate) fn claim(&mut self, base: &str) -> String {
        let mut candidate = base.to_string();
        let mut n = 2u32;
        while !self.used.insert(candidate.to_ascii_lowercase()) {
            candidate = format!("{base}-{n}");
            n += 1;
        }
        candidate
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

    #[test]
    fn windows_device_names_never_come_out_with_or_without_extension_in_any_case() {
        let devices = ["CON", "PRN", "AUX", "NUL", "COM1", "COM9", "LPT1", "LPT9"];
        for d in devices {
            for id in [
                d.to_string(),
                d.to_lowercase(),
                format!("{d}.txt"),
                format!("{}.wav", d.to_lowercase()),
                format!("{d}.tar.gz"),
                format!("{d}."),
            ] {
                let n = sanitize(&id);
                assert!(!is_reserved(&n, &[]), "{id} gave {n}");
                let marked = if id.ends_with('.') {
                    format!("{d}_-") // the trailing dot is replaced first
                } else {
                    format!("{d}-")
                };
                assert!(n.to_uppercase().starts_with(&marked), "{id} gave {n}");
            }
        }
        assert_eq!(
            sanitize("con.txt"),
            format!("con-{:08x}.txt", fnv1a(b"con.txt") as u32)
        );
        // near misses are kept as they are
        for id in ["CONSOLE", "COM10", "LPT0", "NULL", "xCON", "COM"] {
            assert_eq!(sanitize(id), id);
        }
        // a trailing dot (dropped by Windows) is altered too
        let n = sanitize("abc.");
        assert!(!n.ends_with('.') && n.starts_with("abc_-"), "{n}");
        // NATS tokens never reach a file system
        assert_eq!(sanitize_no_dots("CON"), "CON");
    }

    #[test]
    fn reserved_names_are_avoided_and_variants_stay_distinct() {
        let own = ["mixed", "call"];
        let ids = [
            "mixed",
            "MIXED",
            "Mixed.wav",
            "call",
            "CALL.json",
            "call.json",
            "con",
            "CON",
            "con.txt",
        ];
        let names: Vec<String> = ids.iter().map(|id| sanitize_avoiding(id, &own)).collect();
        for (id, n) in ids.iter().zip(&names) {
            assert!(!is_reserved(n, &own), "{id} gave {n}");
            let stem = n.split('.').next().unwrap().to_ascii_lowercase();
            assert!(stem != "mixed" && stem != "call", "{id} gave {n}");
        }
        assert!(names[0].starts_with("mixed-") && names[1].starts_with("MIXED-"));
        assert!(names[4].starts_with("CALL-") && names[4].ends_with(".json"));
        // distinct ids stay distinct even ignoring case
        let lower: HashSet<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
        assert_eq!(lower.len(), ids.len(), "{names:?}");
        // and a name set never hands out a reserved or case-colliding name
        let mut set = NameSet::with_reserved(&own);
        let got: Vec<String> = ["8:acs:Bob", "8:acs:bob", "Ann", "ann", "mixed"]
            .iter()
            .map(|id| set.claim(&sanitize_avoiding(id, &own)))
            .collect();
        let lower: HashSet<String> = got.iter().map(|n| n.to_ascii_lowercase()).collect();
        assert_eq!(lower.len(), got.len(), "{got:?}");
        assert!(got.iter().all(|n| !is_reserved(n, &own)), "{got:?}");
        assert_eq!(sanitize_avoiding("alice", &own), "alice");
    }
}
