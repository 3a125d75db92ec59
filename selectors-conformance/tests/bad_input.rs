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
//! Linux: these tests rely on its kernel's rules, epoll and `/proc`.
//! kqueue joins in as libkqueue's emulation, under `--cfg
//! selectors_libkqueue`, and /dev/poll as the emulation of its
//! driver, under `--cfg selectors_devpoll_emulation` (see `util`).
//!
//! Windows: the same table for Winsock's select (the default backend
//! there, and boxed), with what differs said where it does: one invalid
//! value (`INVALID_SOCKET`) where Unix has every negative number, Winsock's
//! `WSAENOTSOCK` where Unix says `EBADF`, a file's handle where Unix
//! registers files, and no rows for the waker's socket, which Windows gives
//! no way to find (no `/proc` to list what `waker()` opened).
#![cfg(any(has_epoll, windows))]

#[macro_use]
mod util;

use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use selectors::{Events, FileObject, RawFd, Result, Selector, EVENT_READ, EVENT_WRITE};
use selectors_conformance::{ready_fds, AsRawFd, Stream, BAD_FD, CLOSED_ERRNO, UNUSED_FD};
use util::{open, Fail, Kind, Quirks};

/// The table test closes descriptors, probes numbers that must stay free,
/// and finds the waker's descriptor by what `waker()` opens: every test of
/// this binary holds this lock while it opens descriptors.
static SERIAL: Mutex<()> = Mutex::new(());

type Obj = Box<dyn FileObject>;
type Snapshot = Vec<(RawFd, Events, &'static str)>;

/// What a call must return: `Ok(())`, or an error of this kind.
type Expect = std::result::Result<(), Fail>;

fn kind<T>(result: &Result<T>) -> Expect {
    result.as_ref().map(drop).map_err(util::fail)
}

fn snapshot<S: Selector<Obj, &'static str>>(sel: &S) -> Snapshot {
    sel.get_map()
        .iter()
        .map(|k| (k.fd(), k.events(), *k.data()))
        .collect()
}

/// A number no descriptor of this process has, far above the ones in use
/// (on Windows, a handle value no socket of this process has).
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

/// Registers the object `obj` (a clone of it each call), for both events.
#[cfg(unix)]
fn register_object<T: FileObject + Send + Sync + 'static>(
    obj: &Arc<T>,
) -> impl Fn(&mut Dyn<'_>) -> Expect {
    let obj = Arc::clone(obj);
    move |sel| kind(&sel.register(Box::new(Arc::clone(&obj)), Events::ALL, "new"))
}

/// The selector the table runs on, in the state every call must leave it
/// in: a reader with data pending, a writer, a waker.
struct Baseline {
    /// The descriptors the selector opened for itself (epoll's instance).
    #[cfg(unix)]
    own: Vec<RawFd>,
    reader: Arc<Stream>,
    /// The peers of the reader (which wrote its pending data) and of the
    /// writer: open until the end.
    peers: (Stream, Stream),
    writer: RawFd,
    waker: selectors::Waker,
    /// The waker's descriptor (not known on Windows: see the module docs).
    #[cfg(unix)]
    waker_fd: RawFd,
    keys: Snapshot,
    ready: Vec<(RawFd, Events)>,
}

/// Opens the selector with `new` and brings it to its [`Baseline`].
fn baseline<S: Selector<Obj, &'static str>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) -> (S, Baseline) {
    #[cfg(unix)]
    let before = util::open_fds();
    let mut sel = open(&new, quirks);
    // The kernel object of the backends that have one (epoll).
    #[cfg(unix)]
    let own = util::opened_since(&before);
    let (reader, reader_peer) = util::socketpair();
    let (writer, writer_peer) = util::socketpair();
    (&reader_peer).write_all(b"pending").unwrap();
    let reader = Arc::new(reader);
    let (rfd, wfd) = (reader.as_raw_fd(), writer.as_raw_fd());
    sel.register(Box::new(Arc::clone(&reader)), EVENT_READ, "reader")
        .unwrap();
    sel.register(Box::new(writer), EVENT_WRITE, "writer")
        .unwrap();
    #[cfg(unix)]
    let before = util::open_fds();
    let waker = sel.waker().unwrap();
    #[cfg(unix)]
    let opened = util::opened_since(&before);
    #[cfg(unix)]
    let [waker_fd] = opened[..] else {
        panic!("waker() opened {opened:?}");
    };
    let keys = snapshot(&sel);
    let mut ready = vec![(rfd, EVENT_READ), (wfd, EVENT_WRITE)];
    ready.sort_unstable_by_key(|&(fd, _)| fd);
    assert_eq!(ready_fds(&mut sel, Some(Duration::ZERO)), ready);
    let baseline = Baseline {
        #[cfg(unix)]
        own,
        reader,
        peers: (reader_peer, writer_peer),
        writer: wfd,
        waker,
        #[cfg(unix)]
        waker_fd,
        keys,
        ready,
    };
    (sel, baseline)
}

/// The register rows: the mask first, then the number, then duplicates,
/// then the kernel. `open_fd` is open and unregistered, `free_fd` never
/// opened, `closed` closed a moment ago.
fn register_cases(base: &Baseline, open_fd: RawFd, free_fd: RawFd, closed: RawFd) -> Vec<Case> {
    use Fail::*;
    // EBADF; WSAENOTSOCK on Windows (a closed handle is no socket).
    let ebadf = Err(Os(CLOSED_ERRNO));
    let (rfd, wfd) = (base.reader.as_raw_fd(), base.writer);
    vec![
        case(
            "register, empty mask",
            Err(InvalidEvents),
            register(open_fd, Events::EMPTY),
        ),
        case(
            "register, empty mask and fd BAD_FD",
            Err(InvalidEvents),
            register(BAD_FD, Events::EMPTY),
        ),
        case(
            "register, fd BAD_FD",
            Err(InvalidFd),
            register(BAD_FD, EVENT_READ),
        ),
        case(
            "register, fd UNUSED_FD",
            ebadf,
            register(UNUSED_FD, EVENT_READ),
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
            Err(AlreadyRegistered),
            register(wfd, EVENT_WRITE),
        ),
        case("register, the same object again", Err(AlreadyRegistered), {
            let reader = Arc::clone(&base.reader);
            move |sel| kind(&sel.register(Box::new(Arc::clone(&reader)), EVENT_READ, "bad"))
        }),
        // The key holds the socket; this object is a bare number.
        case(
            "register, the same fd through another object",
            Err(AlreadyRegistered),
            register(rfd, EVENT_READ),
        ),
    ]
}

/// The rows only Unix has: numbers that are invalid there besides -1
/// (every negative one; Windows has one invalid value only), and the
/// waker's descriptor, which Windows gives no way to find.
#[cfg(unix)]
fn unix_cases(base: &Baseline) -> Vec<Case> {
    use Fail::*;
    let waker_fd = base.waker_fd;
    vec![
        case(
            "register, fd i32::MIN",
            Err(InvalidFd),
            register(i32::MIN, Events::ALL),
        ),
        case(
            "register, the waker's fd",
            Err(AlreadyRegistered),
            register(waker_fd, EVENT_READ),
        ),
        case(
            "unregister, the waker's fd",
            Err(NotRegistered),
            move |sel| kind(&sel.unregister(waker_fd)),
        ),
        case("modify, fd i32::MIN", Err(NotRegistered), |sel| {
            kind(&sel.modify(i32::MIN, EVENT_READ, "x"))
        }),
        case(
            "modify_events, the waker's fd",
            Err(NotRegistered),
            move |sel| kind(&sel.modify_events(waker_fd, EVENT_WRITE)),
        ),
        case("get_key_mut, fd i32::MIN", Err(NotRegistered), |sel| {
            kind(&sel.get_key_mut(i32::MIN).map(|_| ()))
        }),
        case(
            "get_key_mut, the waker's fd",
            Err(NotRegistered),
            move |sel| kind(&sel.get_key_mut(waker_fd).map(|_| ())),
        ),
    ]
}

/// Descriptors of kinds some kernels refuse (opened here, kept open by the
/// rows).
#[cfg(unix)]
fn file_kind_cases() -> Vec<Case> {
    use std::fs::File;
    use Fail::*;
    let file = Arc::new(File::open(std::env::current_exe().unwrap()).unwrap());
    let dir = Arc::new(File::open(env!("CARGO_MANIFEST_DIR")).unwrap());
    let devnull = Arc::new(File::open("/dev/null").unwrap());
    vec![
        // Files without poll support: epoll refuses them (EPERM); poll(2)
        // and select(2) report them always ready. kqueue watches regular
        // files (ready to read until the end of the file, which the file
        // position here is far from, and always ready to write); libkqueue
        // does so with an eventfd standing in for the file.
        Case {
            name: "register, a regular file",
            expect: (Err(Os(libc::EPERM)), Ok(()), Ok(())),
            call: Box::new(register_object(&file)),
        },
        Case {
            name: "register, a directory",
            // libkqueue deviation: it refuses a descriptor of a type it does
            // not handle, a directory among them, with EBADF; a kernel
            // kqueue watches a directory as the vnode it is. (kqueue runs in
            // this Linux-only binary on libkqueue only.)
            expect: (Err(Os(libc::EPERM)), Ok(()), Err(Os(libc::EBADF))),
            call: Box::new(register_object(&dir)),
        },
        Case {
            name: "register, /dev/null",
            // libkqueue hands a character device to epoll, which refuses
            // it. (kqueue runs in this Linux-only binary on libkqueue only.)
            expect: (Err(Os(libc::EPERM)), Ok(()), Err(Os(libc::EPERM))),
            call: Box::new(register_object(&devnull)),
        },
    ]
}

/// Handles of kinds Winsock's select refuses: anything but a socket, here
/// an open file's (a `File` is no file object on Windows, so its handle
/// goes in as a bare number), refused with `WSAENOTSOCK`.
#[cfg(windows)]
fn file_kind_cases() -> Vec<Case> {
    use std::os::windows::io::AsRawHandle;
    let file = std::fs::File::open(std::env::current_exe().unwrap()).unwrap();
    let handle = file.as_raw_handle() as RawFd;
    vec![case(
        "register, a file's handle",
        Err(Fail::Os(CLOSED_ERRNO)),
        move |sel| {
            let _open = &file; // kept open by the row
            kind(&sel.register(Box::new(handle), Events::ALL, "bad"))
        },
    )]
}

/// unregister, modify and the look-ups, of unknown descriptors and with
/// bad masks.
fn key_cases(base: &Baseline, open_fd: RawFd, free_fd: RawFd) -> Vec<Case> {
    use Fail::*;
    let (rfd, wfd) = (base.reader.as_raw_fd(), base.writer);
    vec![
        case("unregister, fd BAD_FD", Err(NotRegistered), |sel| {
            kind(&sel.unregister(BAD_FD))
        }),
        case("unregister, fd UNUSED_FD", Err(NotRegistered), |sel| {
            kind(&sel.unregister(UNUSED_FD))
        }),
        case(
            "unregister, an open, unregistered fd",
            Err(NotRegistered),
            move |sel| kind(&sel.unregister(open_fd)),
        ),
        case(
            "unregister, a never-opened fd",
            Err(NotRegistered),
            move |sel| kind(&sel.unregister(free_fd)),
        ),
        case("modify, fd BAD_FD", Err(NotRegistered), |sel| {
            kind(&sel.modify(BAD_FD, EVENT_READ, "x"))
        }),
        case(
            "modify, an unregistered fd",
            Err(NotRegistered),
            move |sel| kind(&sel.modify(open_fd, EVENT_READ, "x")),
        ),
        case("modify, empty mask", Err(InvalidEvents), move |sel| {
            kind(&sel.modify(rfd, Events::EMPTY, "x"))
        }),
        case(
            "modify_events, empty mask",
            Err(InvalidEvents),
            move |sel| kind(&sel.modify_events(wfd, Events::EMPTY)),
        ),
        case(
            "modify, empty mask and an unknown fd",
            Err(InvalidEvents),
            |sel| kind(&sel.modify(UNUSED_FD, Events::EMPTY, "x")),
        ),
        case("get_key, fd BAD_FD", Err(NotRegistered), |sel| {
            kind(&sel.get_key(BAD_FD))
        }),
        case("get_key, fd UNUSED_FD", Err(NotRegistered), |sel| {
            kind(&sel.get_key(UNUSED_FD))
        }),
        case(
            "get_key, a never-opened fd",
            Err(NotRegistered),
            move |sel| kind(&sel.get_key(free_fd)),
        ),
        case("get_key_mut, fd BAD_FD", Err(NotRegistered), |sel| {
            kind(&sel.get_key_mut(BAD_FD).map(|_| ()))
        }),
    ]
}

/// Runs one row on `sel` and checks its answer, then that the selector is
/// still exactly at `base`.
fn check_case<S: Selector<Obj, &'static str>>(
    sel: &mut S,
    quirks: Quirks,
    base: &Baseline,
    case: &Case,
) {
    let expect = match quirks.kind {
        Kind::Epoll => case.expect.0,
        Kind::Kqueue => case.expect.2,
        _ => case.expect.1,
    };
    let got = (case.call)(sel);
    assert_eq!(got, expect, "{:?}: {}", quirks.kind, case.name);
    let map = snapshot(sel);
    if got.is_ok() {
        // Only a new registration succeeds here: exactly one key more.
        assert_eq!(map.len(), base.keys.len() + 1, "{}", case.name);
        assert_eq!(&map[..base.keys.len()], &base.keys[..], "{}", case.name);
        let (fd, events, _) = map[base.keys.len()];
        assert_eq!(events, Events::ALL);
        // Always ready, both ways, until unregistered.
        let list = ready_fds(sel, Some(Duration::ZERO));
        assert!(list.contains(&(fd, Events::ALL)), "{}: {list:?}", case.name);
        sel.unregister(fd).unwrap();
    }
    assert_eq!(snapshot(sel), base.keys, "{}: the map changed", case.name);
    for &(fd, events, data) in &base.keys {
        let key = sel.get_key(fd).unwrap();
        assert_eq!((key.fd(), key.events(), *key.data()), (fd, events, data));
    }
    assert_eq!(
        ready_fds(sel, Some(Duration::ZERO)),
        base.ready,
        "{}: select afterwards",
        case.name
    );
    assert!(!sel.was_woken(), "{}", case.name);
}

fn bad_arguments<S: Selector<Obj, &'static str>>(new: impl Fn() -> Result<S>, quirks: Quirks) {
    let _serial = util::lock(&SERIAL);
    let (mut sel, base) = baseline(new, quirks);
    // First the files, which the kernel numbers with the lowest free
    // numbers: `closed` must stay free.
    let file_kinds = file_kind_cases();
    let unregistered = util::socketpair();
    let (free_fd, closed) = (never_opened(), closed_fd());
    let open_fd = unregistered.0.as_raw_fd();

    let mut table = register_cases(&base, open_fd, free_fd, closed);
    table.extend(file_kinds);
    table.extend(key_cases(&base, open_fd, free_fd));
    #[cfg(unix)]
    table.extend(unix_cases(&base));
    #[cfg(unix)]
    if let (Kind::Epoll, [epfd]) = (quirks.kind, &base.own[..]) {
        // An epoll instance cannot watch itself (EINVAL). (A kqueue can
        // watch itself for reading, and libkqueue's opens several
        // descriptors.)
        table.push(case(
            "register, the selector's own fd",
            Err(Fail::Os(libc::EINVAL)),
            register(*epfd, EVENT_READ),
        ));
    }
    for case in &table {
        check_case(&mut sel, quirks, &base, case);
    }
    // The waker still works after all that.
    base.waker.wake().unwrap();
    assert_eq!(ready_fds(&mut sel, Some(Duration::ZERO)), base.ready);
    assert!(sel.was_woken());
    drop((base.peers, unregistered));
}

/// After `close`, every call but `close`, `is_closed`, `get_map` fails with
/// `Closed` (whatever its arguments, valid or not), and changes nothing.
fn calls_after_close<S: Selector<Obj, &'static str>>(new: impl Fn() -> Result<S>, quirks: Quirks) {
    let _serial = util::lock(&SERIAL);
    let mut sel = open(&new, quirks);
    let (a, b) = util::socketpair();
    let afd = a.as_raw_fd();
    sel.register(Box::new(a), Events::ALL, "a").unwrap();
    let waker = sel.waker().unwrap();
    sel.close().unwrap();
    // `select(None)` on a closed selector must fail, not block.
    let _watchdog = util::Watchdog::new(Duration::from_secs(30), "calls after close");
    let closed = |what: &str, got: Expect| assert_eq!(got, Err(Fail::Closed), "{what}");
    for fd in [afd, b.as_raw_fd(), BAD_FD, UNUSED_FD] {
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
    assert_eq!(kind(&sel.close()), Ok(()), "closing twice");
    assert!(sel.is_closed());
}

// ---------------------------------------------------------------- timeouts

/// A selector with one registration that is never ready, and the lock that
/// keeps the calling test apart from `bad_arguments`, which compares the
/// descriptors open before and after a call: held until the test has closed
/// its own (locals drop in reverse order, the guard last).
fn idle<S: Selector<RawFd, ()>>(
    new: &impl Fn() -> Result<S>,
    quirks: Quirks,
) -> (MutexGuard<'static, ()>, S, Stream, Stream) {
    let serial = util::lock(&SERIAL);
    let mut sel = open(&new, quirks);
    let (rd, wr) = util::socketpair();
    sel.register(rd.as_raw_fd(), EVENT_READ, ()).unwrap();
    (serial, sel, rd, wr)
}

/// 1 ns and 999,999 ns are rounded up (to 1 ms on the millisecond
/// backends, 1 µs on select): never an early return, and never a busy loop
/// (a wait rounded down to 0 would spin, retried, until the deadline: no
/// voluntary context switch at all; on Windows, which counts none, the
/// thread's CPU time would grow as fast as the clock).
fn timeout_sub_millisecond_rounds_up<S: Selector<RawFd, ()>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    let (_serial, mut sel, _rd, _wr) = idle(&new, quirks);
    for timeout in [Duration::from_nanos(999_999), Duration::from_micros(1500)] {
        let calls: i64 = 100;
        #[cfg(unix)]
        let switches = util::voluntary_switches();
        #[cfg(windows)]
        let (cpu, wall) = (util::thread_cpu_time(), Instant::now());
        for _ in 0..calls {
            let start = Instant::now();
            assert_eq!(sel.select(Some(timeout)).unwrap().len(), 0);
            let elapsed = start.elapsed();
            assert!(elapsed >= timeout, "{timeout:?} returned after {elapsed:?}");
            assert!(elapsed < Duration::from_secs(2), "{timeout:?}: {elapsed:?}");
        }
        #[cfg(unix)]
        {
            let slept = util::voluntary_switches() - switches;
            assert!(
                slept >= calls / 2,
                "{timeout:?}: only {slept} sleeps in {calls} selects: a busy loop"
            );
        }
        #[cfg(windows)]
        {
            let (cpu, wall) = (util::thread_cpu_time() - cpu, wall.elapsed());
            assert!(
                cpu < wall / 2,
                "{timeout:?}: {cpu:?} of CPU in {wall:?} of {calls} selects: a busy loop"
            );
        }
    }
    let start = Instant::now();
    assert_eq!(sel.select(Some(Duration::from_nanos(1))).unwrap().len(), 0);
    assert!(start.elapsed() < Duration::from_secs(2));
}

/// Timeouts beyond what any kernel interface takes (`Duration::MAX`, more
/// than `c_int::MAX` ms, more than 10^8 s) clamp to a long wait: they never
/// overflow into a short, zero or negative one. Each waits until a byte
/// arrives 150 ms later, and must report it.
fn timeout_huge_never_overflows<S: Selector<RawFd, ()>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    let (_serial, mut sel, rd, wr) = idle(&new, quirks);
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
        let ready = std::thread::scope(|scope| {
            scope.spawn(|| {
                std::thread::sleep(delay);
                (&wr).write_all(b"x").unwrap();
            });
            ready_fds(&mut sel, Some(timeout))
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
