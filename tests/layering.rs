//! Enforces the crate layering of design §1 from `cargo metadata`.
//!
//! ```text
//!   8 shoal            7 shoal-server     6 shoal-sql        5 shoal-kvclient
//!   4 shoal-kvserver   3 shoal-raft, shoal-rpc               2 shoal-storage
//!   1 shoal-api        0 shoal-keys, shoal-hlc
//! ```
//!
//! A crate may depend only on crates of a strictly lower layer; `shoal-testutil` (in-process
//! clusters) may only be a dev-dependency. Each heavy third-party dependency is used directly
//! by exactly one crate. A new crate must be added to [`LAYERS`] before it can build.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value;

/// Each workspace crate and its layer; dependencies must point to lower numbers.
const LAYERS: &[(&str, u32)] = &[
    ("shoal-keys", 0),
    ("shoal-hlc", 0),
    ("shoal-api", 1),
    ("shoal-storage", 2),
    ("shoal-raft", 3),
    ("shoal-rpc", 3),
    ("shoal-kvserver", 4),
    ("shoal-kvclient", 5),
    ("shoal-sql", 6),
    ("shoal-server", 7),
    ("shoal", 8),
    ("shoal-jepsen", 9),
];

/// Test-only crates: they may depend on anything and be only dev-dependencies.
const TEST_ONLY: &[&str] = &["shoal-testutil", "shoal-tests"];

/// Heavy third-party dependencies and the one crate allowed to use each.
const HEAVY: &[(&str, &str)] = &[
    ("rocksdb", "shoal-storage"),
    ("librocksdb-sys", "shoal-storage"),
    ("openraft", "shoal-raft"),
    ("sqlparser", "shoal-sql"),
    ("axum", "shoal-server"),
    ("pgwire", "shoal-server"),
];

/// Returns every layering violation in `cargo metadata` output.
fn violations(metadata: &Value) -> Vec<String> {
    let layers: BTreeMap<&str, u32> = LAYERS.iter().copied().collect();
    let members: Vec<&str> = metadata["workspace_members"]
        .as_array()
        .expect("workspace_members")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut out = Vec::new();
    for package in metadata["packages"].as_array().expect("packages") {
        let id = package["id"].as_str().unwrap_or_default();
        if !members.contains(&id) {
            continue;
        }
        let name = package["name"].as_str().unwrap_or_default();
        let test_only = TEST_ONLY.contains(&name);
        let layer = layers.get(name).copied();
        if layer.is_none() && !test_only {
            out.push(format!("{name} is not in the layer table of tests/layering.rs"));
            continue;
        }
        for dep in package["dependencies"].as_array().into_iter().flatten() {
            let dep_name = dep["name"].as_str().unwrap_or_default();
            let dev = dep["kind"].as_str() == Some("dev");
            if let Some((_, owner)) = HEAVY.iter().find(|(heavy, _)| *heavy == dep_name)
                && *owner != name
            {
                out.push(format!("{name} uses {dep_name}, which only {owner} may use"));
            }
            if TEST_ONLY.contains(&dep_name) {
                if !dev {
                    out.push(format!(
                        "{name} depends on the test-only crate {dep_name} outside dev-dependencies"
                    ));
                }
                continue;
            }
            if test_only {
                continue;
            }
            if let (Some(layer), Some(dep_layer)) = (layer, layers.get(dep_name)) {
                if *dep_layer >= layer {
                    out.push(format!(
                        "{name} (layer {layer}) depends on {dep_name} (layer {dep_layer}): dependencies must point down"
                    ));
                }
            } else if dep_name.starts_with("shoal") && !layers.contains_key(dep_name) {
                out.push(format!("{name} depends on {dep_name}, which is not in the layer table"));
            }
        }
    }
    out
}

#[test]
fn workspace_respects_layering() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value =
        serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    let members = metadata["workspace_members"].as_array().map_or(0, Vec::len);
    assert!(members >= 4, "expected the workspace crates, found {members}");
    let found = violations(&metadata);
    assert!(found.is_empty(), "layering violations:\n{}", found.join("\n"));
}

#[test]
fn checker_reports_upward_edges_and_misplaced_heavy_dependencies() {
    let package = |name: &str, deps: &[(&str, &str)]| {
        serde_json::json!({
            "id": name,
            "name": name,
            "dependencies": deps.iter().map(|(d, kind)| serde_json::json!({
                "name": d, "kind": if kind.is_empty() { Value::Null } else { Value::from(*kind) }
            })).collect::<Vec<_>>(),
        })
    };
    let metadata = serde_json::json!({
        "workspace_members": ["shoal-keys", "shoal-storage", "shoal-hlc", "shoal-sql", "shoal-new"],
        "packages": [
            package("shoal-keys", &[("shoal-storage", "")]),
            package("shoal-hlc", &[("shoal-keys", "")]),
            package("shoal-storage", &[("shoal-keys", ""), ("rocksdb", ""), ("shoal-testutil", "dev")]),
            package("shoal-sql", &[("rocksdb", ""), ("shoal-testutil", "")]),
            package("shoal-new", &[]),
        ],
    });
    let found = violations(&metadata);
    let expect = [
        "shoal-keys (layer 0) depends on shoal-storage (layer 2)",
        "shoal-hlc (layer 0) depends on shoal-keys (layer 0)",
        "shoal-sql uses rocksdb, which only shoal-storage may use",
        "shoal-sql depends on the test-only crate shoal-testutil outside dev-dependencies",
        "shoal-new is not in the layer table",
    ];
    for e in expect {
        assert!(found.iter().any(|f| f.contains(e)), "missing {e:?} in {found:#?}");
    }
    assert_eq!(found.len(), expect.len(), "{found:#?}");
}
