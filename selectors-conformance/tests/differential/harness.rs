//! Runs a program against a real selector and the model side by side,
//! comparing every answer and, after each step, the whole state.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use nix::fcntl::{fcntl, FcntlArg};
use selectors::{Events, Result, Selector};

use crate::model::{KeySnap, Model};
use crate::program::{events, At, How, Kind, Op, Program, ENDS, INITIAL, MAX_WRITE, SLOTS};
use crate::util::{self, fail, outcome, Fail, Quirks};

/// The file objects of the random programs: a heap allocation per key, so
/// that AddressSanitizer (`cargo xtask sanitize`) sees every key the map
/// drops, moves or forgets.
pub type Obj = Box<RawFd>;

/// The real descriptors of the pool.
enum Handle {
    Socket(UnixStream),
    Pipe(File),
}

impl Handle {
    fn fd(&self) -> RawFd {
        match self {
            Handle::Socket(s) => s.as_raw_fd(),
            Handle::Pipe(f) => f.as_raw_fd(),
        }
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Handle::Socket(s) => (&*s).write(buf),
            Handle::Pipe(f) => (&*f).write(buf),
        }
    }

    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Handle::Socket(s) => (&*s).read(buf),
            Handle::Pipe(f) => (&*f).read(buf),
        }
    }
}

/// `fd` renumbered to the lowest free number at or above `floor`.
pub fn renumber(fd: OwnedFd, floor: RawFd) -> OwnedFd {
    if floor == 0 {
        return fd;
    }
    // nix's `fcntl` hands the duplicate back as a bare number: it has no
    // owned duplicate with a floor.
    let new = fcntl(&fd, FcntlArg::F_DUPFD_CLOEXEC(floor)).expect("F_DUPFD_CLOEXEC");
    // SAFETY: `new` was just returned by fcntl, is open and owned by nobody
    // else. Dropping `fd` closes the old number.
    unsafe { OwnedFd::from_raw_fd(new) }
}

fn open_resource(kind: Kind, floor: RawFd) -> [Handle; 2] {
    match kind {
        Kind::Socket => {
            let (a, b) = util::socketpair();
            [a, b].map(|s| Handle::Socket(UnixStream::from(renumber(s.into(), floor))))
        }
        Kind::Pipe => {
            let (r, w) = util::pipe().expect("pipe");
            [r, w].map(|f| Handle::Pipe(File::from(renumber(f.into(), floor))))
        }
    }
}

struct Pool {
    floors: [RawFd; SLOTS],
    ends: Vec<Option<Handle>>,
    waker: Option<selectors::Waker>,
}

impl Pool {
    fn open(&mut self, model: &mut Model, slot: usize, kind: Kind) {
        let [a, b] = open_resource(kind, self.floors[slot]);
        model.open(slot, kind, [a.fd(), b.fd()]);
        if slot * 2 == self.ends.len() {
            self.ends.push(Some(a));
            self.ends.push(Some(b));
        } else {
            self.ends[slot * 2] = Some(a);
            self.ends[slot * 2 + 1] = Some(b);
        }
    }

    fn close(&mut self, model: &mut Model, end: usize) {
        if self.ends[end].take().is_some() {
            model.close_end(end);
        }
    }
}

fn io_fail(err: &io::Error) -> Fail {
    Fail::Os(err.raw_os_error().unwrap_or(-1))
}

pub fn snap<F, T: Copy>(key: &selectors::SelectorKey<F, T>) -> (RawFd, Events, T) {
    (key.fd(), key.events(), *key.data())
}

pub fn same<T: PartialEq + fmt::Debug>(
    what: &str,
    actual: T,
    expected: T,
) -> std::result::Result<(), String> {
    if actual == expected {
        Ok(())
    } else {
        Err(format!(
            "{what}: got {actual:?}, the model says {expected:?}"
        ))
    }
}

/// Runs `program` on `sel` and on the model side by side; the first
/// divergence is the error.
pub fn run_program<S: Selector<Obj, u8> + ?Sized>(
    sel: &mut S,
    quirks: Quirks,
    program: &Program,
) -> std::result::Result<(), String> {
    let mut model = Model::new(quirks);
    let mut pool = Pool {
        floors: program.floors,
        ends: Vec::new(),
        waker: None,
    };
    for (slot, &kind) in INITIAL.iter().enumerate() {
        pool.open(&mut model, slot, kind);
    }
    let mut buf = vec![0u8; 2 * MAX_WRITE];
    let mut ready_into = Vec::new();
    for (step, op) in program.ops.iter().enumerate() {
        step_once(sel, &mut model, &mut pool, &mut buf, &mut ready_into, op)
            .and_then(|()| check_state(sel, &model))
            .map_err(|e| {
                let fds: Vec<String> = (0..ENDS)
                    .map(|end| {
                        let m = model.end(end);
                        let state = if m.open { "" } else { " (closed)" };
                        format!("end {end} = fd {}{state}", m.fd)
                    })
                    .collect();
                format!(
                    "{} backend, step {step} (`{op}`): {e}\n  pool: [{}]",
                    sel.backend(),
                    fds.join(", ")
                )
            })?;
    }
    Ok(())
}

/// Runs one operation on `sel`, the pool and the model, and compares what
/// they answer.
fn step_once<S: Selector<Obj, u8> + ?Sized>(
    sel: &mut S,
    model: &mut Model,
    pool: &mut Pool,
    buf: &mut [u8],
    ready_into: &mut Vec<(RawFd, Events)>,
    op: &Op,
) -> std::result::Result<(), String> {
    match *op {
        Op::Register { .. }
        | Op::Modify { .. }
        | Op::SetData { .. }
        | Op::Unregister { .. }
        | Op::GetKey { .. } => key_step(sel, model, op),
        Op::Write { .. }
        | Op::Read { .. }
        | Op::Shutdown { .. }
        | Op::Close { .. }
        | Op::Reopen { .. } => pool_step(sel, model, pool, buf, op),
        Op::Select { into } => {
            let expected = model.select();
            let actual = if into {
                select_into_list(sel, ready_into)?
            } else {
                select_list(sel)?
            };
            let actual = actual.map(|mut list| {
                list.sort_unstable_by_key(|&(fd, _)| fd);
                (list, sel.was_woken())
            });
            if let Ok((list, _)) = &actual {
                if list.windows(2).any(|w| w[0].0 == w[1].0) {
                    return Err(format!("a descriptor is reported twice: {list:?}"));
                }
            }
            same("select (ready list, was_woken)", actual, expected)
        }
        Op::Waker => waker_step(sel, model, pool),
        Op::Wake => {
            if let Some(waker) = &pool.waker {
                let expected = model.check_open();
                same("wake", outcome(waker.wake()), expected)?;
                model.wake_pending |= expected.is_ok();
            }
            Ok(())
        }
        Op::CloseSelector => {
            sel.close().map_err(|e| format!("close failed: {e}"))?;
            model.closed = true;
            model.keys.clear();
            Ok(())
        }
    }
}

/// The number a key operation names (see [`At`]).
fn fd_at(model: &Model, at: At) -> RawFd {
    match at {
        At::End(end) => model.end(end).fd,
        At::Key(_) if model.keys.is_empty() => model.end(0).fd,
        At::Key(n) => model.keys[n % model.keys.len()].fd,
    }
}

/// `unregister(fd)`, on the selector and the model (`what` names it).
fn unregister<S: Selector<Obj, u8> + ?Sized>(
    sel: &mut S,
    model: &mut Model,
    fd: RawFd,
    what: &str,
) -> std::result::Result<(), String> {
    let actual = outcome(sel.unregister(fd).map(|key| snap(&key)));
    same(what, actual, model.unregister(fd))
}

/// `register`, `modify`, `get_key_mut`, `unregister`, `get_key`.
fn key_step<S: Selector<Obj, u8> + ?Sized>(
    sel: &mut S,
    model: &mut Model,
    op: &Op,
) -> std::result::Result<(), String> {
    match *op {
        Op::Register {
            end,
            events: bits,
            data,
        } => {
            let fd = model.end(end).fd;
            let actual = outcome(sel.register(Box::new(fd), events(bits), data).map(snap));
            same("register", actual, model.register(fd, events(bits), data))
        }
        Op::Modify {
            at,
            events: bits,
            data,
        } => {
            let fd = fd_at(model, at);
            let actual = match data {
                Some(data) => sel.modify(fd, events(bits), data).map(snap),
                None => sel.modify_events(fd, events(bits)).map(snap),
            };
            same(
                "modify",
                outcome(actual),
                model.modify(fd, events(bits), data),
            )
        }
        Op::SetData { at, data } => {
            let fd = fd_at(model, at);
            let actual = sel.get_key_mut(fd).map(|mut key| *key.data_mut() = data);
            same("get_key_mut", outcome(actual), model.set_data(fd, data))
        }
        Op::Unregister { at } => unregister(sel, model, fd_at(model, at), "unregister"),
        Op::GetKey { at } => {
            let fd = fd_at(model, at);
            let actual = outcome(sel.get_key(fd).map(snap));
            same("get_key", actual, model.get_key(fd))
        }
        _ => unreachable!("not a key operation: {op}"),
    }
}

/// Reads and writes, shutdowns, closing an end, replacing a resource.
fn pool_step<S: Selector<Obj, u8> + ?Sized>(
    sel: &mut S,
    model: &mut Model,
    pool: &mut Pool,
    buf: &mut [u8],
    op: &Op,
) -> std::result::Result<(), String> {
    match *op {
        Op::Write { end, len } => {
            if let Some(expected) = model.write(end, len) {
                let handle = pool.ends[end].as_ref().expect("the model says it is open");
                let actual = handle.write(&buf[..len]).map_err(|e| io_fail(&e));
                same("write", actual, expected)?;
            }
        }
        Op::Read { end, len } => {
            if let Some(expected) = model.read(end, len) {
                let handle = pool.ends[end].as_ref().expect("the model says it is open");
                let actual = handle.read(&mut buf[..len]).map_err(|e| io_fail(&e));
                same("read", actual, expected)?;
            }
        }
        Op::Shutdown { end, how } => {
            if model.shutdown(end, how).is_some() {
                let Some(Handle::Socket(socket)) = pool.ends[end].as_ref() else {
                    return Err("harness: shutdown of a non-socket".into());
                };
                let how = match how {
                    How::Read => Shutdown::Read,
                    How::Write => Shutdown::Write,
                    How::Both => Shutdown::Both,
                };
                socket
                    .shutdown(how)
                    .map_err(|e| format!("shutdown failed: {e}"))?;
            }
        }
        Op::Close {
            end,
            unregister_first,
        } => {
            if unregister_first {
                let fd = model.end(end).fd;
                unregister(sel, model, fd, "unregister before close")?;
            }
            pool.close(model, end);
        }
        Op::Reopen { slot, kind } => {
            pool.close(model, slot * 2);
            pool.close(model, slot * 2 + 1);
            pool.open(model, slot, kind);
        }
        _ => unreachable!("not a pool operation: {op}"),
    }
    Ok(())
}

/// `select(Some(Duration::ZERO))`: the ready list, or the failure; `Err`
/// if the `Ready` iterator contradicts itself or the selector.
fn select_list<S: Selector<Obj, u8> + ?Sized>(
    sel: &mut S,
) -> std::result::Result<std::result::Result<Vec<(RawFd, Events)>, Fail>, String> {
    Ok(match sel.select(Some(Duration::ZERO)) {
        Ok(ready) => {
            let (len, woken) = (ready.len(), ready.was_woken());
            let list: Vec<_> = ready.map(|(key, ev)| (key.fd(), ev)).collect();
            if list.len() != len {
                return Err(format!("Ready::len() {len} for {list:?}"));
            }
            if woken != sel.was_woken() {
                return Err("Ready::was_woken() != Selector::was_woken()".into());
            }
            Ok(list)
        }
        Err(e) => Err(fail(&e)),
    })
}

/// As [`select_list`], through `select_into` and the caller's list
/// `ready_into` (which it must clear, and leave empty on failure).
fn select_into_list<S: Selector<Obj, u8> + ?Sized>(
    sel: &mut S,
    ready_into: &mut Vec<(RawFd, Events)>,
) -> std::result::Result<std::result::Result<Vec<(RawFd, Events)>, Fail>, String> {
    ready_into.clear();
    ready_into.push((-7, Events::ALL)); // must be cleared
    Ok(match sel.select_into(ready_into, Some(Duration::ZERO)) {
        Ok(n) if n != ready_into.len() => {
            return Err(format!("select_into returned {n} for {ready_into:?}"));
        }
        Ok(_) => Ok(ready_into.clone()),
        Err(e) if !ready_into.is_empty() => {
            return Err(format!("select_into failed ({e}) but left {ready_into:?}"));
        }
        Err(e) => Err(fail(&e)),
    })
}

/// `Selector::waker`: the descriptor it opens (at most one, the first
/// time) is the model's to track.
fn waker_step<S: Selector<Obj, u8> + ?Sized>(
    sel: &mut S,
    model: &mut Model,
    pool: &mut Pool,
) -> std::result::Result<(), String> {
    let before = util::open_fds();
    let actual = sel.waker();
    let opened = util::opened_since(&before);
    let expected = model.check_open();
    same("waker", actual.as_ref().map(drop).map_err(fail), expected)?;
    if opened.len() > 1 {
        return Err(format!("waker() opened {opened:?}"));
    }
    model.waker(opened.first().copied())?;
    if let Ok(waker) = actual {
        pool.waker.get_or_insert(waker);
    }
    Ok(())
}

/// After every step: the key map equals the model's, in registration order,
/// through every accessor; and the harness itself is sound (every number
/// the model thinks open is open, every other one it tracks is closed).
fn check_state<S: Selector<Obj, u8> + ?Sized>(
    sel: &S,
    model: &Model,
) -> std::result::Result<(), String> {
    let map = sel.get_map();
    let actual: Vec<KeySnap> = map.iter().map(snap).collect();
    let expected: Vec<KeySnap> = model
        .keys
        .iter()
        .map(|k| (k.fd, k.events, k.data))
        .collect();
    same("the key map", actual, expected)?;
    same("map.len()", map.len(), model.keys.len())?;
    same("map.is_empty()", map.is_empty(), model.keys.is_empty())?;
    same("is_closed()", sel.is_closed(), model.closed)?;
    let fds: Vec<RawFd> = map.fds().collect();
    let rev: Vec<RawFd> = map.fds().rev().collect();
    same(
        "map.fds().rev()",
        rev,
        fds.iter().rev().copied().collect::<Vec<_>>(),
    )?;
    for end in 0..ENDS {
        let fd = model.end(end).fd;
        let key = model.key(fd);
        same("map.contains()", map.contains(fd), key.is_some())?;
        same(
            "map.get()",
            map.get(fd).map(snap),
            key.map(|k| (k.fd, k.events, k.data)),
        )?;
        same("map.events()", map.events(fd), key.map(|k| k.events))?;
        if !model.closed {
            same(
                "get_key()",
                outcome(sel.get_key(fd).map(snap)),
                model.get_key(fd),
            )?;
        }
        if util::is_open(fd) != (model.owner(fd).is_some() || model.waker_fd == Some(fd)) {
            return Err(format!(
                "harness: fd {fd} is {} but the model disagrees (a foreign descriptor?)",
                if util::is_open(fd) { "open" } else { "closed" }
            ));
        }
    }
    Ok(())
}

/// Runs `test` on a new selector, and drops it.
///
/// For kqueue on libkqueue, then waits (up to 5 s) until the selector's
/// descriptors are closed: libkqueue deviation, its monitoring thread
/// closes them a moment after the kqueue descriptor (see
/// `util::await_fds`), and a number it frees while the next program runs
/// would look like a descriptor that program opened or closed.
pub fn with_selector<S: Selector<Obj, u8>, R>(
    new: &impl Fn() -> Result<S>,
    quirks: Quirks,
    test: impl FnOnce(&mut S) -> R,
) -> R {
    util::libkqueue_anchor();
    let before = quirks.libkqueue.then(util::open_fds);
    let mut sel = util::open(new, quirks);
    let libkqueue = quirks.libkqueue;
    let result = test(&mut sel);
    drop(sel);
    if let (Some(before), true) = (before, libkqueue) {
        util::await_fds(&before, true);
    }
    result
}
