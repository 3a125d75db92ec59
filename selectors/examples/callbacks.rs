//! The echo server of Python's `selectors` documentation, ported line for
//! line: each key's data is the function that handles it, and `dispatch`
//! lends each callback the selector and its own key.
//!
//! `cargo run --example callbacks [-- ADDR]` (default `localhost:1234`).
//! Where Python hopes `send` won't block, a connection keeps what it could
//! not send and waits to be writable, so every byte comes back. Portable:
//! a socket's number is its `FileObject::fileno` (a `RawSocket` on Windows).
use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};

use selectors::{
    DefaultSelector, Events, FileObject, LentKey, RawFd, Selector, EVENT_READ, EVENT_WRITE,
};

type Sel = DefaultSelector<Sock, Callback>;
type Key = LentKey<Sock, Callback>;
#[derive(Clone, Copy)]
struct Callback(fn(&mut Sel, &mut Key, Events) -> io::Result<()>);

enum Sock {
    Listener(TcpListener),
    Conn(TcpStream, Vec<u8>), // with the bytes not sent yet
}

impl FileObject for Sock {
    fn fileno(&self) -> RawFd {
        match self {
            Sock::Listener(sock) => sock.fileno(),
            Sock::Conn(conn, _) => conn.fileno(),
        }
    }
}

fn accept(sel: &mut Sel, key: &mut Key, _mask: Events) -> io::Result<()> {
    let Sock::Listener(sock) = key.fileobj_mut() else {
        unreachable!()
    };
    let (conn, addr) = sock.accept()?; // should be ready
    println!("accepted fd {} from {addr}", conn.fileno());
    conn.set_nonblocking(true)?;
    sel.register(Sock::Conn(conn, Vec::new()), EVENT_READ, Callback(read))?;
    Ok(())
}

fn read(_sel: &mut Sel, key: &mut Key, _mask: Events) -> io::Result<()> {
    let fd = key.fd();
    let Sock::Conn(conn, unsent) = key.fileobj_mut() else {
        unreachable!()
    };
    let mut data = [0; 1000];
    match conn.read(&mut data) {
        Ok(0) | Err(_) => {
            println!("closing fd {fd}");
            key.unregister(); // and the socket is closed with its key
            Ok(())
        }
        Ok(n) => {
            println!("echoing {n} bytes to fd {fd}");
            unsent.extend_from_slice(&data[..n]);
            send(_sel, key, EVENT_WRITE)
        }
    }
}

fn send(_sel: &mut Sel, key: &mut Key, _mask: Events) -> io::Result<()> {
    let Sock::Conn(conn, unsent) = key.fileobj_mut() else {
        unreachable!()
    };
    match conn.write(unsent) {
        Ok(n) => drop(unsent.drain(..n)),
        Err(err) if err.kind() == ErrorKind::WouldBlock => {}
        Err(_) => unsent.clear(), // the peer is gone: reading will say so
    }
    if unsent.is_empty() {
        key.modify(EVENT_READ, Callback(read))?;
    } else {
        key.modify(EVENT_WRITE, Callback(send))?;
    }
    Ok(())
}

fn main() -> io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or("localhost:1234".into());
    let mut sel = Sel::new()?;
    let sock = TcpListener::bind(addr)?; // bound and listening
    sock.set_nonblocking(true)?;
    println!("listening on {}", sock.local_addr()?);
    sel.register(Sock::Listener(sock), EVENT_READ, Callback(accept))?;
    loop {
        sel.dispatch(None, |sel, key, mask| {
            let callback = *key.data();
            (callback.0)(sel, key, mask)
        })?;
    }
}
