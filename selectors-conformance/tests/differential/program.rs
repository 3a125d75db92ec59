//! The random programs: their operations over a pool of socket pairs and
//! pipes, the notation failures print and
//! [`FIXED_PROGRAMS`](crate::FIXED_PROGRAMS) use, and the `proptest`
//! strategies that generate them.

use std::fmt;
use std::os::fd::RawFd;

use proptest::prelude::*;
use selectors::Events;

/// Socket pairs and pipes in the pool at the start of every program.
pub const INITIAL: [Kind; SLOTS] = [
    Kind::Socket,
    Kind::Socket,
    Kind::Socket,
    Kind::Pipe,
    Kind::Pipe,
];
pub const SLOTS: usize = 5;
pub const ENDS: usize = SLOTS * 2;
pub const MAX_WRITE: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Socket,
    Pipe,
}

/// One step of a program. `end` indexes the pool: slot `end / 2`, side
/// `end % 2` (for a pipe, side 0 is the read end and side 1 the write end).
/// An operation on a closed end uses the number it had, which may now be
/// free or belong to another file.
#[derive(Clone, Debug)]
pub enum Op {
    Register {
        end: usize,
        events: u8,
        data: u8,
    },
    /// `data: None` is `modify_events`.
    Modify {
        at: At,
        events: u8,
        data: Option<u8>,
    },
    /// Through `get_key_mut`.
    SetData {
        at: At,
        data: u8,
    },
    Unregister {
        at: At,
    },
    GetKey {
        at: At,
    },
    Write {
        end: usize,
        len: usize,
    },
    Read {
        end: usize,
        len: usize,
    },
    Shutdown {
        end: usize,
        how: How,
    },
    Close {
        end: usize,
        unregister_first: bool,
    },
    /// Closes what is left of the slot (without unregistering) and puts a
    /// new resource in it; the kernel hands out the lowest free numbers, so
    /// closed numbers come back.
    Reopen {
        slot: usize,
        kind: Kind,
    },
    /// `select(Some(Duration::ZERO))`, or `select_into` when `into`.
    Select {
        into: bool,
    },
    /// `Selector::waker` (the first call opens the wake-up channel).
    Waker,
    /// `Waker::wake` on the waker obtained so far (skipped if none).
    Wake,
    CloseSelector,
}

/// The descriptor a key operation names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    /// The number of end `n` of the pool (see [`Op`]).
    End(usize),
    /// The number of the `n % len`-th registered key, in registration order
    /// (of end 0 when nothing is registered).
    Key(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum How {
    Read,
    Write,
    Both,
}

/// Masks: mostly valid ones, sometimes the empty one.
fn mask_name(bits: u8) -> &'static str {
    ["-", "r", "w", "rw"][usize::from(bits & 3)]
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            At::End(n) => write!(f, "e{n}"),
            At::Key(n) => write!(f, "k{n}"),
        }
    }
}

/// The notation of failure reports and of [`FIXED_PROGRAMS`](crate::FIXED_PROGRAMS).
impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Op::Register { end, events, data } => {
                write!(f, "register {end} {} {data}", mask_name(events))
            }
            Op::Modify { at, events, data } => match data {
                Some(data) => write!(f, "modify {at} {} {data}", mask_name(events)),
                None => write!(f, "modify {at} {} _", mask_name(events)),
            },
            Op::SetData { at, data } => write!(f, "set_data {at} {data}"),
            Op::Unregister { at } => write!(f, "unregister {at}"),
            Op::GetKey { at } => write!(f, "get_key {at}"),
            Op::Write { end, len } => write!(f, "write {end} {len}"),
            Op::Read { end, len } => write!(f, "read {end} {len}"),
            Op::Shutdown { end, how } => {
                let how = match how {
                    How::Read => "rd",
                    How::Write => "wr",
                    How::Both => "both",
                };
                write!(f, "shutdown {end} {how}")
            }
            Op::Close {
                end,
                unregister_first: false,
            } => write!(f, "close {end}"),
            Op::Close {
                end,
                unregister_first: true,
            } => write!(f, "unregister_close {end}"),
            Op::Reopen { slot, kind } => {
                let kind = if kind == Kind::Socket {
                    "socket"
                } else {
                    "pipe"
                };
                write!(f, "reopen {slot} {kind}")
            }
            Op::Select { into: false } => f.write_str("select"),
            Op::Select { into: true } => f.write_str("select_into"),
            Op::Waker => f.write_str("waker"),
            Op::Wake => f.write_str("wake"),
            Op::CloseSelector => f.write_str("close_selector"),
        }
    }
}

/// Parses `;`-separated operations in the notation of [`Op`]'s `Display`,
/// optionally after `floors A B C D E` (see [`Program::floors`]).
pub fn parse_program(text: &str) -> Program {
    fn num(word: Option<&str>, text: &str) -> usize {
        word.and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("a number expected in {text:?}"))
    }
    fn mask(word: Option<&str>, text: &str) -> u8 {
        match word {
            Some("-") => 0,
            Some("r") => 1,
            Some("w") => 2,
            Some("rw") => 3,
            _ => panic!("a mask (- r w rw) expected in {text:?}"),
        }
    }
    fn at(word: Option<&str>, text: &str) -> At {
        match word.map(|w| w.split_at(1)) {
            Some(("e", n)) => At::End(num(Some(n), text)),
            Some(("k", n)) => At::Key(num(Some(n), text)),
            _ => panic!("eN or kN expected in {text:?}"),
        }
    }
    let mut clauses: Vec<&str> = text
        .split(';')
        .map(str::trim)
        .filter(|op| !op.is_empty())
        .collect();
    let mut floors = [0; SLOTS];
    if let Some(list) = clauses.first().and_then(|c| c.strip_prefix("floors ")) {
        let list: Vec<RawFd> = list
            .split_whitespace()
            .map(|w| num(Some(w), text) as RawFd)
            .collect();
        floors = list
            .try_into()
            .unwrap_or_else(|_| panic!("{SLOTS} floors expected in {text:?}"));
        clauses.remove(0);
    }
    let ops = clauses
        .into_iter()
        .map(|op| {
            let mut words = op.split_whitespace();
            match words.next().unwrap_or("") {
                "register" => Op::Register {
                    end: num(words.next(), op),
                    events: mask(words.next(), op),
                    data: num(words.next(), op) as u8,
                },
                "modify" => Op::Modify {
                    at: at(words.next(), op),
                    events: mask(words.next(), op),
                    data: match words.next() {
                        Some("_") => None,
                        word => Some(num(word, op) as u8),
                    },
                },
                "set_data" => Op::SetData {
                    at: at(words.next(), op),
                    data: num(words.next(), op) as u8,
                },
                "unregister" => Op::Unregister {
                    at: at(words.next(), op),
                },
                "get_key" => Op::GetKey {
                    at: at(words.next(), op),
                },
                "write" => Op::Write {
                    end: num(words.next(), op),
                    len: num(words.next(), op),
                },
                "read" => Op::Read {
                    end: num(words.next(), op),
                    len: num(words.next(), op),
                },
                "shutdown" => Op::Shutdown {
                    end: num(words.next(), op),
                    how: match words.next() {
                        Some("rd") => How::Read,
                        Some("wr") => How::Write,
                        Some("both") => How::Both,
                        _ => panic!("rd, wr or both expected in {op:?}"),
                    },
                },
                "close" => Op::Close {
                    end: num(words.next(), op),
                    unregister_first: false,
                },
                "unregister_close" => Op::Close {
                    end: num(words.next(), op),
                    unregister_first: true,
                },
                "reopen" => Op::Reopen {
                    slot: num(words.next(), op),
                    kind: match words.next() {
                        Some("socket") => Kind::Socket,
                        Some("pipe") => Kind::Pipe,
                        _ => panic!("socket or pipe expected in {op:?}"),
                    },
                },
                "select" => Op::Select { into: false },
                "select_into" => Op::Select { into: true },
                "waker" => Op::Waker,
                "wake" => Op::Wake,
                "close_selector" => Op::CloseSelector,
                other => panic!("unknown operation {other:?} in {text:?}"),
            }
        })
        .collect();
    Program { floors, ops }
}

fn mask_strategy() -> impl Strategy<Value = u8> {
    prop_oneof![1 => Just(0u8), 3 => Just(1u8), 3 => Just(2u8), 3 => Just(3u8)]
}

/// Mostly a registered key (so that most calls reach the kernel), sometimes
/// any end of the pool.
fn target_strategy() -> impl Strategy<Value = At> {
    prop_oneof![
        7 => (0..8usize).prop_map(At::Key),
        3 => (0..ENDS).prop_map(At::End),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let end = 0..ENDS;
    // Weights out of 200: closing the selector ends a program's interesting
    // part, so about one program in eight does it.
    prop_oneof![
        32 => (end.clone(), mask_strategy(), any::<u8>())
            .prop_map(|(end, events, data)| Op::Register { end, events, data }),
        24 => (target_strategy(), mask_strategy(), proptest::option::weighted(0.7, 0..4u8))
            .prop_map(|(at, events, data)| Op::Modify { at, events, data }),
        4 => (target_strategy(), any::<u8>()).prop_map(|(at, data)| Op::SetData { at, data }),
        14 => target_strategy().prop_map(|at| Op::Unregister { at }),
        6 => target_strategy().prop_map(|at| Op::GetKey { at }),
        24 => (end.clone(), 1..=MAX_WRITE).prop_map(|(end, len)| Op::Write { end, len }),
        20 => (end.clone(), 1..=2 * MAX_WRITE).prop_map(|(end, len)| Op::Read { end, len }),
        8 => (end.clone(), prop_oneof![Just(How::Read), Just(How::Write), Just(How::Both)])
            .prop_map(|(end, how)| Op::Shutdown { end, how }),
        16 => (end, any::<bool>())
            .prop_map(|(end, unregister_first)| Op::Close { end, unregister_first }),
        8 => (0..SLOTS, prop_oneof![Just(Kind::Socket), Just(Kind::Pipe)])
            .prop_map(|(slot, kind)| Op::Reopen { slot, kind }),
        34 => any::<bool>().prop_map(|into| Op::Select { into }),
        3 => Just(Op::Waker),
        6 => Just(Op::Wake),
        1 => Just(Op::CloseSelector),
    ]
}

/// A program: where each slot's descriptors are numbered from, and the
/// steps.
#[derive(Clone, Debug)]
pub struct Program {
    /// The resources of slot `i` get the lowest free numbers at or above
    /// `floors[i]` (`F_DUPFD`): 0 for the usual small numbers; others put
    /// them across a word of `select`'s bitmaps, across `FD_SETSIZE`, or
    /// far above everything else.
    pub floors: [RawFd; SLOTS],
    pub ops: Vec<Op>,
}

fn floor_strategy() -> impl Strategy<Value = RawFd> {
    prop_oneof![8 => Just(0), 1 => Just(62), 1 => Just(1022), 1 => Just(4000)]
}

pub fn program_strategy() -> impl Strategy<Value = Program> {
    (
        [
            floor_strategy(),
            floor_strategy(),
            floor_strategy(),
            floor_strategy(),
            floor_strategy(),
        ],
        proptest::collection::vec(op_strategy(), 1..48),
    )
        .prop_map(|(floors, ops)| Program { floors, ops })
}

pub fn events(bits: u8) -> Events {
    Events::from_bits(bits).expect("generated masks are 0..=3")
}

/// One step per line, then the whole program on one line in the notation
/// of [`FIXED_PROGRAMS`](crate::FIXED_PROGRAMS), ready to paste there.
impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let floors: Vec<String> = self.floors.iter().map(RawFd::to_string).collect();
        let floors = format!("floors {}", floors.join(" "));
        writeln!(f, "  {floors}")?;
        for (step, op) in self.ops.iter().enumerate() {
            writeln!(f, "  {step:>2}: {op}")?;
        }
        let ops: Vec<String> = self.ops.iter().map(Op::to_string).collect();
        write!(f, "  as one line: \"{floors}; {}\"", ops.join("; "))
    }
}
