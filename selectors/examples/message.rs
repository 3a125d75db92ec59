//! The `Message` pattern of Python programs (Real Python's socket tutorial,
//! `libserver.py` and `libclient.py`): each connection's state machine is
//! its key's data, and it changes its own registration as it goes, which
//! Python writes `self.selector.modify(self.sock, events, data=self)`.
//!
//! Here a handler splits its lent key into the socket, the message and a
//! [`Registration`] handle ([`LentKey::split`](selectors::LentKey::split)),
//! so the message reads and writes the socket and switches its own interest
//! with no `Rc`, no `RefCell`, and no taking the data out of the key.
//!
//! The protocol is the tutorial's without its JSON: a message is a 2-byte
//! big-endian length and that many bytes of UTF-8; a request is
//! `ACTION VALUE`, the response its answer. Run it with
//! `cargo run --example message`: a server thread and three clients.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use selectors::{
    DefaultSelector, Events, FileObject, RawFd, Registration, Selector, EVENT_READ, EVENT_WRITE,
};

/// The listener and its connections, in one selector.
enum Socket {
    Listener(TcpListener),
    Stream(TcpStream),
}

impl FileObject for Socket {
    fn fileno(&self) -> RawFd {
        match self {
            Socket::Listener(listener) => listener.fileno(),
            Socket::Stream(stream) => stream.fileno(),
        }
    }
}

/// One connection of the server (Python: `libserver.Message`).
#[derive(Default)]
struct ServerMessage {
    recv: Vec<u8>,
    send: Vec<u8>,
}

impl ServerMessage {
    fn process_events(
        &mut self,
        sock: &mut TcpStream,
        reg: &mut Registration<'_>,
        mask: Events,
    ) -> io::Result<()> {
        if mask.is_readable() {
            if !read_some(sock, &mut self.recv)? {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "peer closed"));
            }
            if let Some(request) = unframe(&mut self.recv) {
                self.send = frame(&answer(&request));
                reg.modify_events(EVENT_WRITE)?; // Python: self._set_selector_events_mask("w")
            }
        }
        if mask.is_writable() {
            write_some(sock, &mut self.send)?;
            if self.send.is_empty() {
                reg.unregister(); // Python: self.close()
            }
        }
        Ok(())
    }
}

/// One request of the client (Python: `libclient.Message`).
struct ClientMessage {
    request: String,
    send: Vec<u8>,
    recv: Vec<u8>,
    response: Option<String>,
}

impl ClientMessage {
    fn new(request: &str) -> Self {
        ClientMessage {
            request: request.to_owned(),
            send: frame(request),
            recv: Vec::new(),
            response: None,
        }
    }

    fn process_events(
        &mut self,
        sock: &mut TcpStream,
        reg: &mut Registration<'_>,
        mask: Events,
    ) -> io::Result<()> {
        if mask.is_writable() {
            write_some(sock, &mut self.send)?;
            if self.send.is_empty() {
                reg.modify_events(EVENT_READ)?; // Python: self._set_selector_events_mask("r")
            }
        }
        if mask.is_readable() {
            if !read_some(sock, &mut self.recv)? {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "peer closed"));
            }
            if let Some(response) = unframe(&mut self.recv) {
                self.response = Some(response);
                reg.unregister(); // Python: self.close()
            }
        }
        Ok(())
    }
}

/// What the server answers.
fn answer(request: &str) -> String {
    match request.split_once(' ') {
        Some(("search", "morpheus")) => "Follow the white rabbit.".into(),
        Some(("search", "ring")) => "In the caves beneath the Misty Mountains.".into(),
        Some(("search", value)) => format!("No match for \"{value}\"."),
        _ => format!("Error: invalid request \"{request}\"."),
    }
}

/// The server (Python: `app-server.py`), until it has answered `clients`.
fn serve(listener: TcpListener, clients: usize) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut sel = DefaultSelector::new()?;
    // Python's listener has `data=None`; each connection, its message.
    sel.register(Socket::Listener(listener), EVENT_READ, None)?;
    let mut answered = 0;
    while answered < clients {
        sel.dispatch(None, |sel, key, mask| {
            let (sock, message, mut reg) = key.split();
            match (sock, message) {
                (Socket::Listener(listener), _) => {
                    let (conn, _) = listener.accept()?;
                    conn.set_nonblocking(true)?;
                    sel.register(
                        Socket::Stream(conn),
                        EVENT_READ,
                        Some(ServerMessage::default()),
                    )?;
                }
                (Socket::Stream(sock), Some(message)) => {
                    if let Err(err) = message.process_events(sock, &mut reg, mask) {
                        eprintln!("server: {err}");
                        reg.unregister();
                    }
                    answered += usize::from(reg.is_unregistered());
                }
                (Socket::Stream(_), None) => unreachable!("every connection has a message"),
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// The clients (Python: `app-client.py`, one connection per request), all
/// in one selector; the answers, in the order they came.
fn ask(addr: SocketAddr, requests: &[&str]) -> io::Result<Vec<(String, String)>> {
    let mut sel = DefaultSelector::new()?;
    for request in requests {
        let sock = TcpStream::connect(addr)?;
        sock.set_nonblocking(true)?;
        sel.register(sock, EVENT_READ | EVENT_WRITE, ClientMessage::new(request))?;
    }
    let mut answers = Vec::new();
    // Python: `while True: … if not sel.get_map(): break`.
    while !sel.get_map().is_empty() {
        sel.dispatch(Some(Duration::from_secs(1)), |_, key, mask| {
            let (sock, message, mut reg) = key.split();
            if let Err(err) = message.process_events(sock, &mut reg, mask) {
                eprintln!("client: {err}");
                reg.unregister();
            }
            if let Some(response) = message.response.take() {
                answers.push((message.request.clone(), response));
            }
            Ok(())
        })?;
    }
    Ok(answers)
}

fn main() -> io::Result<()> {
    let requests = ["search morpheus", "search ring", "search cat"];
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = thread::spawn(move || serve(listener, requests.len()));
    for (request, response) in ask(addr, &requests)? {
        println!("{request} -> {response}");
    }
    server.join().expect("the server thread")
}

/// A message: the length of `body` (2 bytes, big-endian), then `body`.
fn frame(body: &str) -> Vec<u8> {
    let len = u16::try_from(body.len()).expect("a short message");
    [&len.to_be_bytes()[..], body.as_bytes()].concat()
}

/// The first whole message at the start of `buf`, taken out of it.
fn unframe(buf: &mut Vec<u8>) -> Option<String> {
    let len = usize::from(u16::from_be_bytes([*buf.first()?, *buf.get(1)?]));
    let body = buf.get(2..2 + len)?.to_vec();
    buf.drain(..2 + len);
    Some(String::from_utf8_lossy(&body).into_owned())
}

/// One read into `buf`; `false` at the end of the stream. Nothing to read
/// yet is not an error (Python: `except BlockingIOError: pass`).
fn read_some(sock: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<bool> {
    let mut chunk = [0; 4096];
    match sock.read(&mut chunk) {
        Ok(0) => Ok(false),
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(true)
        }
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(true),
        Err(err) => Err(err),
    }
}

/// One write of what `buf` holds; what was written leaves it.
fn write_some(sock: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<()> {
    match sock.write(buf) {
        Ok(n) => {
            buf.drain(..n);
            Ok(())
        }
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Err(err) => Err(err),
    }
}
