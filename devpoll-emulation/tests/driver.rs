//! The emulated driver's rules, one test each, through the C library's
//! calls as a program on illumos makes them: `open("/dev/poll")`,
//! `write`, `ioctl(DP_POLL)`, `ioctl(DP_ISPOLLED)`.
//!
//! Run by `cargo xtask devpoll`, with the emulation preloaded (it builds
//! these tests with `--cfg selectors_devpoll_emulation`; without the
//! emulation, there is no `/dev/poll` to open on Linux).
//!
//! The tests take turns ([`serial`]): several rely on which descriptor
//! numbers are free.
#![cfg(selectors_devpoll_emulation)]

use std::ffi::c_short;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Held by every test: see the module docs.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

// illumos's <sys/poll.h> and <sys/devpoll.h>.
const POLLIN: c_short = 0x0001;
const POLLOUT: c_short = 0x0004;
const POLLERR: c_short = 0x0008;
const POLLHUP: c_short = 0x0010;
const POLLNVAL: c_short = 0x0020;
const POLLREMOVE: c_short = 0x0800;
const POLLONESHOT: c_short = 0x1000;
const POLLET: c_short = 0x2000;
const DP_POLL: libc::c_ulong = 0xD001;
const DP_ISPOLLED: libc::c_ulong = 0xD002;

/// illumos's `dvpoll_t`.
#[repr(C)]
struct DvPoll {
    dp_fds: *mut libc::pollfd,
    dp_nfds: libc::nfds_t,
    dp_timeout: libc::c_int,
    dp_setp: *mut libc::sigset_t,
}

/// `errno` of the last failure.
fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap()
}

fn entry(fd: RawFd, events: c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// An open `/dev/poll`.
struct DevPoll(OwnedFd);

impl DevPoll {
    fn open() -> DevPoll {
        // SAFETY: a C string; the result is checked.
        let fd = unsafe { libc::open(c"/dev/poll".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        assert!(fd >= 0, "open /dev/poll: errno {}", errno());
        // SAFETY: a fresh descriptor, owned by nothing else.
        DevPoll(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// `write(2)` of `entries`: the count written, or `errno`.
    fn write(&self, entries: &[libc::pollfd]) -> Result<usize, i32> {
        let bytes = std::mem::size_of_val(entries);
        // SAFETY: `entries` is `bytes` readable bytes.
        let n = unsafe { libc::write(self.fd(), entries.as_ptr().cast(), bytes) };
        usize::try_from(n).map_err(|_| errno())
    }

    /// `DP_POLL` into a buffer of `room` entries (each pre-filled with fd
    /// -7), waiting `timeout` ms: the entries filled, or `errno` (with the
    /// buffer as it was left).
    fn poll(
        &self,
        room: usize,
        timeout: i32,
    ) -> Result<Vec<libc::pollfd>, (i32, Vec<libc::pollfd>)> {
        let mut buf = vec![entry(-7, 0); room.max(1)];
        let mut dvpoll = DvPoll {
            dp_fds: buf.as_mut_ptr(),
            dp_nfds: room as libc::nfds_t,
            dp_timeout: timeout,
            dp_setp: std::ptr::null_mut(),
        };
        // SAFETY: `dvpoll` is a live `dvpoll_t` whose buffer has `room`
        // entries.
        let n = unsafe { libc::ioctl(self.fd(), DP_POLL, &mut dvpoll) };
        match usize::try_from(n) {
            Ok(n) => {
                assert!(buf[n..].iter().all(|e| e.fd == -7), "wrote past {n}");
                buf.truncate(n);
                Ok(buf)
            }
            Err(_) => Err((errno(), buf)),
        }
    }

    /// `(fd, revents)` of a `DP_POLL` with room for 64 and no wait.
    fn ready(&self) -> Vec<(RawFd, c_short)> {
        let mut ready: Vec<_> = self
            .poll(64, 0)
            .expect("DP_POLL")
            .iter()
            .map(|e| (e.fd, e.revents))
            .collect();
        ready.sort_unstable();
        ready
    }

    /// `DP_ISPOLLED` of `fd`: its cached events, if cached with a file.
    fn cached(&self, fd: RawFd) -> Option<c_short> {
        let mut query = entry(fd, 0x7777);
        // SAFETY: a live `pollfd`, which the driver reads and writes.
        let n = unsafe { libc::ioctl(self.fd(), DP_ISPOLLED, &mut query) };
        assert!(n >= 0, "DP_ISPOLLED: errno {}", errno());
        assert_eq!(
            (query.fd, query.events),
            (fd, 0x7777),
            "fd and events are kept"
        );
        (n == 1).then_some(query.revents)
    }
}

/// A connected socket pair.
fn pair() -> (UnixStream, UnixStream) {
    UnixStream::pair().expect("socketpair")
}

/// The lowest free descriptor number (left free).
fn free_number() -> RawFd {
    let (a, _b) = pair();
    a.as_raw_fd()
}

/// The driver ORs an add into the events it has cached, across writes;
/// writing the events it has already changes nothing.
#[test]
fn events_are_ored_into_the_cached_entry_across_writes() {
    let _serial = serial();
    let dp = DevPoll::open();
    let (a, b) = pair();
    let fd = a.as_raw_fd();
    assert_eq!(dp.write(&[entry(fd, POLLIN)]), Ok(8));
    assert_eq!(dp.cached(fd), Some(POLLIN));
    assert_eq!(dp.write(&[entry(fd, POLLOUT)]), Ok(8));
    assert_eq!(dp.cached(fd), Some(POLLIN | POLLOUT));
    // Reported for both: the socket is writable, and readable once written.
    assert_eq!(dp.ready(), [(fd, POLLOUT)]);
    (&b).write_all(b"x").unwrap();
    assert_eq!(dp.ready(), [(fd, POLLIN | POLLOUT)]);
    assert_eq!(dp.write(&[entry(fd, POLLIN)]), Ok(8));
    assert_eq!(dp.cached(fd), Some(POLLIN | POLLOUT));
}

/// Only `events == POLLREMOVE` removes; with other bits it is an add,
/// cached bit and all. Removing what is not cached is skipped.
#[test]
fn pollremove_removes_only_as_the_whole_mask() {
    let _serial = serial();
    let dp = DevPoll::open();
    let (a, _b) = pair();
    let fd = a.as_raw_fd();
    assert_eq!(dp.write(&[entry(fd, POLLREMOVE)]), Ok(8));
    assert_eq!(dp.cached(fd), None);
    assert_eq!(dp.write(&[entry(fd, POLLREMOVE | POLLOUT)]), Ok(8));
    assert_eq!(dp.cached(fd), Some(POLLREMOVE | POLLOUT));
    assert_eq!(dp.ready(), [(fd, POLLOUT)]);
    // The idiom that replaces a mask: remove, then add, in one write.
    assert_eq!(
        dp.write(&[entry(fd, POLLREMOVE), entry(fd, POLLIN)]),
        Ok(16)
    );
    assert_eq!(dp.cached(fd), Some(POLLIN));
    assert_eq!(dp.ready(), []);
    assert_eq!(dp.write(&[entry(fd, POLLREMOVE)]), Ok(8));
    assert_eq!(dp.cached(fd), None);
}

/// Entries apply in order; the first that fails ends the write with its
/// error and the ones before it stay. Here the failing one is a chain of
/// epoll instances too deep for the set to watch (`ELOOP`).
#[test]
fn entries_apply_in_order_and_a_failed_one_keeps_the_earlier_ones() {
    let _serial = serial();
    let dp = DevPoll::open();
    let (a, _b) = pair();
    let (c, _d) = pair();
    // Five nested epoll instances: the deepest nesting Linux allows.
    let mut chain: Vec<OwnedFd> = Vec::new();
    for _ in 0..5 {
        // SAFETY: no pointer argument; the result is checked.
        let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        assert!(ep >= 0);
        // SAFETY: a fresh descriptor, owned by nothing else.
        let ep = unsafe { OwnedFd::from_raw_fd(ep) };
        if let Some(inner) = chain.last() {
            let mut event = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: 0,
            };
            // SAFETY: both descriptors are open; `event` is live.
            let added = unsafe {
                libc::epoll_ctl(
                    ep.as_raw_fd(),
                    libc::EPOLL_CTL_ADD,
                    inner.as_raw_fd(),
                    &mut event,
                )
            };
            assert_eq!(added, 0, "nesting: errno {}", errno());
        }
        chain.push(ep);
    }
    let top = chain.last().unwrap().as_raw_fd();
    let written = dp.write(&[
        entry(a.as_raw_fd(), POLLIN),
        entry(top, POLLIN),
        entry(c.as_raw_fd(), POLLIN),
    ]);
    assert_eq!(written, Err(libc::ELOOP));
    assert_eq!(dp.cached(a.as_raw_fd()), Some(POLLIN), "applied before");
    assert_eq!(dp.cached(top), None, "the failed entry is not cached");
    assert_eq!(dp.cached(c.as_raw_fd()), None, "never reached");
}

/// A number closed when it is written is cached with no file: never
/// reported, `POLLREMOVE` does not clear it, and its events are ORed into
/// the next add at that number.
#[test]
fn a_number_closed_when_written_is_cached_but_never_reported() {
    let _serial = serial();
    let dp = DevPoll::open();
    let fd = free_number();
    assert_eq!(dp.write(&[entry(fd, POLLIN)]), Ok(8));
    assert_eq!(dp.cached(fd), None);
    assert_eq!(dp.ready(), []);
    assert_eq!(dp.write(&[entry(fd, POLLREMOVE)]), Ok(8));
    // A socket takes the number, registered for WRITE only.
    let (a, b) = pair();
    assert_eq!(a.as_raw_fd(), fd, "the lowest free number");
    (&b).write_all(b"x").unwrap();
    assert_eq!(dp.write(&[entry(fd, POLLOUT)]), Ok(8));
    assert_eq!(dp.cached(fd), Some(POLLIN | POLLOUT), "the stale POLLIN");
    assert_eq!(dp.ready(), [(fd, POLLIN | POLLOUT)]);
    drop(a);
}

/// A registered descriptor closed without `POLLREMOVE` is reported
/// `POLLNVAL` while it is marked: at every `DP_POLL` once its file's
/// teardown woke the set. A file that lives on in a duplicate does not
/// wake it: nothing is reported until that file's state changes.
#[test]
fn a_closed_descriptor_shows_pollnval_while_it_is_marked() {
    let _serial = serial();
    let dp = DevPoll::open();
    let (a, b) = pair();
    let fd = a.as_raw_fd();
    assert_eq!(dp.write(&[entry(fd, POLLIN)]), Ok(8));
    assert_eq!(dp.ready(), []);
    drop(a);
    for _ in 0..3 {
        assert_eq!(dp.ready(), [(fd, POLLNVAL)]);
    }
    assert_eq!(dp.cached(fd), Some(POLLIN), "cached until removed");
    assert_eq!(dp.write(&[entry(fd, POLLREMOVE)]), Ok(8));
    assert_eq!(dp.ready(), []);

    // Closed, but its file lives on in a duplicate: no teardown.
    let (c, d) = pair();
    let fd = c.as_raw_fd();
    let dup = c.try_clone().unwrap();
    assert_eq!(dp.write(&[entry(fd, POLLIN)]), Ok(8));
    assert_eq!(dp.ready(), []);
    drop(c);
    assert_eq!(dp.ready(), [], "idle and unmarked");
    // The file wakes its pollhead: the number is examined, and closed.
    (&d).write_all(b"x").unwrap();
    assert_eq!(dp.ready(), [(fd, POLLNVAL)]);
    drop((b, dup));
}

/// A new file at a cached number is adopted silently, with the cached
/// events, once the number is examined.
#[test]
fn a_new_file_at_a_reused_number_is_adopted() {
    let _serial = serial();
    let dp = DevPoll::open();
    let (a, _a_peer) = pair();
    let fd = a.as_raw_fd();
    assert_eq!(dp.write(&[entry(fd, POLLIN)]), Ok(8));
    drop(a);
    assert_eq!(dp.ready(), [(fd, POLLNVAL)]);
    let (b, b_peer) = pair();
    assert_eq!(b.as_raw_fd(), fd, "the lowest free number");
    assert_eq!(dp.ready(), [], "adopted, idle");
    (&b_peer).write_all(b"x").unwrap();
    assert_eq!(dp.ready(), [(fd, POLLIN)]);
    assert_eq!(dp.cached(fd), Some(POLLIN));
}

/// Level-triggered: a ready descriptor is reported at every `DP_POLL`
/// until it is not ready.
#[test]
fn a_ready_descriptor_is_reported_at_every_poll() {
    let _serial = serial();
    let dp = DevPoll::open();
    let (mut a, b) = pair();
    let fd = a.as_raw_fd();
    assert_eq!(dp.write(&[entry(fd, POLLIN)]), Ok(8));
    (&b).write_all(b"xy").unwrap();
    for _ in 0..3 {
        assert_eq!(dp.ready(), [(fd, POLLIN)]);
    }
    let mut buf = [0u8; 2];
    a.read_exact(&mut buf).unwrap();
    assert_eq!(dp.ready(), []);
    // A hang-up is reported whatever was asked.
    drop(b);
    let ready = dp.ready();
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0].1 & POLLHUP, POLLHUP, "{ready:?}");
}

/// A buffer too small for every ready descriptor: the next `DP_POLL`
/// resumes after the last one reported, so each gets its turn.
#[test]
fn a_scan_resumes_where_a_full_buffer_stopped_it() {
    let _serial = serial();
    let dp = DevPoll::open();
    let pairs: Vec<_> = (0..3).map(|_| pair()).collect();
    let mut fds: Vec<RawFd> = pairs.iter().map(|(a, _)| a.as_raw_fd()).collect();
    fds.sort_unstable();
    for &fd in &fds {
        assert_eq!(dp.write(&[entry(fd, POLLOUT)]), Ok(8));
    }
    let turns: Vec<RawFd> = (0..6)
        .map(|_| {
            let one = dp.poll(1, 0).expect("DP_POLL");
            assert_eq!(one.len(), 1);
            one[0].fd
        })
        .collect();
    assert_eq!(turns, [fds.clone(), fds].concat());
}

/// `dp_nfds` far above the descriptor limit is clamped, not refused.
#[test]
fn dp_nfds_above_twice_the_limit_is_clamped() {
    let _serial = serial();
    let dp = DevPoll::open();
    let (a, _b) = pair();
    assert_eq!(dp.write(&[entry(a.as_raw_fd(), POLLOUT)]), Ok(8));
    let limit = soft_limit();
    let mut buf = [entry(-7, 0); 4];
    let mut dvpoll = DvPoll {
        dp_fds: buf.as_mut_ptr(),
        // A buffer that claims to be huge: one entry is ready.
        dp_nfds: 4 * limit + 3,
        dp_timeout: 0,
        dp_setp: std::ptr::null_mut(),
    };
    // SAFETY: a live `dvpoll_t`; one entry is written at most.
    let n = unsafe { libc::ioctl(dp.fd(), DP_POLL, &mut dvpoll) };
    assert_eq!(n, 1, "errno {}", errno());
    assert_eq!(buf[0].fd, a.as_raw_fd());
}

fn soft_limit() -> u64 {
    // SAFETY: `rlimit` is plain data.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: a valid resource and a live `rlimit`.
    let got = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(got, 0, "getrlimit");
    limit.rlim_cur
}

/// The environment variable that makes the emulation Oracle Solaris.
const FLAVOUR: &str = "DEVPOLL_EMULATION";

/// Runs the test `name` of this binary again, alone, in a process of its
/// own with `DEVPOLL_EMULATION=solaris` (the emulation is preloaded there
/// too: the variable that preloads it is inherited). Returns whether this
/// process is that child.
fn as_solaris(name: &str) -> bool {
    if std::env::var_os(FLAVOUR).is_some_and(|v| v == "solaris") {
        return true;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--test-threads=1", "--nocapture"])
        .env(FLAVOUR, "solaris")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{name} as Oracle Solaris:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    false
}

/// Oracle Solaris refuses a `dp_nfds` at or above the descriptor limit
/// (poll(4D)), and its opener owns an instance.
#[test]
fn oracle_solaris_refuses_dp_nfds_at_the_limit() {
    let _serial = serial();
    if !as_solaris("oracle_solaris_refuses_dp_nfds_at_the_limit") {
        return;
    }
    let dp = DevPoll::open();
    let (a, _b) = pair();
    assert_eq!(dp.write(&[entry(a.as_raw_fd(), POLLOUT)]), Ok(8));
    let limit = soft_limit();
    let mut buf = [entry(-7, 0); 4];
    let cases = [
        (limit - 1, Ok(1)),
        (limit, Err(libc::EINVAL)),
        (4 * limit, Err(libc::EINVAL)),
    ];
    for (nfds, expected) in cases {
        let mut dvpoll = DvPoll {
            dp_fds: buf.as_mut_ptr(),
            dp_nfds: nfds,
            dp_timeout: 0,
            dp_setp: std::ptr::null_mut(),
        };
        // SAFETY: a live `dvpoll_t`; one entry is written at most.
        let n = unsafe { libc::ioctl(dp.fd(), DP_POLL, &mut dvpoll) };
        let got = if n < 0 { Err(errno()) } else { Ok(n) };
        assert_eq!(got, expected, "dp_nfds {nfds} under a limit of {limit}");
    }
    // The opener owns it: a child that writes first is refused.
    assert_eq!(in_child(|| DevPoll::write_raw(&dp)), libc::EACCES);
}

impl DevPoll {
    /// One `write` of an empty entry list (it still claims the set): 0, or
    /// `errno`. Safe to call in a forked child.
    fn write_raw(&self) -> i32 {
        // SAFETY: a zero-length write reads nothing.
        let n = unsafe { libc::write(self.fd(), std::ptr::null(), 0) };
        if n < 0 {
            errno()
        } else {
            0
        }
    }
}

/// Runs `f` in a forked child; its result is the child's exit status.
fn in_child(f: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child runs `f` (a few system calls) and leaves with
    // `_exit`, running nothing of the parent's.
    match unsafe { libc::fork() } {
        -1 => panic!("fork: errno {}", errno()),
        0 => {
            let code = f();
            // SAFETY: ends the child at once.
            unsafe { libc::_exit(code) }
        }
        child => {
            let mut status = 0;
            // SAFETY: waits for our own child, into a live int.
            assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
            assert!(libc::WIFEXITED(status), "child status {status:#x}");
            libc::WEXITSTATUS(status)
        }
    }
}

/// Timeouts are milliseconds, at least a tick when positive; 0 polls; -1
/// waits until something is ready; other negatives are a deadline passed.
/// With no room for results, `DP_POLL` just sleeps.
#[test]
fn timeouts_are_milliseconds_and_minus_one_waits_for_ever() {
    let _serial = serial();
    let dp = DevPoll::open();
    let (a, b) = pair();
    assert_eq!(dp.write(&[entry(a.as_raw_fd(), POLLIN)]), Ok(8));
    let timed = |room: usize, timeout: i32| {
        let start = Instant::now();
        let n = dp.poll(room, timeout).expect("DP_POLL").len();
        (n, start.elapsed())
    };
    let (n, took) = timed(4, 30);
    assert!(n == 0 && took >= Duration::from_millis(30), "{took:?}");
    let (n, took) = timed(4, 1);
    assert!(
        n == 0 && took >= Duration::from_millis(10),
        "a tick: {took:?}"
    );
    let (n, took) = timed(4, 0);
    assert!(n == 0 && took < Duration::from_millis(50), "{took:?}");
    let (n, took) = timed(4, -5);
    assert!(n == 0 && took < Duration::from_millis(50), "{took:?}");
    let (n, took) = timed(0, 20);
    assert!(n == 0 && took >= Duration::from_millis(20), "{took:?}");
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(50));
            (&b).write_all(b"x").unwrap();
        });
        let (n, took) = timed(4, -1);
        assert!(n == 1 && took >= Duration::from_millis(50), "{took:?}");
    });
}

extern "C" fn on_signal(_: libc::c_int) {}

/// A signal ends a wait with `EINTR`, and nothing is written to the
/// buffer.
#[test]
fn a_signal_ends_a_wait_with_eintr_and_no_results() {
    // SAFETY: installs a handler that does nothing, without SA_RESTART.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
        assert_eq!(
            libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()),
            0
        );
    }
    let _serial = serial();
    let dp = DevPoll::open();
    let (a, _b) = pair();
    assert_eq!(dp.write(&[entry(a.as_raw_fd(), POLLIN)]), Ok(8));
    // SAFETY: pthread_self cannot fail.
    let me = unsafe { libc::pthread_self() };
    // With room for results, and with none (a plain sleep).
    for room in [4, 0] {
        std::thread::scope(|s| {
            s.spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                // SAFETY: signals a thread that is alive (it waits for
                // ever, until this signal).
                unsafe { libc::pthread_kill(me, libc::SIGUSR1) };
            });
            let start = Instant::now();
            let (err, buf) = dp.poll(room, -1).expect_err("interrupted");
            assert_eq!(err, libc::EINTR);
            assert!(buf.iter().all(|e| e.fd == -7), "no results");
            assert!(start.elapsed() >= Duration::from_millis(50));
        });
    }
}

/// `DP_ISPOLLED` answers 1 and writes the cached events into `revents` for
/// a number cached with a file (even one closed since: its file is still
/// cached); 0 for anything else.
#[test]
fn dp_ispolled_writes_the_cached_events_into_revents() {
    let _serial = serial();
    let dp = DevPoll::open();
    let (a, _b) = pair();
    let fd = a.as_raw_fd();
    assert_eq!(dp.cached(fd), None, "nothing written yet");
    assert_eq!(dp.write(&[entry(fd, POLLIN | POLLOUT)]), Ok(8));
    assert_eq!(dp.cached(fd), Some(POLLIN | POLLOUT));
    assert_eq!(dp.cached(-1), None);
    assert_eq!(dp.cached(fd + 1000), None);
    drop(a);
    assert_eq!(dp.cached(fd), Some(POLLIN | POLLOUT));
}

/// The first process to use an instance owns it: a child forked after the
/// parent used it is refused, and a child that uses it first takes it
/// from a parent that had not.
#[test]
fn the_first_process_to_use_an_instance_owns_it() {
    let _serial = serial();
    let used = DevPoll::open();
    assert_eq!(used.write_raw(), 0);
    assert_eq!(in_child(|| used.write_raw()), libc::EACCES);
    assert_eq!(
        in_child(|| match used.poll(4, 0) {
            Ok(_) => 0,
            Err((err, _)) => err,
        }),
        libc::EACCES
    );
    assert_eq!(used.write_raw(), 0, "still the parent's");

    let fresh = DevPoll::open();
    assert_eq!(in_child(|| fresh.write_raw()), 0, "the child's now");
    assert_eq!(fresh.write_raw(), libc::EACCES);
    assert_eq!(
        fresh.poll(4, 0).map(drop).map_err(|(e, _)| e),
        Err(libc::EACCES)
    );
}

/// A `/dev/poll` descriptor, polled, shows `POLLERR`: cached in another
/// instance, and through `poll(2)`.
#[test]
fn a_devpoll_descriptor_polled_shows_pollerr() {
    let _serial = serial();
    let inner = DevPoll::open();
    let outer = DevPoll::open();
    assert_eq!(outer.write(&[entry(inner.fd(), POLLIN)]), Ok(8));
    assert_eq!(outer.ready(), [(inner.fd(), POLLERR)]);
    let mut pollfd = entry(inner.fd(), libc::POLLIN | libc::POLLOUT);
    // SAFETY: one live `pollfd`, no wait.
    assert_eq!(unsafe { libc::poll(&mut pollfd, 1, 0) }, 1);
    assert_eq!(pollfd.revents, libc::POLLERR);
}

/// A write that adds a number wakes a `DP_POLL` waiting in another thread,
/// which then finds it ready: here `/dev/null`, a file without a pollhead
/// (epoll cannot watch it), so the write's own wake-up is all there is.
#[test]
fn a_write_that_adds_wakes_a_waiting_poll() {
    let _serial = serial();
    let dp = DevPoll::open();
    let null = std::fs::File::open("/dev/null").unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(50));
            assert_eq!(dp.write(&[entry(null.as_raw_fd(), POLLIN)]), Ok(8));
        });
        let start = Instant::now();
        let got = dp.poll(4, 5000).expect("DP_POLL");
        assert_eq!(got.len(), 1);
        assert!(start.elapsed() < Duration::from_secs(4));
    });
}

/// A write takes whole entries, and answers with the whole length;
/// numbers beyond the process's descriptor table are skipped (unlike a
/// closed number within it, cached with its events).
#[test]
fn writes_take_whole_entries_and_skip_numbers_beyond_the_table() {
    let _serial = serial();
    let dp = DevPoll::open();
    let (a, _b) = pair();
    let beyond = fd_table_size() + 10;
    assert!((beyond as u64) < soft_limit(), "no room above the table");
    let mut bytes = Vec::new();
    for e in [
        entry(-3, POLLIN),
        entry(beyond, POLLIN),
        entry(a.as_raw_fd(), POLLOUT),
    ] {
        bytes.extend_from_slice(&e.fd.to_ne_bytes());
        bytes.extend_from_slice(&e.events.to_ne_bytes());
        bytes.extend_from_slice(&0i16.to_ne_bytes());
    }
    bytes.extend_from_slice(&[0xAA; 5]); // a partial entry: ignored
                                         // SAFETY: `bytes` is readable.
    let n = unsafe { libc::write(dp.fd(), bytes.as_ptr().cast(), bytes.len()) };
    assert_eq!(n, bytes.len() as isize);
    assert_eq!(dp.ready(), [(a.as_raw_fd(), POLLOUT)]);
    // A socket at that number (the table grows): added with its own events
    // only, where a cached closed number would have ORed in POLLIN.
    // SAFETY: dup2 onto a free number; the result is checked and owned.
    let at = unsafe { libc::dup2(a.as_raw_fd(), beyond) };
    assert_eq!(at, beyond, "dup2: errno {}", errno());
    // SAFETY: `at` is open and owned by nothing else.
    let at = unsafe { OwnedFd::from_raw_fd(at) };
    assert_eq!(dp.write(&[entry(beyond, POLLOUT)]), Ok(8));
    assert_eq!(dp.cached(beyond), Some(POLLOUT));
    drop(at);
}

/// Linux's descriptor table size, `FDSize` in `/proc/self/status`.
fn fd_table_size() -> RawFd {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("FDSize:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("FDSize")
}

/// `dup` shares an instance; it goes at the last close, with the
/// descriptors of its own.
#[test]
fn an_instance_is_shared_by_dup_and_goes_at_the_last_close() {
    let _serial = serial();
    let before = open_fds();
    let dp = DevPoll::open();
    let (a, _b) = pair();
    let twin = DevPoll(dp.0.try_clone().unwrap());
    assert_eq!(twin.write(&[entry(a.as_raw_fd(), POLLOUT)]), Ok(8));
    drop(dp);
    assert_eq!(twin.ready(), [(a.as_raw_fd(), POLLOUT)]);
    drop(twin);
    drop((a, _b));
    assert_eq!(open_fds(), before);
}

fn open_fds() -> Vec<RawFd> {
    let mut fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        // SAFETY: F_GETFD only asks; the listing's own handle is closed.
        .filter(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0)
        .collect();
    fds.sort_unstable();
    fds
}

/// The illumos extensions: a `POLLONESHOT` entry is reported once, then
/// not until written again; a `POLLET` one once per change.
#[test]
fn oneshot_and_edge_triggered_entries() {
    let _serial = serial();
    let dp = DevPoll::open();
    let (a, b) = pair();
    let fd = a.as_raw_fd();
    assert_eq!(dp.write(&[entry(fd, POLLOUT | POLLONESHOT)]), Ok(8));
    assert_eq!(dp.ready(), [(fd, POLLOUT)]);
    assert_eq!(dp.ready(), []);
    assert_eq!(dp.write(&[entry(fd, POLLOUT | POLLONESHOT)]), Ok(8));
    assert_eq!(dp.ready(), [(fd, POLLOUT)]);

    let (c, d) = pair();
    let fd = c.as_raw_fd();
    assert_eq!(dp.write(&[entry(fd, POLLIN | POLLET)]), Ok(8));
    (&d).write_all(b"x").unwrap();
    assert_eq!(dp.ready(), [(fd, POLLIN)]);
    assert_eq!(dp.ready(), [], "no new edge");
    (&d).write_all(b"y").unwrap();
    assert_eq!(dp.ready(), [(fd, POLLIN)]);
    drop((a, b, c, d));
}
