//! README and docs/ link only to files in the repository, and every `docs/PROTOCOL.md §n` a
//! source file cites names a section that exists (issue 12: README pointed at a `DESIGN.md` and a
//! `PROTOCOL.md §7` that were not in the repository).

use std::fs;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn docs() -> Vec<PathBuf> {
    let mut v = vec![root().join("README.md"), root().join("deploy/README.md")];
    for e in fs::read_dir(root().join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            v.push(p);
        }
    }
    v
}

/// Relative Markdown link targets of `text`: `](target)` without a scheme or an anchor only.
fn relative_links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = rest[..end].split('#').next().unwrap_or("");
        if !target.is_empty() && !target.contains("://") && !target.starts_with("mailto:") {
            out.push(target.to_string());
        }
    }
    out
}

#[test]
fn readme_and_docs_link_only_to_files_in_the_repository() {
    let mut missing = Vec::new();
    for doc in docs() {
        let text = fs::read_to_string(&doc).unwrap();
        for target in relative_links(&text) {
            if !doc.parent().unwrap().join(&target).exists() {
                missing.push(format!("{}: {target}", doc.display()));
            }
        }
        // bare mentions of documents that are not here
        for name in ["DESIGN.md", "PROTOCOL.md"] {
            for (n, line) in text.lines().enumerate() {
                let own = name == "PROTOCOL.md" && doc.ends_with("docs/PROTOCOL.md");
                let bare = !own
                    && line
                        .match_indices(name)
                        .any(|(i, _)| !line[..i].ends_with("docs/"));
                if bare && !root().join(name).exists() {
                    missing.push(format!("{}:{}: {name}", doc.display(), n + 1));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "links to files not in the repository:\n{}",
        missing.join("\n")
    );
}

#[test]
fn protocol_sections_cited_in_the_code_exist() {
    let protocol = fs::read_to_string(root().join("docs/PROTOCOL.md")).unwrap();
    let has = |sec: &str| {
        protocol.lines().any(|l| {
            l.strip_prefix("## ")
                .or_else(|| l.strip_prefix("### "))
                .is_some_and(|h| {
                    [" ", ". ", "–"]
                        .iter()
                        .any(|sep| h.starts_with(&format!("{sec}{sep}")))
                })
        })
    };
    let mut cited = Vec::new();
    let mut stack = vec![
        root().join("src"),
        root().join("crates"),
        root().join("benches"),
        root().join("tests"),
    ];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                if !p.ends_with("target") {
                    stack.push(p);
                }
                continue;
            }
            // (this file names the patterns it looks for)
            if p.extension().is_none_or(|x| x != "rs") || p.ends_with("tests/docs_links.rs") {
                continue;
            }
            let text = fs::read_to_string(&p).unwrap();
            assert!(
                !text.contains(" PROTOCOL.md §") && !text.contains("(PROTOCOL.md §"),
                "{}: cite docs/PROTOCOL.md",
                p.display()
            );
            for (i, _) in text.match_indices("docs/PROTOCOL.md §") {
                // "§3.1, §3.2)" and "§3–§8, §11)": every section up to the end of the citation
                let tail = &text[i + "docs/PROTOCOL.md ".len()..];
                let tail = &tail[..tail.find([')', '\n']).unwrap_or(tail.len())];
                for part in tail.split('§').skip(1) {
                    let sec: String = part
                        .chars()
                        .take_while(|c| c.is_ascii_digit() || *c == '.')
                        .collect();
                    let sec = sec.trim_end_matches('.');
                    if !sec.is_empty() {
                        cited.push((p.display().to_string(), sec.to_string()));
                    }
                }
            }
        }
    }
    assert!(cited.len() > 10, "found the citations: {cited:?}");
    let missing: Vec<_> = cited.iter().filter(|(_, s)| !has(s)).collect();
    assert!(
        missing.is_empty(),
        "sections not in docs/PROTOCOL.md: {missing:?}"
    );
}
