//! The bad-input matrix: every backend gets every kind of wrong argument,
//! and must answer with the documented error kind, leave its key map exactly
//! as it was, and keep working. No input may panic, abort or corrupt the map.
//!
//! `bad_arguments` is the table of register / unregister / modify / get_key
//! inputs; `calls_after_close` every call on a closed selector; the
//! `timeout_*` tests the edges of the timeout conversions (a nanosecond,
//! just under a millisecond, and timeouts too large for any kernel
//! interface; zero and 1 ms are in `signals_and_time`).
//!
//! Linux only: these tests rely on its kernel's rules, epoll and
//! `/proc`. kqueue joins in as libkqueue's emulation, under `--cfg
//! selectors_libkqueue` (see `util`).
#![cfg(any(target_os = "linux", target_os = "android"))]

#[macro_use]
mod util;

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use selectors::{Error, Events, FileObject, Result, Selector, EVENT_READ, EVENT_WRITE};

/// The table test closes descriptors, probes numbers that must stay free,
/// and finds the waker's descriptor by what `waker()` opens: every test of
/// this binary holds this lock while it opens descriptors.
static SERIAL: Mutex<()> = Mutex::new(());

type Obj = Box<dyn FileObject>;
type Snapshot = Vec<(RawFd, Events, &'static str)>;

/// What a call must return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Ok,
    InvalidEvents,
    InvalidFd,
    AlreadyRegistered,
    NotRegistered,
    Closed,
    Os(i32),
}

fn kind<T>(result: &Result<T>) -> Expect {
    match result {
        Ok(_) => Expect::Ok,
        Err(Error::InvalidEvents) => Expect::InvalidEvents,
        Err(Error::InvalidFd(_)) => Expect::InvalidFd,
        Err(Error::AlreadyRegistered(_)) => Expect::AlreadyRegistered,
        Err(Error::NotRegistered(_)) => Expect::NotRegistered,
        Err(Error::Closed) => Expect::Closed,
        Err(Error::Os(e)) => Expect::Os(e.raw_os_error().unwrap_or(-1)),
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

fn snapshot<S: Selector<Obj, &'static str>>(sel: &S) -> Snapshot {
    sel.get_map()
        .iter()
        .map(|k| (k.fd(), k.events(), *k.data()))
        .collect()
}

fn ready<S: Selector<Obj, &'static str>>(sel: &mut S) -> Vec<(RawFd, Events)> {
    let mut list: Vec<_> = sel
        .select(Some(Duration::ZERO))
        .expect("select")
        .map(|(k, ev)| (k.fd(), ev))
        .collect();
    list.sort_unstable_by_key(|&(fd, _)| fd);
    list
}

/// A number no descriptor of this process has, far above the ones in use.
fn never_opened() -> RawFd {
    let fd = (15_000..19_000)
        .find(|&fd| !util::is_open(fd))
        .expect("a free number");
    assert!(!util::is_open(fd));
    fd
}

/// A number that was open a moment ago.
fn closed_fd() -> RawFd {
    let (a, _b) = util::socketpair();
    let fd = a.as_raw_fd();
    drop(a);
    fd
}

/// One row of the table: a call, and what each backend must answer.
struct Case {
    name: &'static str,
    /// epoll, the number-based backends (poll, select), then kqueue.
    expect: (Expect, Expect, Expect),
    /// A failed call must change nothing; a successful one (a file type
    /// only some kernels take) must add exactly this key, which the table
    /// unregisters again.
    call: Box<dyn Fn(&mut Dyn<'_>) -> Expect>,
}

/// The table calls every backend through the trait object.
type Dyn<'a> = dyn Selector<Obj, &'static str> + 'a;

fn case(
    name: &'static str,
    expect: Expect,
    call: impl Fn(&mut Dyn<'_>) -> Expect + 'static,
) -> Case {
    Case {
        name,
        expect: (expect, expect, expect),
        call: Box::new(call),
    }
}

fn register(fd: RawFd, events: Events) -> impl Fn(&mut Dyn<'_>) -> Expect {
    move |sel| kind(&sel.register(Box::new(fd), events, "bad"))
}

fn bad_arguments<S: Selector<Obj, &'static str>>(new: impl Fn() -> Result<S>) {
    let _serial = util::lock(&SERIAL);
    let before = util::open_fds();
    let mut sel = new().unwrap();
    // The kernel object of the backends that have one (epoll).
    let own: Vec<RawFd> = util::open_fds()
        .into_iter()
        .filter(|fd| !before.contains(fd))
        .collect();
    // The baseline: a reader with data pending, a writer, a waker.
    let (reader, reader_peer) = util::socketpair();
    let (writer, _writer_peer) = util::socketpair();
    (&reader_peer).write_all(b"pending").unwrap();
    let reader = Arc::new(reader);
    let (rfd, wfd) = (reader.as_raw_fd(), writer.as_raw_fd());
    sel.register(Box::new(Arc::clone(&reader)), EVENT_READ, "reader")
        .unwrap();
    sel.register(Box::new(writer), EVENT_WRITE, "writer")
        .unwrap();
    let before = util::open_fds();
    let waker = sel.waker().unwrap();
    let opened: Vec<RawFd> = util::open_fds()
        .into_iter()
        .filter(|fd| !before.contains(fd))
        .collect();
    let [waker_fd] = opened[..] else {
        panic!("waker() opened {opened:?}");
    };
    let baseline = snapshot(&sel);
    let baseline_ready = {
        let mut r = vec![(rfd, EVENT_READ), (wfd, EVENT_WRITE)];
        r.sort_unstable_by_key(|&(fd, _)| fd);
        r
    };
    assert_eq!(ready(&mut sel), baseline_ready);

    // Descriptors of kinds some kernels refuse, and numbers of every sort.
    let file = Arc::new(File::open(std::env::current_exe().unwrap()).unwrap());
    let dir = Arc::new(File::open(env!("CARGO_MANIFEST_DIR")).unwrap());
    let devnull = Arc::new(File::open("/dev/null").unwrap());
    let unregistered = util::socketpair();
    let (free_fd, closed) = (never_opened(), closed_fd());
    let open_fd = unregistered.0.as_raw_fd();
    let ebadf = Expect::Os(libc::EBADF);

    use Expect::*;
    let mut table = vec![
        // register: the mask first, then the number, then duplicates, then
        // the kernel.
        case(
            "register, empty mask",
            InvalidEvents,
            register(open_fd, Events::EMPTY),
        ),
        case(
            "register, empty mask and fd -1",
            InvalidEvents,
            register(-1, Events::EMPTY),
        ),
        case("register, fd -1", InvalidFd, register(-1, EVENT_READ)),
        case(
            "register, fd i32::MIN",
            InvalidFd,
            register(i32::MIN, Events::ALL),
        ),
        case(
            "register, fd i32::MAX",
            ebadf,
            register(i32::MAX, EVENT_READ),
        ),
        case(
            "register, a closed fd",
            ebadf,
            register(closed, EVENT_WRITE),
        ),
        case(
            "register, a never-opened fd",
            ebadf,
            register(free_fd, Events::ALL),
        ),
        case(
            "register, the same fd again",
            AlreadyRegistered,
            register(wfd, EVENT_WRITE),
        ),
        case("register, the same object again", AlreadyRegistered, {
            let reader = Arc::clone(&reader);
            move |sel| kind(&sel.register(Box::new(Arc::clone(&reader)), EVENT_READ, "bad"))
        }),
        // The key holds the socket; this object is a bare number.
        case(
            "register, the same fd through another object",
            AlreadyRegistered,
            register(rfd, EVENT_READ),
        ),
        case(
            "register, the waker's fd",
            AlreadyRegistered,
            register(waker_fd, EVENT_READ),
        ),
        // Files without poll support: epoll refuses them (EPERM); poll(2)
        // and select(2) report them always ready. kqueue watches regular
        // files (ready to read until the end of the file, which the file
        // position here is far from, and always ready to write); libkqueue
        // does so with an eventfd standing in for the file.
        Case {
            name: "register, a regular file",
            expect: (Os(libc::EPERM), Ok, Ok),
            call: Box::new({
                let file = Arc::clone(&file);
                move |sel| kind(&sel.register(Box::new(Arc::clone(&file)), Events::ALL, "new"))
            }),
        },
        Case {
            name: "register, a directory",
            // libkqueue deviation: it refuses a descriptor of a type it does
            // not handle, a directory among them, with EBADF; a kernel
            // kqueue watches a directory as the vnode it is.
            expect: (
                Os(libc::EPERM),
                Ok,
                if util::LIBKQUEUE { Os(libc::EBADF) } else { Ok },
            ),
            call: Box::new({
                let dir = Arc::clone(&dir);
                move |sel| kind(&sel.register(Box::new(Arc::clone(&dir)), Events::ALL, "new"))
            }),
        },
        Case {
            name: "register, /dev/null",
            // libkqueue hands a character device to epoll, which refuses
            // it. (kqueue runs in this Linux-only binary on libkqueue only.)
            expect: (Os(libc::EPERM), Ok, Os(libc::EPERM)),
            call: Box::new({
                let devnull = Arc::clone(&devnull);
                move |sel| kind(&sel.register(Box::new(Arc::clone(&devnull)), Events::ALL, "new"))
            }),
        },
        // Unknown descriptors.
        case("unregister, fd -1", NotRegistered, |sel| {
            kind(&sel.unregister(-1))
        }),
        case("unregister, fd i32::MAX", NotRegistered, |sel| {
            kind(&sel.unregister(i32::MAX))
        }),
        case(
            "unregister, an open, unregistered fd",
            NotRegistered,
            move |sel| kind(&sel.unregister(open_fd)),
        ),
        case("unregister, a never-opened fd", NotRegistered, move |sel| {
            kind(&sel.unregister(free_fd))
        }),
        case("unregister, the waker's fd", NotRegistered, move |sel| {
            kind(&sel.unregister(waker_fd))
        }),
        case("modify, fd -1", NotRegistered, |sel| {
            kind(&sel.modify(-1, EVENT_READ, "x"))
        }),
        case("modify, fd i32::MIN", NotRegistered, |sel| {
            kind(&sel.modify(i32::MIN, EVENT_READ, "x"))
        }),
        case("modify, an unregistered fd", NotRegistered, move |sel| {
            kind(&sel.modify(open_fd, EVENT_READ, "x"))
        }),
        case("modify_events, the waker's fd", NotRegistered, move |sel| {
            kind(&sel.modify_events(waker_fd, EVENT_WRITE))
        }),
        case("modify, empty mask", InvalidEvents, move |sel| {
            kind(&sel.modify(rfd, Events::EMPTY, "x"))
        }),
        case("modify_events, empty mask", InvalidEvents, move |sel| {
            kind(&sel.modify_events(wfd, Events::EMPTY))
        }),
        case(
            "modify, empty mask and an unknown fd",
            InvalidEvents,
            |sel| kind(&sel.modify(i32::MAX, Events::EMPTY, "x")),
        ),
        case("get_key, fd -1", NotRegistered, |sel| {
            kind(&sel.get_key(-1))
        }),
        case("get_key, fd i32::MAX", NotRegistered, |sel| {
            kind(&sel.get_key(i32::MAX))
        }),
        case("get_key, a never-opened fd", NotRegistered, move |sel| {
            kind(&sel.get_key(free_fd))
        }),
        case("get_key_mut, fd i32::MIN", NotRegistered, |sel| {
            kind(&sel.get_key_mut(i32::MIN).map(|_| ()))
        }),
        case("get_key_mut, the waker's fd", NotRegistered, move |sel| {
            kind(&sel.get_key_mut(waker_fd).map(|_| ()))
        }),
    ];

    if let ("epoll", [epfd]) = (sel.backend(), &own[..]) {
        let epfd = *epfd;
        // An epoll instance cannot watch itself (EINVAL). (A kqueue can
        // watch itself for reading, and libkqueue's opens several
        // descriptors.)
        table.push(case(
            "register, the selector's own fd",
            Os(libc::EINVAL),
            register(epfd, EVENT_READ),
        ));
    }
    for case in table.drain(..) {
        let expect = match sel.backend() {
            "epoll" => case.expect.0,
            "kqueue" => case.expect.2,
            _ => case.expect.1,
        };
        let got = (case.call)(&mut sel);
        assert_eq!(got, expect, "{}: {}", sel.backend(), case.name);
        let map = snapshot(&sel);
        if got == Ok {
            // Only a new registration succeeds here: exactly one key more.
            assert_eq!(map.len(), baseline.len() + 1, "{}", case.name);
            assert_eq!(&map[..baseline.len()], &baseline[..], "{}", case.name);
            let (fd, events, _) = map[baseline.len()];
            assert_eq!(events, Events::ALL);
            // Always ready, both ways, until unregistered.
            let list = ready(&mut sel);
            assert!(list.contains(&(fd, Events::ALL)), "{}: {list:?}", case.name);
            sel.unregister(fd).unwrap();
        }
        assert_eq!(snapshot(&sel), baseline, "{}: the map changed", case.name);
        for &(fd, events, data) in &baseline {
            let key = sel.get_key(fd).unwrap();
            assert_eq!((key.fd(), key.events(), *key.data()), (fd, events, data));
        }
        assert_eq!(
            ready(&mut sel),
            baseline_ready,
            "{}: select afterwards",
            case.name
        );
        assert!(!sel.was_woken(), "{}", case.name);
    }
    // The waker still works after all that.
    waker.wake().unwrap();
    assert_eq!(ready(&mut sel), baseline_ready);
    assert!(sel.was_woken());
    drop((reader_peer, unregistered));
}

/// After `close`, every call but `close`, `is_closed`, `get_map` fails with
/// `Closed` (whatever its arguments, valid or not), and changes nothing.
fn calls_after_close<S: Selector<Obj, &'static str>>(new: impl Fn() -> Result<S>) {
    let _serial = util::lock(&SERIAL);
    let mut sel = new().unwrap();
    let (a, b) = util::socketpair();
    let afd = a.as_raw_fd();
    sel.register(Box::new(a), Events::ALL, "a").unwrap();
    let waker = sel.waker().unwrap();
    sel.close().unwrap();
    // `select(None)` on a closed selector must fail, not block.
    let _watchdog = util::Watchdog::new(Duration::from_secs(30), "calls after close");
    let closed = |what: &str, got: Expect| assert_eq!(got, Expect::Closed, "{what}");
    for fd in [afd, b.as_raw_fd(), -1, i32::MAX] {
        for events in [Events::EMPTY, EVENT_READ, Events::ALL] {
            closed("register", kind(&sel.register(Box::new(fd), events, "x")));
            closed("modify", kind(&sel.modify(fd, events, "x")));
            closed("modify_events", kind(&sel.modify_events(fd, events)));
        }
        closed("unregister", kind(&sel.unregister(fd)));
        closed("get_key", kind(&sel.get_key(fd)));
        closed("get_key_mut", kind(&sel.get_key_mut(fd).map(|_| ())));
    }
    for timeout in [None, Some(Duration::ZERO), Some(Duration::MAX)] {
        closed("select", kind(&sel.select(timeout).map(|r| r.len())));
        let mut list = vec![(3, EVENT_READ)];
        closed("select_into", kind(&sel.select_into(&mut list, timeout)));
        assert!(list.is_empty(), "select_into clears the list");
    }
    closed("waker", kind(&sel.waker()));
    closed("wake", kind(&waker.wake()));
    assert!(sel.get_map().is_empty() && sel.is_closed() && !sel.was_woken());
    assert_eq!(kind(&sel.close()), Expect::Ok, "closing twice");
    assert!(sel.is_closed());
}

// ---------------------------------------------------------------- timeouts

/// A selector with one registration that is never ready.
fn idle<S: Selector<RawFd, ()>>(new: &impl Fn() -> Result<S>) -> (S, UnixStream, UnixStream) {
    let _serial = util::lock(&SERIAL);
    let mut sel = new().unwrap();
    let (rd, wr) = util::socketpair();
    sel.register(rd.as_raw_fd(), EVENT_READ, ()).unwrap();
    (sel, rd, wr)
}

/// 1 ns and 999,999 ns are rounded up (to 1 ms on the millisecond
/// backends, 1 µs on select): never an early return, and never a busy loop
/// (a wait rounded down to 0 would spin, retried, until the deadline: no
/// voluntary context switch at all).
fn timeout_sub_millisecond_rounds_up<S: Selector<RawFd, ()>>(new: impl Fn() -> Result<S>) {
    let (mut sel, _rd, _wr) = idle(&new);
    for timeout in [Duration::from_nanos(999_999), Duration::from_micros(1500)] {
        let calls: i64 = 100;
        let switches = util::voluntary_switches();
        for _ in 0..calls {
            let start = Instant::now();
            assert_eq!(sel.select(Some(timeout)).unwrap().len(), 0);
            let elapsed = start.elapsed();
            assert!(elapsed >= timeout, "{timeout:?} returned after {elapsed:?}");
            assert!(elapsed < Duration::from_secs(2), "{timeout:?}: {elapsed:?}");
        }
        let slept = util::voluntary_switches() - switches;
        assert!(
            slept >= calls / 2,
            "{timeout:?}: only {slept} sleeps in {calls} selects: a busy loop"
        );
    }
    let start = Instant::now();
    assert_eq!(sel.select(Some(Duration::from_nanos(1))).unwrap().len(), 0);
    assert!(start.elapsed() < Duration::from_secs(2));
}

/// Timeouts beyond what any kernel interface takes (`Duration::MAX`, more
/// than `c_int::MAX` ms, more than 10^8 s) clamp to a long wait: they never
/// overflow into a short, zero or negative one. Each waits until a byte
/// arrives 150 ms later, and must report it.
fn timeout_huge_never_overflows<S: Selector<RawFd, ()>>(new: impl Fn() -> Result<S>) {
    let (mut sel, rd, wr) = idle(&new);
    let huge = [
        Duration::MAX,
        Duration::from_secs(u64::MAX / 2),
        Duration::new(u64::MAX, 0),
        Duration::from_secs(100_000_001),
        Duration::from_millis(i32::MAX as u64 + 1),
        Duration::from_millis(u32::MAX as u64 + 1),
        Duration::from_millis(u64::MAX),
    ];
    let delay = Duration::from_millis(150);
    for timeout in huge {
        // If the readiness were lost, this select would never return.
        let _watchdog = util::Watchdog::new(Duration::from_secs(30), "a huge timeout");
        let start = Instant::now();
        let ready: Vec<_> = std::thread::scope(|scope| {
            scope.spawn(|| {
                std::thread::sleep(delay);
                (&wr).write_all(b"x").unwrap();
            });
            sel.select(Some(timeout))
                .unwrap()
                .map(|(k, ev)| (k.fd(), ev))
                .collect()
        });
        let elapsed = start.elapsed();
        assert_eq!(ready, [(rd.as_raw_fd(), EVENT_READ)], "{timeout:?}");
        assert!(elapsed >= delay, "{timeout:?} returned after {elapsed:?}");
        let mut byte = [0];
        std::io::Read::read_exact(&mut &rd, &mut byte).unwrap();
    }
}

per_backend!(
    bad_arguments,
    calls_after_close,
    timeout_sub_millisecond_rounds_up,
    timeout_huge_never_overflows,
);
