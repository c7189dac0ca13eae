//! The spec's Requirement Index (`spec/draft-mimi-onion.md`, section
//! "Requirement Index") against the repository: its "Checked in" and
//! "Tested in" columns point into the reference implementation, and this
//! test keeps them true.
//!
//! For every row of the table it checks that the id is well formed and
//! defined once in the spec (`**\[ID]**`), that every file listed exists,
//! is a source file ("Checked in") or a test file ("Tested in") and names
//! the id, and that a "-" under "Checked in" is explained below the table.
//! It then scans the Rust sources of `src/`, `tests/`, `crates/*/src` and
//! `crates/*/tests` for citations of the form `XXX-N` with a known prefix
//! and checks that each one is in the index (no stale or unknown ids).
//!
//! Every problem is collected and reported in one failure. The test uses
//! std only, so it also runs without cargo:
//!
//! ```text
//! CARGO_MANIFEST_DIR=crates/mimi-onion-cli rustc --edition 2021 --test \
//!     crates/mimi-onion-cli/tests/requirement_index.rs -o /tmp/reqidx && /tmp/reqidx
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The repository root, from this crate's manifest directory.
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
/// The spec, relative to the root.
const SPEC: &str = "spec/draft-mimi-onion.md";
/// The heading of the index.
const HEADING: &str = "## Requirement Index";
/// The kramdown-rfc attribute line that ends the table.
const TABLE_ATTR: &str = r#"{: #requirements title="Requirement index"}"#;
/// The requirement id prefixes of the spec.
const PREFIXES: [&str; 15] = [
    "OUT", "TOK", "CFG", "HUB", "RSP", "PAD", "ERR", "FAN", "MEM", "STO", "ADM", "DSP", "PRF",
    "KCM", "TRK",
];
/// Folders whose sources enforce rules ("Checked in").
const SOURCE_DIRS: [&str; 1] = ["src"];
/// Fixtures under a source folder: never enforcement.
const FIXTURE_DIRS: [&str; 1] = ["src/test_utils"];
/// Folders of test files ("Tested in"): integration tests, and source
/// files whose unit tests (after `#[cfg(test)]`) cite the id, the way
/// openmls keeps known-answer tests next to the code.
const TEST_DIRS: [&str; 2] = ["tests", "src"];

/// One row of the index.
struct Row {
    /// Line of the row in the spec (1-based).
    line: usize,
    id: String,
    checked: Vec<String>,
    /// "Checked in" is "-": no code path, explained below the table.
    no_code_path: bool,
    tested: Vec<String>,
}

/// The parsed index: its rows and the note below the table.
struct Index {
    rows: Vec<Row>,
    note: String,
}

fn root() -> PathBuf {
    PathBuf::from(ROOT)
}

/// Splits a markdown table row into its trimmed cells.
fn cells(line: &str) -> Vec<String> {
    let inner = line.trim();
    let inner = inner.strip_prefix('|').unwrap_or(inner);
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    inner.split('|').map(|c| c.trim().to_string()).collect()
}

/// The files of a "Checked in" or "Tested in" cell: "-" for none, else
/// backticked paths separated by commas.
fn paths(cell: &str) -> Result<Vec<String>, String> {
    if cell == "-" {
        return Ok(Vec::new());
    }
    if cell.is_empty() {
        return Err("empty cell (write \"-\" for none)".into());
    }
    cell.split(',')
        .map(|part| {
            let part = part.trim();
            match part.strip_prefix('`').and_then(|p| p.strip_suffix('`')) {
                Some(p) if !p.is_empty() && !p.contains(['`', ' ']) => Ok(p.to_string()),
                _ => Err(format!("{part:?} is not a backticked path")),
            }
        })
        .collect()
}

/// Parses the Requirement Index table of the spec. Problems with the
/// table's shape go to `failures`.
fn parse_index(spec: &str, failures: &mut Vec<String>) -> Index {
    let lines: Vec<&str> = spec.lines().collect();
    let mut index = Index {
        rows: Vec::new(),
        note: String::new(),
    };
    let Some(head) = lines.iter().position(|l| l.trim_end() == HEADING) else {
        failures.push(format!("{SPEC}: no {HEADING:?} section"));
        return index;
    };
    let Some(start) = (head + 1..lines.len()).find(|&i| lines[i].starts_with('|')) else {
        failures.push(format!("{SPEC}: no table under {HEADING:?}"));
        return index;
    };
    let header = cells(lines[start]);
    let col = |name: &str| header.iter().position(|c| c == name);
    let (Some(id_col), Some(checked_col), Some(tested_col)) =
        (col("Id"), col("Checked in"), col("Tested in"))
    else {
        failures.push(format!(
            "{SPEC}:{}: the index header {:?} lacks one of the columns \"Id\", \"Checked in\", \"Tested in\"",
            start + 1,
            lines[start]
        ));
        return index;
    };
    let sep_ok = lines.get(start + 1).is_some_and(|l| {
        let c = cells(l);
        c.len() == header.len()
            && c.iter()
                .all(|c| !c.is_empty() && c.chars().all(|ch| ch == '-' || ch == ':'))
    });
    if !sep_ok {
        failures.push(format!(
            "{SPEC}:{}: the index header is not followed by a separator row of {} columns",
            start + 2,
            header.len()
        ));
    }
    let mut i = start + 2;
    while i < lines.len() && lines[i].starts_with('|') {
        let line = i + 1;
        let c = cells(lines[i]);
        i += 1;
        if c.len() != header.len() {
            failures.push(format!(
                "{SPEC}:{line}: row has {} cells, the header {}",
                c.len(),
                header.len()
            ));
            continue;
        }
        let id = c[id_col].clone();
        let mut column = |name: &str, cell: &str| {
            paths(cell).unwrap_or_else(|e| {
                failures.push(format!("{SPEC}:{line}: {id}: \"{name}\": {e}"));
                Vec::new()
            })
        };
        let checked = column("Checked in", &c[checked_col]);
        let tested = column("Tested in", &c[tested_col]);
        index.rows.push(Row {
            line,
            id,
            checked,
            no_code_path: c[checked_col] == "-",
            tested,
        });
    }
    if lines.get(i).map(|l| l.trim_end()) != Some(TABLE_ATTR) {
        failures.push(format!(
            "{SPEC}:{}: the index table must end with {TABLE_ATTR:?}",
            i + 1
        ));
    }
    // The note below the table: up to the next heading.
    let note: Vec<&str> = lines
        .iter()
        .skip(i + 1)
        .take_while(|l| !l.starts_with('#'))
        .copied()
        .collect();
    index.note = note.join("\n");
    index
}

/// True if `id` is `PREFIX-N` with a known prefix and N a number from 1
/// without leading zeros.
fn well_formed(id: &str) -> bool {
    let Some((prefix, n)) = id.split_once('-') else {
        return false;
    };
    PREFIXES.contains(&prefix)
        && !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit())
        && !n.starts_with('0')
}

/// Every citation `PREFIX-N` of a known prefix in `text`, with its line:
/// not preceded by a letter, digit or `_`, not followed by a digit (so
/// "XXX-10" is not a citation of "XXX-1") or a letter.
fn citations(text: &str) -> Vec<(String, usize)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\n' {
            line += 1;
            i += 1;
            continue;
        }
        let boundary_before =
            i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if boundary_before {
            if let Some(prefix) = PREFIXES.iter().find(|p| {
                bytes[i..].starts_with(p.as_bytes()) && bytes.get(i + p.len()) == Some(&b'-')
            }) {
                let digits_start = i + prefix.len() + 1;
                let mut j = digits_start;
                while j < bytes.len() && bytes[j].is_ascii_digit() {
                    j += 1;
                }
                let boundary_after =
                    j == bytes.len() || !(bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_');
                if j > digits_start && boundary_after {
                    out.push((text[i..j].to_string(), line));
                }
                i = j.max(i + 1);
                continue;
            }
        }
        i += 1;
    }
    out
}

/// True if `text` cites `id` (see [`citations`] for the boundaries).
fn cites(text: &str, id: &str) -> bool {
    citations(text).iter().any(|(c, _)| c == id)
}

/// The `.rs` files under `dir`, recursively, sorted.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The folders scanned for citations, relative to the root: `src`,
/// `tests`, and `crates/*/src`, `crates/*/tests`.
fn scanned_dirs() -> Vec<String> {
    let mut dirs = vec!["src".to_string(), "tests".to_string()];
    if let Ok(entries) = fs::read_dir(root().join("crates")) {
        let mut crates: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        crates.sort();
        for c in crates {
            dirs.push(format!("crates/{c}/src"));
            dirs.push(format!("crates/{c}/tests"));
        }
    }
    dirs
}

/// `path` relative to the root, with forward slashes.
fn relative(path: &Path) -> String {
    let root = root();
    path.strip_prefix(&root)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// True if `path` (relative) lies under one of `dirs` or under
/// `crates/<name>/<dir>` for one of them.
fn under(path: &str, dirs: &[&str]) -> bool {
    let in_dir = |p: &str| dirs.iter().any(|d| p.starts_with(&format!("{d}/")));
    if in_dir(path) {
        return true;
    }
    path.strip_prefix("crates/")
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(_, inner)| in_dir(inner))
}

#[test]
fn requirement_index_matches_the_repository() {
    let root = root();
    let spec_path = root.join(SPEC);
    let spec = fs::read_to_string(&spec_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", spec_path.display()));
    let mut failures = Vec::new();
    let index = parse_index(&spec, &mut failures);
    if index.rows.is_empty() {
        failures.push(format!("{SPEC}: the Requirement Index has no rows"));
    }

    // Ids defined in the spec: `**\[ID]**`.
    let mut defined: BTreeMap<String, usize> = BTreeMap::new();
    for text in spec.lines() {
        let mut rest = text;
        while let Some(at) = rest.find("**\\[") {
            rest = &rest[at + 4..];
            if let Some(end) = rest.find("]**") {
                *defined.entry(rest[..end].to_string()).or_default() += 1;
                rest = &rest[end..];
            }
        }
    }
    for (id, n) in &defined {
        if *n > 1 {
            failures.push(format!("{SPEC}: {id} is defined {n} times"));
        }
    }

    let mut files: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut read = |path: &str| -> Option<String> {
        files
            .entry(path.to_string())
            .or_insert_with(|| {
                fs::read(root.join(path))
                    .ok()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
            })
            .clone()
    };

    let mut indexed = BTreeSet::new();
    for row in &index.rows {
        let at = format!("{SPEC}:{}: {}", row.line, row.id);
        if !well_formed(&row.id) {
            failures.push(format!(
                "{at}: not a well-formed id (one of {PREFIXES:?}, a dash, a number from 1)"
            ));
        }
        if !indexed.insert(row.id.clone()) {
            failures.push(format!("{at}: listed twice"));
        }
        if !defined.contains_key(&row.id) {
            failures.push(format!(
                "{at}: not defined in the spec as **\\[{}]**",
                row.id
            ));
        }
        if row.no_code_path && !cites(&index.note, &row.id) {
            failures.push(format!(
                "{at}: \"-\" under \"Checked in\" but the note below the table does not say why"
            ));
        }
        for (column, list, dirs) in [
            ("Checked in", &row.checked, &SOURCE_DIRS[..]),
            ("Tested in", &row.tested, &TEST_DIRS[..]),
        ] {
            for path in list {
                let what = format!("{at}: \"{column}\" file `{path}`");
                if path.starts_with('/') || path.split('/').any(|c| c == ".." || c == ".") {
                    failures.push(format!("{what}: not a repository-relative path"));
                    continue;
                }
                if !under(path, dirs) {
                    failures.push(format!("{what}: not under {dirs:?} (or crates/*/ of them)"));
                }
                if column == "Checked in" && under(path, &FIXTURE_DIRS) {
                    failures.push(format!("{what}: a test fixture, not enforcement"));
                }
                match read(path) {
                    None => failures.push(format!("{what}: does not exist")),
                    Some(text) => {
                        // In a source file, only its unit tests count as a
                        // test; a test fixture (`src/test_utils`) counts whole.
                        let fixture = under(path, &FIXTURE_DIRS);
                        let tests = match (column, under(path, &SOURCE_DIRS) && !fixture) {
                            ("Tested in", true) => {
                                text.find("#[cfg(test)]").map_or("", |at| &text[at..])
                            }
                            _ => text.as_str(),
                        };
                        if !cites(tests, &row.id) {
                            let place = if tests.len() < text.len() {
                                "its unit tests do not mention"
                            } else {
                                "does not mention"
                            };
                            failures.push(format!("{what}: {place} {}", row.id));
                        }
                    }
                }
            }
        }
    }
    for id in defined.keys() {
        if !indexed.contains(id) {
            failures.push(format!(
                "{SPEC}: {id} is defined in the spec but missing from the Requirement Index"
            ));
        }
    }

    // Every citation in the code and the tests names an indexed id.
    for dir in scanned_dirs() {
        let mut found = Vec::new();
        rust_files(&root.join(&dir), &mut found);
        for file in found {
            let Ok(bytes) = fs::read(&file) else { continue };
            let text = String::from_utf8_lossy(&bytes);
            for (id, line) in citations(&text) {
                if !indexed.contains(&id) {
                    failures.push(format!(
                        "{}:{line}: cites {id}, which is not in the Requirement Index",
                        relative(&file)
                    ));
                }
            }
        }
    }

    assert!(
        failures.is_empty(),
        "{} problem(s) with the Requirement Index of {SPEC}:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

#[test]
fn citation_boundaries() {
    // The ids are written with "~" and built at run time, so that the scan
    // of this file finds no citation: renumbering the spec cannot break
    // this test.
    let ids = |s: &str| s.replace('~', "-");
    let text = ids("HUB~10, (HUB~1) TOK~1..TOK~3 XHUB~2 SHA-256 MEM~4a HUB~05\nFAN~6.");
    let found = citations(&text);
    let expected = [
        ("HUB~10", 1),
        ("HUB~1", 1),
        ("TOK~1", 1),
        ("TOK~3", 1),
        ("HUB~05", 1),
        ("FAN~6", 2),
    ];
    assert_eq!(found.len(), expected.len(), "{found:?}");
    for ((id, line), (want, want_line)) in found.iter().zip(expected) {
        assert_eq!((id.clone(), *line), (ids(want), want_line), "{found:?}");
    }
    assert!(cites(&ids("(HUB~1)"), &ids("HUB~1")));
    assert!(!cites(&ids("HUB~10"), &ids("HUB~1")));
    assert!(well_formed(&ids("HUB~12")));
    assert!(!well_formed(&ids("HUB~05")) && !well_formed(&ids("HUB~0")));
    assert!(!well_formed(&ids("XYZ~1")) && !well_formed("HUB"));
    assert_eq!(paths("-"), Ok(vec![]));
    assert_eq!(
        paths("`src/hub.rs`, `tests/envelope.rs`"),
        Ok(vec![
            "src/hub.rs".to_string(),
            "tests/envelope.rs".to_string()
        ])
    );
    assert!(paths("src/hub.rs").is_err());
}
