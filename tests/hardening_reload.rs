//! `POST /-/reload` as a lever: a web page in the operator's browser posting to it, two
//! reloads that finish out of order, an invalid value that holds a password. Each test failed
//! before its fix.

mod common;

use common::{THREE_APPS, write_config};

/// A proxy URL with a password and a bad port: the reload's answer and the log once repeated
/// the value whole, password included.
#[test]
fn a_password_in_an_invalid_value_is_neither_answered_nor_logged() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), THREE_APPS);
    let mut exporter = common::start(&[&format!("--config.file={}", path.display())]);
    write_config(
        dir.path(),
        &format!("{THREE_APPS}connector:\n  proxy: http://svc:hunter2@proxy.corp.example:99999/\n"),
    );
    let (status, body) = common::request(exporter.address, "POST", "/-/reload");
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("connector.proxy"), "{body}");
    assert!(!body.contains("hunter2"), "{body}");
    let _ = exporter.child.kill();
    let _ = exporter.child.wait();
    let log: Vec<String> = exporter.log.iter().collect();
    assert!(log.iter().any(|l| l.contains("reload failed")), "{log:#?}");
    assert!(!log.iter().any(|l| l.contains("hunter2")), "{log:#?}");
}
