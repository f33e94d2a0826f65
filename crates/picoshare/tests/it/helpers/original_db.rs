//! The original's database: the fixture written by the Go server, copied for
//! a test to open.

use std::path::{Path, PathBuf};

/// Copies the Go server's fixture database into `into` (never open the
/// original in place: even a read-only open creates -wal/-shm files) and
/// returns its path and the fixture's manifest. The fixture is the
/// repository's own (`crates/picoshare/tests/fixtures/picoshare-v15`), or the
/// `picoshare-v15` folder under `PICOSHARE_FIXTURES` when that is set.
pub fn copy_fixture(into: &Path) -> (PathBuf, serde_json::Value) {
    let src = match std::env::var_os("PICOSHARE_FIXTURES") {
        Some(dir) => PathBuf::from(dir).join("picoshare-v15"),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/picoshare-v15"),
    };
    let manifest = serde_json::from_str::<serde_json::Value>(
        &std::fs::read_to_string(src.join("manifest.json"))
            .unwrap_or_else(|e| panic!("cannot read {}/manifest.json: {e}", src.display())),
    )
    .expect("manifest.json");
    let db = into.join("store.db");
    std::fs::copy(src.join("store.db"), &db).expect("copy store.db");
    let mut perms = std::fs::metadata(&db).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&db, perms).unwrap();
    (db, manifest)
}
