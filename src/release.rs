//! Which build this is: the crate's version and the revision it was built from (build.rs).

/// The crate's version (Cargo.toml).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The revision the binary was built from (see build.rs).
pub const REVISION: &str = env!("APPPROXY_REVISION");
