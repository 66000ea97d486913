//! Grouped queries over large files run on several threads, one byte range each.
//!
//! Each range but the first starts just after a line break, guessed without knowing
//! whether that break sits inside a quoted field. The guess is then checked: the reader of
//! the range before stops at the first record starting at or after the next range's
//! start, and the next range is used only if that record starts exactly there (at a record
//! boundary the parser's state is the same whatever came before, so the speculative parse
//! is the true one). Otherwise the rest of the file is read again, on one thread. Group
//! states are merged in file order, so groups keep their order of first appearance.

use std::num::NonZeroUsize;
use std::thread;

use super::aggregate::Groups;
use super::reader::next_line_start;
use super::scan::{Pass, ScanError, Stats};
use crate::node::{as_node_code, NodeFailure};

/// Ranges smaller than this are not worth a thread.
const MIN_RANGE: u64 = 4 * 1024 * 1024;
/// At most this many threads per query.
const MAX_THREADS: usize = 8;

/// What one range produced.
struct Part<'a> {
    groups: Groups<'a>,
    stats: Stats,
    start: u64,
    /// Where the range's reader stopped: the start of the first record it did not read.
    end: u64,
    /// Line breaks the range's reader consumed.
    lines: u64,
    error: Option<ScanError>,
}

fn run_part<'a>(
    pass: &Pass<'_>,
    start: u64,
    limit: u64,
    mut groups: Groups<'a>,
) -> Result<Part<'a>, NodeFailure> {
    let mut reader = pass.options.reader(start, limit)?;
    let mut stats = Stats::default();
    let error = pass.run(&mut reader, &mut groups, &mut stats).err();
    Ok(Part {
        groups,
        stats,
        start,
        end: reader.position(),
        lines: reader.line() - 1,
        error,
    })
}

/// How many ranges a file of `data` bytes is read as.
fn part_count(data: u64) -> usize {
    let threads = thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .min(MAX_THREADS);
    #[allow(clippy::cast_possible_truncation)] // compared with at most MAX_THREADS
    let by_size = (data / MIN_RANGE).min(MAX_THREADS as u64) as usize;
    threads.min(by_size).max(1)
}

/// Where each of `parts` ranges starts: the data start, then just after the first line
/// break past each equal share of the data.
fn range_starts(pass: &Pass<'_>, parts: usize) -> Result<Vec<u64>, NodeFailure> {
    let table = pass.table;
    let data = table.len.saturating_sub(table.data_start);
    let mut starts = vec![table.data_start];
    if parts < 2 {
        return Ok(starts);
    }
    let path = &pass.options.path;
    let mut file = pass.options.open_file()?;
    for k in 1..parts as u64 {
        let target = table.data_start + data * k / parts as u64;
        let found = next_line_start(&mut file, target, pass.options.limits.max_csv_record_bytes)
            .map_err(|e| NodeFailure::io("read", path, &e))?;
        pass.ctx.check()?;
        match found {
            Some(start) if start > *starts.last().expect("not empty") && start < table.len => {
                starts.push(start);
            }
            _ => {}
        }
    }
    Ok(starts)
}

/// Runs `pass` over the whole file into groups made by `make`, on as many threads as
/// the file's size and the machine warrant; adds the row counts to `stats`.
///
/// # Errors
/// The first malformed row in file order (unless lenient), a read error, a cancel, or too
/// many groups.
pub fn scan_groups<'a>(
    pass: &Pass<'_>,
    make: &(impl Fn() -> Groups<'a> + Sync),
    stats: &mut Stats,
) -> Result<Groups<'a>, NodeFailure> {
    let data = pass.table.len.saturating_sub(pass.table.data_start);
    scan_groups_in(pass, make, stats, part_count(data))
}

/// [`scan_groups`] over (at most) `parts` ranges.
///
/// # Errors
/// As [`scan_groups`].
///
/// # Panics
/// When a worker thread panics, with that thread's payload.
pub fn scan_groups_in<'a>(
    pass: &Pass<'_>,
    make: &(impl Fn() -> Groups<'a> + Sync),
    stats: &mut Stats,
    parts: usize,
) -> Result<Groups<'a>, NodeFailure> {
    let (options, table) = (pass.options, pass.table);
    let offsets = range_starts(pass, parts)?;
    let line_offset = table.data_line - 1;
    let parts: Vec<Result<Part<'a>, NodeFailure>> = if offsets.len() == 1 {
        vec![run_part(pass, offsets[0], u64::MAX, make())]
    } else {
        thread::scope(|scope| {
            let handles: Vec<_> = offsets
                .iter()
                .enumerate()
                .map(|(i, &start)| {
                    let limit = offsets.get(i + 1).copied().unwrap_or(u64::MAX);
                    scope.spawn(move || as_node_code(|| run_part(pass, start, limit, make())))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|payload| std::panic::resume_unwind(payload))
                })
                .collect()
        })
    };
    let mut parts = parts.into_iter();
    let first = parts.next().expect("at least one range")?;
    if let Some(err) = first.error {
        return Err(err.into_failure(options, table, line_offset));
    }
    let mut groups = first.groups;
    stats.add(first.stats);
    let (mut pos, mut lines) = (first.end, first.lines);
    for part in parts {
        let part = part?;
        if part.start != pos {
            // The guessed start was inside a quoted field: read the rest again from the
            // true record boundary.
            let mut reader = options.reader(pos, u64::MAX)?;
            let mut rest = Stats::default();
            pass.run(&mut reader, &mut groups, &mut rest)
                .map_err(|e| e.into_failure(options, table, line_offset + lines))?;
            stats.add(rest);
            return Ok(groups);
        }
        if let Some(err) = part.error {
            return Err(err.into_failure(options, table, line_offset + lines));
        }
        groups.merge(part.groups)?;
        stats.add(part.stats);
        pos = part.end;
        lines += part.lines;
    }
    Ok(groups)
}
