//! The user documentation holds together: every relative link in the
//! README, the CHANGELOG and `docs/` leads to a file that exists (and to a
//! heading that exists, for a `#fragment`), the README stays a front door,
//! and no commit hash stands in a user doc.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The README, the CHANGELOG and every Markdown file under docs/.
fn user_docs() -> Vec<PathBuf> {
    let mut out = vec![root().join("README.md"), root().join("CHANGELOG.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    out.extend(docs);
    out
}

/// The targets of the Markdown links `[text](target)` and images in `text`,
/// outside code blocks and code spans.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fenced = false;
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Code spans hold examples, not links.
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        let mut rest = prose.as_str();
        while let Some(i) = rest.find("](") {
            rest = &rest[i + 2..];
            if let Some(end) = rest.find(')') {
                out.push((n + 1, rest[..end].to_string()));
                rest = &rest[end..];
            }
        }
    }
    out
}

/// GitHub's anchor for a heading: lowercase, punctuation dropped, spaces
/// as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect()
}

#[test]
fn every_link_in_the_docs_resolves() {
    let mut broken = Vec::new();
    for doc in user_docs() {
        let text = std::fs::read_to_string(&doc).unwrap();
        for (line, target) in links(&text) {
            if target.starts_with("http://") || target.starts_with("https://") {
                continue;
            }
            let (path, fragment) = match target.split_once('#') {
                Some((p, f)) => (p, Some(f)),
                None => (target.as_str(), None),
            };
            let file = if path.is_empty() {
                doc.clone()
            } else {
                doc.parent().unwrap().join(path)
            };
            let here = format!("{}:{line}: ({target})", doc.display());
            if !file.exists() {
                broken.push(format!("{here}: no such file"));
                continue;
            }
            if let Some(f) = fragment {
                let target_text = std::fs::read_to_string(&file).unwrap_or_default();
                if !anchors(&target_text).iter().any(|a| a == f) {
                    broken.push(format!("{here}: no heading with that anchor"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_readme_is_a_front_door() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines <= 250,
        "README.md has {lines} lines: at most about 250, the rest in docs/"
    );
    for command in ["cargo run --release\n", "cargo test --workspace\n"] {
        assert!(
            readme.contains(command),
            "README.md lacks `{}`",
            command.trim()
        );
    }
    // Key figures: at most 8 rows, each cell of figures a number and a link.
    let section = readme.split("## Key figures").nth(1).unwrap();
    let section = section.split("\n## ").next().unwrap();
    let rows: Vec<&str> = section
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| figure") && !l.starts_with("| ---"))
        .collect();
    assert!(
        !rows.is_empty() && rows.len() <= 8,
        "{} key figures",
        rows.len()
    );
    for row in rows {
        let value = row
            .trim_end_matches('|')
            .rsplit(" | ")
            .next()
            .unwrap()
            .trim();
        assert!(
            value.starts_with('[')
                && value.ends_with(')')
                && value.chars().any(|c| c.is_ascii_digit()),
            "a key figure's cell is a number and a link: {row}"
        );
    }
    // The picture of the dashboard is there.
    let picture = links(&readme)
        .into_iter()
        .find(|(_, t)| t.ends_with(".png") || t.ends_with(".svg"));
    assert!(
        picture.is_some(),
        "README.md has no picture of the dashboard"
    );
}

/// A word of 7 to 40 hexadecimal digits with both a digit and a letter.
fn looks_like_a_commit(word: &str) -> bool {
    (7..=40).contains(&word.len())
        && word
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        && word.chars().any(|c| c.is_ascii_digit())
        && word.chars().any(|c| c.is_ascii_alphabetic())
}

#[test]
fn no_commit_hash_stands_in_a_user_doc() {
    let mut found = Vec::new();
    for doc in user_docs() {
        let text = std::fs::read_to_string(&doc).unwrap();
        for (n, line) in text.lines().enumerate() {
            for word in line.split(|c: char| !c.is_alphanumeric()) {
                if looks_like_a_commit(word) {
                    found.push(format!("{}:{}: {word}", doc.display(), n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "commit hashes in user docs:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_checks_themselves_tell_a_link_an_anchor_and_a_hash() {
    let text = "See [a](docs/a.md#b-c) and `[not](this)`.\n```\n[nor](this)\n```\n![pic](x.png)";
    assert_eq!(
        links(text),
        [(1, "docs/a.md#b-c".to_string()), (5, "x.png".to_string())]
    );
    assert_eq!(
        anchor(" What the agent may touch"),
        "what-the-agent-may-touch"
    );
    assert_eq!(
        anchor("`[notify]`: where, and why?"),
        "notify-where-and-why"
    );
    assert!(looks_like_a_commit("7477d59"));
    assert!(!looks_like_a_commit("1000000") && !looks_like_a_commit("deadline"));
}
