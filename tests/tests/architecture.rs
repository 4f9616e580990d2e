//! The layers of `ward-agent` and of the dashboard, held against the code.
//!
//! Each crate's modules are listed below in layers, bottom first. A module
//! may name (`crate::…`, in a `use` line or inline) only modules of a lower
//! layer; modules of one layer do not name each other. So imports run one
//! way and no circle can form. A new module must be given a layer here, and
//! a failure names the file, the line and the import that breaks the rule.
//!
//! docs/architecture.md draws the same table for people.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// `ward-agent`'s library, bottom layer first.
const AGENT: &[(&str, &[&str])] = &[
    (
        "foundations, naming nothing else of the crate",
        &["sync", "procfs", "outbound", "system"],
    ),
    (
        "the store, and the agent's own resources",
        &["store", "budget", "allocator"],
    ),
    (
        "sources: collectors and notifications",
        &["collect", "notify"],
    ),
    ("the incident book", &["incidents"]),
    ("what raises incidents", &["jobs", "detect", "rules"]),
    (
        "the `job run` wrapper, a client of the agent",
        &["job_wrapper"],
    ),
    ("what reads the store for others", &["export", "api"]),
    ("the agent's account of itself", &["status", "telemetry"]),
    ("the config, assembling each part's settings", &["config"]),
    ("the running agent", &["daemon"]),
];

/// The dashboard's library (`ward-tui`), bottom layer first.
const TUI: &[(&str, &[&str])] = &[
    (
        "what the workers and the screen say to each other",
        &["message"],
    ),
    ("the workers that ask agents", &["fetch", "fleet"]),
    ("the views: each one's state, keys and drawing", &["views"]),
    (
        "what the dashboard holds, routing events and data to the views",
        &["app"],
    ),
    ("drawing", &["ui"]),
];

/// A rule broken, as the failure prints it.
#[derive(Debug, PartialEq)]
struct Breach {
    file: String,
    line: usize,
    import: String,
    why: String,
}

/// The layer of `module`, as an index into `layers`.
fn layer_of(layers: &[(&str, &[&str])], module: &str) -> Option<usize> {
    layers.iter().position(|(_, mods)| mods.contains(&module))
}

/// The top-level modules a line of code names through `crate::`.
fn named_modules(line: &str) -> Vec<String> {
    let code = match line.find("//") {
        Some(i) => &line[..i],
        None => line,
    };
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        // `ward_crate::x` is not `crate::x`.
        let before = rest[..i].chars().last();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a, b::c}`: each first name at the group's top level.
            let mut depth = 0;
            let mut item = String::new();
            let mut first = true;
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        first = true;
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 && first {
                    if c.is_alphanumeric() || c == '_' {
                        item.push(c);
                    } else if !item.is_empty() {
                        out.push(std::mem::take(&mut item));
                        first = false;
                    }
                }
            }
            if first && !item.is_empty() {
                out.push(item);
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

/// Checks one file of a crate's library against `layers`. `module` is the
/// top-level module the file belongs to.
fn check_file(
    layers: &[(&str, &[&str])],
    file: &str,
    module: &str,
    text: &str,
    breaches: &mut Vec<Breach>,
) {
    let Some(own) = layer_of(layers, module) else {
        breaches.push(Breach {
            file: file.to_string(),
            line: 0,
            import: module.to_string(),
            why: format!("module `{module}` has no layer: add it to the table in tests/tests/architecture.rs and docs/architecture.md"),
        });
        return;
    };
    for (n, line) in text.lines().enumerate() {
        for named in named_modules(line) {
            if named == module || named == "self" || named == "super" {
                continue;
            }
            let why = match layer_of(layers, &named) {
                None => continue, // a macro or an item of lib.rs
                Some(l) if l < own => continue,
                Some(l) if l == own => format!(
                    "`{module}` and `{named}` are both in layer \"{}\": one must move down, or the shared piece move to a lower layer",
                    layers[own].0
                ),
                Some(l) => format!(
                    "`{module}` (layer \"{}\") imports `{named}` from the layer above it, \"{}\": move the shared piece down, or the importer up",
                    layers[own].0, layers[l].0
                ),
            };
            breaches.push(Breach {
                file: file.to_string(),
                line: n + 1,
                import: format!("crate::{named}"),
                why,
            });
        }
    }
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Checks a crate's library: every file but `lib.rs` and the binary's
/// `main.rs`, which stand above every layer.
fn check_crate(layers: &[(&str, &[&str])], src: &Path) -> Vec<Breach> {
    let mut breaches = Vec::new();
    for path in sources(src) {
        let rel = path.strip_prefix(src).unwrap();
        let first = rel.components().next().unwrap().as_os_str();
        let module = first.to_str().unwrap().trim_end_matches(".rs");
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let file = path.display().to_string();
        check_file(layers, &file, module, &text, &mut breaches);
    }
    breaches
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn report(breaches: &[Breach]) -> String {
    breaches
        .iter()
        .map(|b| format!("{}:{}: {}: {}", b.file, b.line, b.import, b.why))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The modules `lib.rs` declares.
fn declared(lib: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(lib)
        .unwrap()
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("pub mod ")
                .or(l.trim().strip_prefix("mod "))
        })
        .map(|m| m.trim_end_matches(';').to_string())
        .collect()
}

fn tabled(layers: &[(&str, &[&str])]) -> BTreeSet<String> {
    layers
        .iter()
        .flat_map(|(_, mods)| mods.iter().map(|m| m.to_string()))
        .collect()
}

#[test]
fn the_agent_imports_only_downward() {
    let breaches = check_crate(AGENT, &root().join("agent/src"));
    assert!(breaches.is_empty(), "\n{}\n", report(&breaches));
}

#[test]
fn the_dashboard_imports_only_downward() {
    let breaches = check_crate(TUI, &root().join("tui/src"));
    assert!(breaches.is_empty(), "\n{}\n", report(&breaches));
}

#[test]
fn every_module_has_a_layer_and_every_layer_a_module() {
    for (lib, layers) in [("agent/src/lib.rs", AGENT), ("tui/src/lib.rs", TUI)] {
        assert_eq!(
            declared(&root().join(lib)),
            tabled(layers),
            "{lib} against its table"
        );
    }
}

#[test]
fn the_dashboard_reaches_into_the_agent_only_to_start_one() {
    let mut found = Vec::new();
    for path in sources(&root().join("tui/src")) {
        if path.ends_with("main.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.split("//").next().unwrap_or("").contains("ward_agent") {
                found.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "the dashboard talks to agents through ward_shared::client only:\n{}",
        found.join("\n")
    );
}

/// The checker itself: an upward import, an import inside one layer and a
/// module with no layer are each named; a downward one is not.
#[test]
fn the_checker_names_each_kind_of_breach() {
    let layers: &[(&str, &[&str])] = &[
        ("low", &["store"]),
        ("mid", &["collect", "notify"]),
        ("top", &["daemon"]),
    ];
    let mut breaches = Vec::new();
    let text = "use crate::store::Store;\nuse crate::daemon::SharedStore; // upward\n\
                let x = crate::notify::start();\n// use crate::daemon::x; only a comment\n\
                use crate::{store::Kv, daemon};";
    check_file(layers, "collect/mod.rs", "collect", text, &mut breaches);
    check_file(layers, "stray.rs", "stray", "", &mut breaches);
    let named: Vec<(usize, &str)> = breaches
        .iter()
        .map(|b| (b.line, b.import.as_str()))
        .collect();
    assert_eq!(
        named,
        [
            (2, "crate::daemon"),
            (3, "crate::notify"),
            (5, "crate::daemon"),
            (0, "stray")
        ]
    );
    assert!(
        breaches[0].why.contains("from the layer above it"),
        "{}",
        breaches[0].why
    );
    assert!(
        breaches[1].why.contains("both in layer \"mid\""),
        "{}",
        breaches[1].why
    );
    assert!(
        breaches[3].why.contains("has no layer"),
        "{}",
        breaches[3].why
    );
}
