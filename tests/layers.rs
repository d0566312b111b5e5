//! The arrows that must never exist between the crate's modules (docs/architecture.md): the
//! envelope and its keys know nothing of HTTP, configuration, sessions or storage; the registry
//! knows nothing of HTTP, cookies or cryptography; the session handle knows nothing of the tower
//! service or the axum extractor above it. Read from the source, so that a new `use` that breaks
//! a layer fails here, in the package's own tests too, and not only in a review.

use std::path::{Path, PathBuf};

/// A group of files, the crate modules they may import (`crate::NAME`), and the external crates
/// they must not name.
struct Layer {
    name: &'static str,
    files: &'static [&'static str],
    may_import: &'static [&'static str],
    must_not_name: &'static [&'static str],
}

const HTTP: &[&str] = &[
    "http::",
    "hyper::",
    "tower_service::",
    "tower_layer::",
    "axum::",
];

const LAYERS: &[Layer] = &[
    Layer {
        name: "the envelope (keys, randomness, ids, XAES, seal, claims and their encoding)",
        files: &[
            "key.rs",
            "random.rs",
            "id.rs",
            "xaes.rs",
            "seal.rs",
            "seal/",
            "wire.rs",
            "data.rs",
            "claims/",
            "envelope_bytes.rs",
            "clear_bytes.rs",
        ],
        may_import: &[
            "key",
            "random",
            "id",
            "xaes",
            "seal",
            "wire",
            "data",
            "claims",
            "envelope_bytes",
            "clear_bytes",
        ],
        must_not_name: HTTP,
    },
    Layer {
        name: "the registry",
        files: &["registry/"],
        may_import: &["registry", "id", "random", "telemetry"],
        must_not_name: HTTP,
    },
    Layer {
        name: "telemetry (metric handles and label sets: below everything that records)",
        files: &["telemetry/"],
        may_import: &["telemetry", "seal"],
        must_not_name: HTTP,
    },
    Layer {
        name: "the session handle",
        files: &["session/"],
        may_import: &[
            "session",
            "claims",
            "config",
            "cookie_buf",
            "envelope_bytes",
            "clear_bytes",
            "id",
            "opened_cache",
            "random",
            "registry",
            "seal",
            "wire",
            "key",
            "data",
            "cookie_header",
            "client_ip",
            "telemetry",
        ],
        must_not_name: &["axum::"],
    },
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `crate::NAME` in `text`: the first path segment after `crate::`.
fn crate_imports(text: &str) -> Vec<&str> {
    text.match_indices("crate::")
        .filter(|(at, _)| {
            // Not `my_crate::` nor `x::crate::`: `crate` must start a path.
            !text[..*at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':')
        })
        .map(|(at, _)| {
            let rest = &text[at + "crate::".len()..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect()
}

#[test]
fn no_module_imports_across_a_layer_it_must_not_know() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    let mut checked = 0;
    for path in &files {
        let relative = path
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(path).unwrap();
        for layer in LAYERS {
            if !layer.files.iter().any(|f| {
                if f.ends_with('/') {
                    relative.starts_with(f)
                } else {
                    relative == *f
                }
            }) {
                continue;
            }
            checked += 1;
            for module in crate_imports(&text) {
                // `crate::Name` (a re-export) is caught by modgraph; here only modules count.
                if module.starts_with(|c: char| c.is_ascii_lowercase())
                    && !layer.may_import.contains(&module)
                {
                    wrong.push(format!(
                        "{relative} ({}) imports crate::{module}",
                        layer.name
                    ));
                }
            }
            for name in layer.must_not_name {
                if text.contains(name) {
                    wrong.push(format!("{relative} ({}) names {name}", layer.name));
                }
            }
        }
    }
    assert!(
        checked > 20,
        "only {checked} files checked: has src/ moved?"
    );
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_scan_finds_what_it_must() {
    assert_eq!(
        crate_imports("use crate::seal::Sealer; x::crate::y; my_crate::z; crate::registry"),
        ["seal", "registry"]
    );
}
