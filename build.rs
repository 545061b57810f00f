//! Embeds every `probes/*.toml` into the binary, so adding a suite file needs no Rust change.

use std::{env, fs, path::PathBuf};

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join("probes");
    println!("cargo:rerun-if-changed=probes");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("probes/ exists")
        .map(|e| e.expect("readable probes/ entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut out = String::from("&[\n");
    for path in &files {
        let name = path.file_name().expect("file name").to_string_lossy();
        out.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            path.display().to_string()
        ));
    }
    out.push_str("]\n");
    let dest = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("embedded_probes.rs");
    fs::write(dest, out).expect("write embedded_probes.rs");
}
