//! The scaling picture: cost of one select against the number of idle
//! registered descriptors, log-log, one line per implementation. Plain SVG
//! text, no dependencies.

use std::fmt::Write as _;

use crate::run::{Cell, Impl};

const WIDTH: f64 = 860.0;
const HEIGHT: f64 = 520.0;
const LEFT: f64 = 82.0;
const RIGHT: f64 = 640.0;
const TOP: f64 = 70.0;
const BOTTOM: f64 = 450.0;

/// Colour and dash per implementation: one hue per family (epoll blue, poll
/// orange, select red), the raw syscalls dashed in their family's hue.
fn style(name: &str) -> (&'static str, &'static str, f64) {
    match name {
        "default" => ("#1f4e9c", "", 3.0),
        "epoll" => ("#4f8fd6", "", 1.5),
        "dyn" => ("#8cb9e8", "", 1.5),
        "raw-epoll" => ("#0b1f45", "6 4", 1.8),
        "mio" => ("#2e9e4f", "", 1.8),
        "polling" => ("#8e44ad", "", 1.8),
        "poll" => ("#e67e22", "", 2.5),
        "raw-poll" => ("#a04f00", "6 4", 1.8),
        "select" => ("#d0312d", "", 2.5),
        "raw-select" => ("#7d0f0c", "6 4", 1.8),
        _ => ("#555555", "2 3", 1.5),
    }
}

fn human(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.3} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

fn decade_label(exp: i32) -> String {
    match exp {
        e if e < 3 => format!("{} ns", 10f64.powi(e)),
        e if e < 6 => format!("{} µs", 10f64.powi(e - 3)),
        e if e < 9 => format!("{} ms", 10f64.powi(e - 6)),
        e => format!("{} s", 10f64.powi(e - 9)),
    }
}

/// The SVG for the `idle` cells (in increasing `n`).
pub fn plot(cells: &[&Cell], impls: &[Impl]) -> String {
    let mut lines: Vec<(&str, Vec<(f64, f64)>)> = Vec::new();
    for imp in impls {
        let points: Vec<(f64, f64)> = cells
            .iter()
            .filter_map(|c| Some((c.n as f64, c.median(imp.name)?)))
            .collect();
        if !points.is_empty() {
            lines.push((imp.name, points));
        }
    }
    let all = lines.iter().flat_map(|(_, p)| p.iter());
    let (mut nmin, mut nmax, mut ymin, mut ymax) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(n, y) in all {
        nmin = nmin.min(n);
        nmax = nmax.max(n);
        ymin = ymin.min(y);
        ymax = ymax.max(y);
    }
    if lines.is_empty() {
        (nmin, nmax, ymin, ymax) = (10.0, 10000.0, 1000.0, 10000.0);
    }
    let (lx0, lx1) = (nmin.log10() - 0.08, nmax.log10() + 0.08);
    // Whole decades, with room below the cheapest line so it does not sit
    // on the axis.
    let ly0 = (ymin.log10() - 0.25).floor().max(ymin.log10() - 0.45);
    let ly1 = ymax.log10().ceil().max(ly0 + 1.0);
    let x = |n: f64| LEFT + (n.log10() - lx0) / (lx1 - lx0) * (RIGHT - LEFT);
    let y = |ns: f64| BOTTOM - (ns.log10() - ly0) / (ly1 - ly0) * (BOTTOM - TOP);

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="Helvetica, Arial, sans-serif" font-size="13">"#
    );
    let _ = writeln!(
        s,
        r##"<rect width="100%" height="100%" fill="#ffffff"/>
<text x="{LEFT}" y="28" font-size="17" font-weight="bold">Cost of one select with n idle descriptors registered</text>
<text x="{LEFT}" y="50" fill="#555">one active socket pair: write a byte, select, read it. Median time per select, log–log; lower is better</text>"##
    );

    // Grid and y labels: decades, with light lines at 2x and 5x.
    for e in ly0.floor() as i32..=ly1 as i32 {
        for (m, major) in [(1.0, true), (2.0, false), (5.0, false)] {
            let v = m * 10f64.powi(e);
            if v.log10() > ly1 + 1e-9 || v.log10() < ly0 - 1e-9 {
                continue;
            }
            let yy = y(v);
            let (stroke, width) = if major {
                ("#cccccc", 1.0)
            } else {
                ("#eeeeee", 1.0)
            };
            let _ = writeln!(
                s,
                r#"<line x1="{LEFT}" y1="{yy:.1}" x2="{RIGHT}" y2="{yy:.1}" stroke="{stroke}" stroke-width="{width}"/>"#
            );
            if major {
                let _ = writeln!(
                    s,
                    r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                    LEFT - 8.0,
                    yy + 4.0,
                    decade_label(e)
                );
            }
        }
    }
    // x grid: decades labelled, plus the measured sizes as small ticks.
    let mut e = lx0.ceil() as i32;
    while (e as f64) <= lx1 {
        let xx = x(10f64.powi(e));
        let _ = writeln!(
            s,
            r##"<line x1="{xx:.1}" y1="{TOP}" x2="{xx:.1}" y2="{BOTTOM}" stroke="#cccccc"/>
<text x="{xx:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            BOTTOM + 20.0,
            10u64.pow(e as u32)
        );
        e += 1;
    }
    for c in cells {
        let xx = x(c.n as f64);
        let _ = writeln!(
            s,
            r##"<line x1="{xx:.1}" y1="{BOTTOM}" x2="{xx:.1}" y2="{:.1}" stroke="#333"/>"##,
            BOTTOM + 5.0
        );
    }
    if let Some(last) = cells.last() {
        if !(last.n as f64).log10().fract().abs().lt(&1e-9) {
            let _ = writeln!(
                s,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#555" font-size="11">{}</text>"##,
                x(last.n as f64),
                BOTTOM + 34.0,
                last.n
            );
        }
    }
    let _ = writeln!(
        s,
        r##"<rect x="{LEFT}" y="{TOP}" width="{}" height="{}" fill="none" stroke="#333"/>
<text x="{:.1}" y="{:.1}" text-anchor="middle">n, idle registered descriptors (log)</text>
<text transform="translate(20 {:.1}) rotate(-90)" text-anchor="middle">ns per select (log)</text>"##,
        RIGHT - LEFT,
        BOTTOM - TOP,
        (LEFT + RIGHT) / 2.0,
        BOTTOM + 52.0,
        (TOP + BOTTOM) / 2.0
    );

    // The lines, the cheapest drawn last so the overlapping epoll family
    // stays visible on top.
    let mut order: Vec<usize> = (0..lines.len()).collect();
    let last_value = |i: usize| lines[i].1.last().map_or(0.0, |p| p.1);
    order.sort_by(|&a, &b| last_value(b).total_cmp(&last_value(a)));
    for &i in &order {
        let (name, points) = &lines[i];
        let (color, dash, width) = style(name);
        let path: Vec<String> = points
            .iter()
            .map(|&(n, v)| format!("{:.1},{:.1}", x(n), y(v)))
            .collect();
        let dash = if dash.is_empty() {
            String::new()
        } else {
            format!(r#" stroke-dasharray="{dash}""#)
        };
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="{width}"{dash} stroke-linejoin="round"/>"#,
            path.join(" ")
        );
        for &(n, v) in points {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="2.6" fill="{color}"/>"#,
                x(n),
                y(v)
            );
        }
    }

    // Legend, in the order the lines end (most expensive first).
    let lx = RIGHT + 22.0;
    let _ = writeln!(
        s,
        r##"<text x="{lx}" y="{:.1}" font-weight="bold">at n = {}</text>"##,
        TOP + 4.0,
        cells.last().map_or(0, |c| c.n)
    );
    for (row, &i) in order.iter().enumerate() {
        let (name, points) = &lines[i];
        let (color, dash, width) = style(name);
        let yy = TOP + 26.0 + row as f64 * 24.0;
        let dash = if dash.is_empty() {
            String::new()
        } else {
            format!(r#" stroke-dasharray="{dash}""#)
        };
        let _ = writeln!(
            s,
            r##"<line x1="{lx}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="{color}" stroke-width="{width}"{dash}/>
<text x="{:.1}" y="{:.1}">{name}</text>
<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">{}</text>"##,
            lx + 26.0,
            lx + 34.0,
            yy + 4.5,
            WIDTH - 14.0,
            yy + 4.5,
            human(points.last().map_or(0.0, |p| p.1))
        );
    }
    s.push_str("</svg>\n");
    s
}
