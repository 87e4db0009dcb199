//! The bounded read: what it refuses, and that a read slower than its deadline costs its
//! caller the deadline and no more.

use super::*;

#[test]
fn only_regular_files_within_the_limit_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    std::fs::write(&small, "ok").unwrap();
    assert_eq!(read_bounded(&small, 10).unwrap(), b"ok");
    let big = dir.path().join("big");
    std::fs::write(&big, vec![b'x'; 11]).unwrap();
    let error = read_bounded(&big, 10).unwrap_err().to_string();
    assert!(error.contains("larger than"), "{error}");
    let error = read_bounded(dir.path(), 10).unwrap_err().to_string();
    assert!(error.contains("not a regular file"), "{error}");
    #[cfg(unix)]
    {
        let error = read_bounded(Path::new("/dev/zero"), 10)
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a regular file"), "{error}");
    }
}

/// A FIFO put in the file's place between the look at it and the open blocked the open
/// until a writer came, that is for ever: every request then waited on the web config.
/// The file opened must be the file checked.
#[cfg(unix)]
#[test]
fn a_fifo_swapped_in_between_the_look_and_the_open_is_refused_not_waited_on() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.yml");
    std::fs::write(&path, "a: 1\n").unwrap();
    const SWAPS: usize = 2_000;
    let fifos: Vec<_> = (0..SWAPS)
        .map(|i| dir.path().join(format!("f{i}")))
        .collect();
    let made = std::process::Command::new("mkfifo")
        .args(&fifos)
        .status()
        .unwrap();
    assert!(made.success());
    let files: Vec<_> = (0..SWAPS)
        .map(|i| dir.path().join(format!("r{i}")))
        .collect();
    for file in &files {
        std::fs::write(file, "a: 1\n").unwrap();
    }
    let done = Arc::new(AtomicBool::new(false));
    let flipper = {
        let (path, done) = (path.clone(), Arc::clone(&done));
        std::thread::spawn(move || {
            for (file, fifo) in files.iter().zip(&fifos) {
                std::fs::rename(fifo, &path).unwrap();
                std::fs::rename(file, &path).unwrap();
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let reads = Arc::new(AtomicUsize::new(0));
    {
        let (path, done, reads) = (path.clone(), Arc::clone(&done), Arc::clone(&reads));
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                let _ = read_bounded(&path, 1024);
                reads.fetch_add(1, Ordering::SeqCst);
            }
            reads.store(usize::MAX, Ordering::SeqCst);
        });
    }
    let (mut seen, mut since) = (0, Instant::now());
    let hung = loop {
        std::thread::sleep(Duration::from_millis(50));
        let now = reads.load(Ordering::SeqCst);
        if now == usize::MAX {
            break false;
        }
        if now != seen {
            (seen, since) = (now, Instant::now());
        } else if since.elapsed() > Duration::from_secs(3) {
            break true;
        }
    };
    flipper.join().unwrap();
    assert!(!hung, "a read waited on a FIFO after {seen} reads");
}

#[cfg(unix)]
#[test]
fn a_fifo_without_a_writer_and_dev_zero_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("exe.config");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let started = Instant::now();
    let error = read_bounded(&fifo, 1024).unwrap_err();
    assert!(matches!(error, ReadError::NotRegular), "{error}");
    let error = read_bounded(Path::new("/dev/zero"), 1024).unwrap_err();
    assert!(matches!(error, ReadError::NotRegular), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a refusal waited"
    );
}

/// A share that stops answering: the read sleeps past its deadline, as a read blocked in the
/// kernel would (a real one cannot be made without a network file system).
fn slow(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    std::thread::sleep(Duration::from_millis(600));
    read_now(path, limit)
}

#[test]
fn a_read_slower_than_its_deadline_is_given_up_and_not_started_again_while_it_hangs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("TrustSettings.xml");
    std::fs::write(&path, "<x/>").unwrap();
    let deadline = Duration::from_millis(100);
    let started = Instant::now();
    let error = read_within(&path, 1024, deadline, slow).unwrap_err();
    assert!(matches!(error, ReadError::Late { .. }), "{error}");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "waited past the deadline"
    );
    // While the first read hangs, another is refused at once rather than left hanging too.
    let error = read_within(&path, 1024, deadline, slow).unwrap_err();
    assert!(matches!(error, ReadError::StillReading { .. }), "{error}");
    assert!(
        error.to_string().contains("has still not finished"),
        "{error}"
    );
    // Once the hung read ends, the file is read again.
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(
        read_within(&path, 1024, deadline, read_now).unwrap(),
        b"<x/>"
    );
}

#[test]
fn a_read_within_its_deadline_returns_the_bytes_and_its_error_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let error = read_bounded(&missing, 10).unwrap_err();
    assert!(
        matches!(&error, ReadError::Io(e) if e.kind() == io::ErrorKind::NotFound),
        "{error}"
    );
    let late = read_within(&missing, 10, Duration::from_secs(5), slow).unwrap_err();
    assert!(matches!(late, ReadError::Io(_)), "{late}");
}
