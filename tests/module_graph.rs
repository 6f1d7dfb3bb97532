//! The module graph stays the one documented in `src/lib.rs` ("Dependency line"): every
//! `crate::<module>` path in `src/` outside test code names a module its top-level module may use,
//! and the documented graph itself has no cycle. Also: `pipeline` reads no clock. Reads the
//! sources; builds nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// `module → modules it may use`, parsed from lib.rs's "Dependency line" list.
fn documented() -> BTreeMap<String, BTreeSet<String>> {
    let lib = std::fs::read_to_string(Path::new(SRC).join("lib.rs")).unwrap();
    let mut graph = BTreeMap::new();
    for line in lib.lines() {
        let Some(rest) = line.strip_prefix("//! - `") else {
            continue;
        };
        let Some((from, to)) = rest.split_once("` → ") else {
            continue;
        };
        let to: BTreeSet<String> = to
            .split(',')
            .map(|t| t.trim().trim_matches('`').to_owned())
            .filter(|t| !t.is_empty() && t != "(none)")
            .collect();
        graph.insert(from.to_owned(), to);
    }
    assert!(
        graph.len() >= 8,
        "lib.rs lists the dependency line: {graph:?}"
    );
    graph
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The product code of a file: without test module files (`*_tests.rs`, `tests.rs`) and without the inline
/// `#[cfg(test)] mod … { … }` module (by convention the file's last item).
fn product_code(path: &Path) -> String {
    let name = path.file_name().unwrap().to_string_lossy();
    if name.ends_with("_tests.rs") || name == "tests.rs" {
        return String::new();
    }
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == "#[cfg(test)]" {
            // skip further attributes to the item
            let mut j = i + 1;
            while j < lines.len() && lines[j].trim_start().starts_with("#[") {
                j += 1;
            }
            let item = lines.get(j).map_or("", |l| l.trim());
            if item.contains("mod ") && item.ends_with('{') {
                break; // the inline test module runs to the end of the file
            }
        }
        out.push_str(lines[i]);
        out.push('\n');
        i += 1;
    }
    out
}

/// The top-level module a file under src/ belongs to (`None` for lib.rs and main.rs).
fn top_module(path: &Path) -> Option<String> {
    let rel = path.strip_prefix(SRC).unwrap();
    let first = rel.components().next()?.as_os_str().to_string_lossy();
    let m = first.trim_end_matches(".rs").to_owned();
    (m != "lib" && m != "main").then_some(m)
}

/// Every `crate::<name>` in `code`.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        // not `acs_crate::` or the like
        if code[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
        {
            continue;
        }
        let rest = &code[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if rest.starts_with('{') {
            panic!("use one `crate::module::…` path per module, not `crate::{{…}}`");
        }
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

#[test]
fn documented_dependency_line_has_no_cycle() {
    let g = documented();
    // repeatedly remove modules that use nothing left; a cycle leaves some behind
    let mut left: BTreeMap<String, BTreeSet<String>> = g.clone();
    loop {
        let done: Vec<String> = left
            .iter()
            .filter(|(_, to)| to.iter().all(|t| !left.contains_key(t)))
            .map(|(m, _)| m.clone())
            .collect();
        if done.is_empty() {
            break;
        }
        for m in done {
            left.remove(&m);
        }
    }
    assert!(left.is_empty(), "cycle among {:?}", left.keys());
    for to in g.values() {
        for t in to {
            assert!(g.contains_key(t), "{t} is used but not listed");
        }
    }
}

#[test]
fn every_crate_path_follows_the_dependency_line() {
    let g = documented();
    let mut files = Vec::new();
    rs_files(Path::new(SRC), &mut files);
    files.sort();
    let mut bad = Vec::new();
    let mut seen_edges = BTreeSet::new();
    for f in &files {
        let Some(from) = top_module(f) else { continue };
        let allowed = g
            .get(&from)
            .unwrap_or_else(|| panic!("module {from} is not in lib.rs's dependency line"));
        for to in crate_paths(&product_code(f)) {
            if to == from || to == "protocol" {
                continue;
            }
            seen_edges.insert((from.clone(), to.clone()));
            if !allowed.contains(&to) {
                bad.push(format!(
                    "{}: {from} → {to}",
                    f.strip_prefix(SRC).unwrap().display()
                ));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "edges outside lib.rs's dependency line:\n  {}",
        bad.join("\n  ")
    );
    // the check sees the edges it should (it is not vacuous)
    for (from, to) in [
        ("app", "ingress"),
        ("sinks", "pipeline"),
        ("config", "control"),
    ] {
        assert!(
            seen_edges.contains(&(from.to_owned(), to.to_owned())),
            "expected edge {from} → {to}"
        );
    }
}

#[test]
fn pipeline_reads_no_clock() {
    let mut files = Vec::new();
    rs_files(&Path::new(SRC).join("pipeline"), &mut files);
    let mut bad = Vec::new();
    for f in &files {
        let code = product_code(f);
        for (n, line) in code.lines().enumerate() {
            let l = line.split("//").next().unwrap_or("");
            for clock in ["Instant::now", "SystemTime::now", "Utc::now", ".elapsed()"] {
                if l.contains(clock) {
                    bad.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "pipeline is handed `now`; clock reads:\n  {}",
        bad.join("\n  ")
    );
}
