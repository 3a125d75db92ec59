//! The callbacks example (Python's documentation example, ported): clients
//! on 127.0.0.1 get their bytes back exactly, large writes included (the
//! server keeps what it could not send), and each hang-up ends its
//! connection.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::Duration;

use super::{example, TIMEOUT};

/// The running example, killed when the test ends (passed or failed), with
/// its output lines. A thread reads them as they come: the server prints a
/// line per read, and must never block on a full pipe.
struct Server(Child, Receiver<String>);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Server {
    fn start() -> (Server, SocketAddr) {
        let mut child = Command::new(example("callbacks"))
            .arg("127.0.0.1:0")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the callbacks example");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (lines, received) = mpsc::channel();
        thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { break };
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server(child, received);
        let line = server.line();
        let addr = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first line: {line:?}"))
            .parse()
            .expect("address");
        (server, addr)
    }

    fn line(&mut self) -> String {
        self.1
            .recv_timeout(TIMEOUT)
            .expect("a line from the server")
    }
}

/// `len` pseudo-random bytes from `seed`.
fn stream(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Sends `len` bytes while reading the echo (from `read_after` on), then
/// half-closes: the echo must be exact and end with end-of-file.
fn echo(addr: SocketAddr, seed: u64, len: usize, read_after: Duration) {
    let conn = TcpStream::connect(addr).expect("connect");
    conn.set_read_timeout(Some(TIMEOUT)).unwrap();
    conn.set_write_timeout(Some(TIMEOUT)).unwrap();
    let sent = stream(seed, len);
    let mut writer = conn.try_clone().unwrap();
    let expected = sent.clone();
    let sending = thread::spawn(move || {
        for chunk in sent.chunks(7919) {
            writer.write_all(chunk).expect("write");
        }
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut echoed = Vec::with_capacity(len);
    thread::sleep(read_after);
    (&conn).read_to_end(&mut echoed).expect("read the echo");
    sending.join().unwrap();
    assert!(
        echoed == expected,
        "client {seed}: {} of {len} bytes, or different",
        echoed.len()
    );
}

#[test]
fn every_client_gets_its_bytes_back_and_hang_ups_close() {
    let (mut server, addr) = Server::start();
    // Small messages and multi-megabyte ones, at once; the last client
    // starts reading late, so the kernel buffers fill up and the server's
    // sends fall short: it must keep the rest and wait to be writable.
    let sizes = [1, 10, 1000, 65_537, 4 << 20, 8 << 20];
    thread::scope(|s| {
        for (seed, &len) in sizes.iter().enumerate() {
            let late = if seed == sizes.len() - 1 { 500 } else { 0 };
            s.spawn(move || echo(addr, seed as u64, len, Duration::from_millis(late)));
        }
    });
    // A read callback unregisters (and so closes) its connection when the
    // client hangs up: the server said so once per client.
    let mut accepted = 0;
    let mut closed = 0;
    while closed < sizes.len() {
        let line = server.line();
        if line.starts_with("accepted fd ") {
            accepted += 1;
        } else if line.starts_with("closing fd ") {
            closed += 1;
        } else {
            assert!(line.starts_with("echoing "), "unexpected line {line:?}");
        }
    }
    assert_eq!(accepted, sizes.len());
    // The server is still serving.
    echo(addr, 99, 5000, Duration::ZERO);
}
