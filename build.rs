//! Records the source revision for `appproxy_exporter_build_info`: `git rev-parse` when built
//! from a checkout, else `APPPROXY_REVISION` from the environment, else "unknown".

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
    println!("cargo:rerun-if-env-changed=APPPROXY_REVISION");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
}
