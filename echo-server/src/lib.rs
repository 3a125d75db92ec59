//! A TCP echo server on [`selectors`]: every byte a client sends comes back
//! to it, in order. The binary (`echo_server`, `src/main.rs`) is the command
//! line around this library; the benchmark's echo servers on raw epoll and
//! mio share its buffering rules.
//!
//! - [`server`]: one server, one thread, one selector. What it guarantees
//!   (no byte lost, bounded memory, no `accept` error fatal) is said there.
//! - [`listen`]: the listening sockets, one or several on the same address
//!   (`SO_REUSEPORT`), among which the kernel spreads new connections.

pub mod listen;
pub mod server;
