//! Records the source revision for `appproxy_exporter_build_info`: `APPPROXY_REVISION` from the
//! environment, else `git rev-parse` when built from a checkout, else "unknown". Also records
//! the compiler's version for `--version`.

use std::process::Command;

fn main() {
    let revision = std::env::var("APPPROXY_REVISION").ok().or_else(|| {
        let output = Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
    });
    println!(
        "cargo:rustc-env=APPPROXY_REVISION={}",
        revision.unwrap_or_else(|| "unknown".into())
    );
    // Cargo tells build scripts which rustc it uses.
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    println!(
        "cargo:rustc-env=APPPROXY_RUSTC_VERSION={}",
        rustc_version.unwrap_or_else(|| "unknown".into())
    );
    println!("cargo:rerun-if-env-changed=APPPROXY_REVISION");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
}
