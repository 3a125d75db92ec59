//! The `Message` example (Python's per-connection state machine that
//! changes its own registration), run as the real program: every client
//! gets the answer to its request, and both sides end every connection
//! (the program returns only once they have).

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{example, TIMEOUT};

#[test]
fn every_request_gets_its_answer() {
    let mut child = Command::new(example("message"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the message example");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            panic!("the example did not finish: a connection was never ended");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success() && stderr.is_empty(), "{status}: {stderr}");
    let mut lines: Vec<&str> = stdout.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            "search cat -> No match for \"cat\".",
            "search morpheus -> Follow the white rabbit.",
            "search ring -> In the caves beneath the Misty Mountains.",
        ]
    );
}
