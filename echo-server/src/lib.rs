//! A TCP echo server on [`selectors`]: every byte a client sends comes back
//! to it, in order. The binary (`echo_server`, `src/main.rs`) is the command
//! line around this library:
//!
//! ```text
//! cargo run --release -p selectors-echo-server -- [OPTIONS] [ADDR]   # --help lists them
//! ```
//!
//! - [`server`]: one server, one thread, one selector. What it guarantees
//!   (no byte lost, bounded memory, no `accept` error fatal) is said there.
//! - [`buffer`]: its buffering rules (how much is read at once, kept per
//!   connection and kept in all), which the benchmark's echo servers on raw
//!   epoll and on mio share, so that the three do the same work.
//! - [`listen`]: the listening sockets, one or several on the same address
//!   (`SO_REUSEPORT`), among which the kernel spreads new connections.

pub mod buffer;
pub mod listen;
pub mod server;
