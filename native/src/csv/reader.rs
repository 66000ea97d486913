//! Splitting a byte stream into CSV records, one at a time, reusing one buffer.
//!
//! A line without the quote character is split where it lies in the read buffer (the fast
//! path: one pass, eight bytes at a time, finds its end and its delimiters). A line with a quote
//! goes through a small state machine that unescapes into a scratch buffer and may span
//! several physical lines. Rules: `\n`, `\r\n` or a bare `\r` ends a record (one file may
//! mix them, as in rust-csv and Python's csv module); blank lines are skipped; a quote
//! opens a quoted field only at the start of a field (elsewhere it is a plain character);
//! `""` inside a quoted field is one quote; characters after a closing quote are kept, as
//! Python's csv module does; end of file inside a quoted field is an error.
//!
//! Memory is bounded by the record limit, not the input: a record longer than
//! `max_record` bytes or with more than `max_fields` fields is an error as soon as the
//! reader has seen that much of it. A reader given a cancel flag checks it before every
//! read, so a cancel lands after at most one buffer of work.
//!
//! A reader may start anywhere a record starts and stop before the first record that
//! starts at or after `limit`, which lets a file be read as several byte ranges at once.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use memchr::{memchr, memchr_iter};

/// The line breaks in `chunk`, part of a quoted field that a quote follows: every `\n`,
/// and every `\r` not followed by `\n`.
fn line_breaks(chunk: &[u8]) -> u64 {
    let lf = memchr_iter(b'\n', chunk).count();
    let cr = memchr_iter(b'\r', chunk)
        .filter(|&j| chunk.get(j + 1) != Some(&b'\n'))
        .count();
    (lf + cr) as u64
}

/// Bytes read per `read` call; the buffer grows past it only for longer records.
const BLOCK: usize = 256 * 1024;

/// How text in the file is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8; invalid bytes are an error where a field is read as text.
    Utf8,
    /// ISO-8859-1: every byte is the code point of the same value; records are
    /// transcoded to UTF-8 as they are read.
    Latin1,
}

/// The characters that shape a CSV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    pub delimiter: u8,
    pub quote: u8,
    pub encoding: Encoding,
}

impl Default for Dialect {
    fn default() -> Self {
        Dialect {
            delimiter: b',',
            quote: b'"',
            encoding: Encoding::Utf8,
        }
    }
}

/// Why the next record could not be read.
#[derive(Debug)]
pub enum RowError {
    Io(io::Error),
    /// End of input inside a quoted field. `line` is the record's first line (counted
    /// from the start of the reader's range), `field` its 0-based field index.
    Unterminated {
        line: u64,
        field: usize,
    },
    /// The record starting on `line` is longer than the reader's `max_record` bytes.
    TooLong {
        line: u64,
    },
    /// The record starting on `line` has more than the reader's `max_fields` fields.
    TooManyFields {
        line: u64,
    },
    /// The cancel flag was set.
    Cancelled,
}

impl From<io::Error> for RowError {
    fn from(err: io::Error) -> Self {
        RowError::Io(err)
    }
}

/// One record: its fields, borrowed from the reader until the next call.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    data: &'a [u8],
    ends: &'a [u32],
    /// The 1-based line the record starts on, counted from the start of the range.
    pub line: u64,
}

impl<'a> Record<'a> {
    /// The number of fields.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the record has no fields (never true for a record a reader returns).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Field `i`, unescaped; UTF-8 when the file is valid UTF-8 or Latin-1.
    ///
    /// # Panics
    /// When `i >= self.len()`.
    #[must_use]
    pub fn get(&self, i: usize) -> &'a [u8] {
        // Fields are separated by one byte (the delimiter, or a stand-in).
        let start = if i == 0 {
            0
        } else {
            self.ends[i - 1] as usize + 1
        };
        &self.data[start..self.ends[i] as usize]
    }
}

/// Reads records from `src`, which starts at a record boundary.
pub struct RowReader<R> {
    src: R,
    dialect: Dialect,
    buf: Vec<u8>,
    /// Start of unconsumed bytes in `buf`.
    pos: usize,
    /// End of valid bytes in `buf`.
    len: usize,
    eof: bool,
    /// Offset in the source of `buf[0]`, plus the offset the reader started at.
    base: u64,
    limit: u64,
    /// The line the next record starts on.
    line: u64,
    ends: Vec<u32>,
    scratch: Vec<u8>,
    transcoded: Vec<u8>,
    max_record: usize,
    max_fields: usize,
    cancel: Option<Arc<AtomicBool>>,
}

/// What the quoted-record state machine found.
enum Quoted {
    /// The record ends `consumed` bytes after its start, having crossed `newlines`.
    Done { consumed: usize, newlines: u64 },
    /// The buffer ended first; read more and start the record again.
    NeedMore,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    FieldStart,
    Unquoted,
    Quoted,
    QuoteInQuoted,
}

impl<R: Read> RowReader<R> {
    /// A reader of `src`, whose first byte is at `start` in the file; it stops before the
    /// first record starting at or after `limit` (`u64::MAX` for no limit).
    pub fn new(src: R, dialect: Dialect, start: u64, limit: u64) -> Self {
        RowReader {
            src,
            dialect,
            buf: vec![0; BLOCK],
            pos: 0,
            len: 0,
            eof: false,
            base: start,
            limit,
            line: 1,
            ends: Vec::with_capacity(32),
            scratch: Vec::new(),
            transcoded: Vec::new(),
            max_record: usize::MAX / 4,
            max_fields: usize::MAX,
            cancel: None,
        }
    }

    /// The same reader, refusing records longer than `max_record` bytes or with more than
    /// `max_fields` fields, and stopping once `cancel` is set.
    #[must_use]
    pub fn guarded(
        mut self,
        max_record: u64,
        max_fields: u64,
        cancel: Option<Arc<AtomicBool>>,
    ) -> Self {
        // Capped so that the buffer sizes computed from it cannot overflow.
        self.max_record =
            usize::try_from(max_record).map_or(usize::MAX / 4, |m| m.min(usize::MAX / 4));
        self.max_fields = usize::try_from(max_fields).unwrap_or(usize::MAX);
        self.cancel = cancel;
        self
    }

    /// The file offset of the next unread byte: after a reader stopped at its limit, where
    /// the record it did not read starts.
    #[must_use]
    pub fn position(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// The line the next record starts on (1-based, from the start of the range).
    #[must_use]
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Moves the stop offset; `u64::MAX` reads to the end.
    pub fn set_limit(&mut self, limit: u64) {
        self.limit = limit;
    }

    /// Skips a UTF-8 byte order mark at the current position.
    ///
    /// # Errors
    /// When reading fails, or on a cancel.
    pub fn skip_bom(&mut self) -> Result<(), RowError> {
        while self.len - self.pos < 3 && !self.eof {
            self.fill()?;
        }
        if self.buf[self.pos..self.len].starts_with(b"\xEF\xBB\xBF") {
            self.pos += 3;
        }
        Ok(())
    }

    /// Keeps the unconsumed bytes, growing the buffer when they fill it (up to just past
    /// the record limit), and reads more.
    fn fill(&mut self) -> Result<(), RowError> {
        if self
            .cancel
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::Relaxed))
        {
            return Err(RowError::Cancelled);
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.len, 0);
            self.base += self.pos as u64;
            self.len -= self.pos;
            self.pos = 0;
        }
        if self.len == self.buf.len() {
            // The unconsumed bytes are one unfinished record.
            let cap = self.max_record.saturating_add(BLOCK);
            if self.len > self.max_record || self.buf.len() >= cap {
                return Err(self.stop(RowError::TooLong { line: self.line }));
            }
            self.buf.resize((self.buf.len() * 2).min(cap), 0);
        }
        loop {
            match self.src.read(&mut self.buf[self.len..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.len += n;
                    return Ok(());
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(RowError::Io(err)),
            }
        }
    }

    /// Leaves the reader at its end and returns `err`: after a record too large to read,
    /// nothing after it can be told apart.
    fn stop(&mut self, err: RowError) -> RowError {
        self.pos = self.len;
        self.eof = true;
        err
    }

    /// `Err` when the record from `pos`, `seen` bytes of it and the fields ended in
    /// `self.ends` so far (`more`: and another after them), is past a limit already.
    fn check_size(&mut self, seen: usize, more: bool) -> Result<(), RowError> {
        let fields = self.ends.len() + usize::from(more);
        if seen > self.max_record {
            Err(self.stop(RowError::TooLong { line: self.line }))
        } else if fields > self.max_fields {
            Err(self.stop(RowError::TooManyFields { line: self.line }))
        } else {
            Ok(())
        }
    }

    /// Where the first `\r` in the `end` bytes from `pos` is, if one is: a plain line ends
    /// there (a `\r\n`, or a bare `\r`), and the delimiters past it are dropped.
    fn cut_at_cr(&mut self, end: usize) -> Option<usize> {
        let at = memchr(b'\r', &self.buf[self.pos..self.pos + end])?;
        #[allow(clippy::cast_possible_truncation)] // offsets within a record are far below 4 GiB
        let keep = self.ends.partition_point(|&e| e < at as u32);
        self.ends.truncate(keep);
        Some(at)
    }

    /// The length of the line break at `buf[at]` (a `\r` or `\n`): 2 for `\r\n`;
    /// `None` when it is a `\r` ending the buffer, before the end of the input.
    fn break_len(&self, at: usize) -> Option<usize> {
        if self.buf[at] == b'\n' {
            return Some(1);
        }
        match self.buf[at + 1..self.len].first() {
            Some(b'\n') => Some(2),
            Some(_) => Some(1),
            None if self.eof => Some(1),
            None => None,
        }
    }

    /// The next record, or `None` at the end of the input or the range.
    ///
    /// # Errors
    /// When reading fails, or the input ends inside a quoted field; in the latter case the
    /// reader is at its end afterwards.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, RowError> {
        loop {
            if self.pos == self.len {
                if self.eof {
                    return Ok(None);
                }
                self.fill()?;
                continue;
            }
            if self.position() >= self.limit {
                return Ok(None);
            }
            let rest = &self.buf[self.pos..self.len];
            let Dialect {
                delimiter, quote, ..
            } = self.dialect;
            let found = match scan_line(rest, delimiter, quote, &mut self.ends) {
                Line::Ends(i) => Line::Ends(self.cut_at_cr(i).unwrap_or(i)),
                Line::Open => self
                    .cut_at_cr(self.len - self.pos)
                    .map_or(Line::Open, Line::Ends),
                Line::Quoted => Line::Quoted,
            };
            match found {
                Line::Ends(i) => {
                    self.check_size(i, true)?;
                    let start = self.pos;
                    let Some(len) = self.break_len(start + i) else {
                        self.fill()?;
                        continue;
                    };
                    self.pos += i + len;
                    self.line += 1;
                    if let Some(end) = self.plain_end(start, start + i) {
                        let line = self.line - 1;
                        return Ok(Some(self.finish(Source::Buffer(start, end), line)));
                    }
                }
                Line::Open if !self.eof => {
                    self.check_size(self.len - self.pos, true)?;
                    self.fill()?;
                }
                Line::Open => {
                    self.check_size(self.len - self.pos, true)?;
                    // The last line, without a line break.
                    let start = self.pos;
                    self.pos = self.len;
                    self.line += 1;
                    if let Some(end) = self.plain_end(start, self.len) {
                        let line = self.line - 1;
                        return Ok(Some(self.finish(Source::Buffer(start, end), line)));
                    }
                }
                Line::Quoted => match self.parse_quoted()? {
                    Quoted::NeedMore => {
                        self.check_size(self.len - self.pos, true)?;
                        self.fill()?;
                    }
                    Quoted::Done { consumed, newlines } => {
                        self.check_size(consumed, false)?;
                        let line = self.line;
                        self.pos += consumed;
                        self.line += newlines;
                        return Ok(Some(self.finish(Source::Scratch, line)));
                    }
                },
            }
        }
    }

    /// Completes the field ends of `buf[start..end]`, a line without quotes whose
    /// delimiters `scan_line` found, and returns its end; `None` for a blank line.
    fn plain_end(&mut self, start: usize, end: usize) -> Option<usize> {
        if end == start {
            return None;
        }
        #[allow(clippy::cast_possible_truncation)] // records are far below 4 GiB
        self.ends.push((end - start) as u32);
        Some(end)
    }

    /// Reads one record that has a quote, from `pos`, into `scratch` and `ends`.
    fn parse_quoted(&mut self) -> Result<Quoted, RowError> {
        let Dialect {
            delimiter, quote, ..
        } = self.dialect;
        let bytes = &self.buf[self.pos..self.len];
        let eof = self.eof;
        // The length of the line break at `bytes[i]`; `None` when more input must decide.
        let break_len = |i: usize| match (bytes[i], bytes.get(i + 1)) {
            (b'\n', _) | (b'\r', Some(b'\n')) => Some(if bytes[i] == b'\n' { 1 } else { 2 }),
            (_, Some(_)) => Some(1),
            (_, None) if eof => Some(1),
            (_, None) => None,
        };
        let scratch = &mut self.scratch;
        let ends = &mut self.ends;
        scratch.clear();
        ends.clear();
        // Each field is followed by one separator byte, as in a plain line.
        #[allow(clippy::cast_possible_truncation)] // records are far below 4 GiB
        let mut end_field = |scratch: &mut Vec<u8>| {
            ends.push(scratch.len() as u32);
            scratch.push(delimiter);
        };
        let mut state = State::FieldStart;
        let mut newlines = 0;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            match state {
                State::FieldStart | State::Unquoted => {
                    if b == delimiter {
                        end_field(scratch);
                        state = State::FieldStart;
                    } else if b == b'\n' || b == b'\r' {
                        let Some(len) = break_len(i) else {
                            return Ok(Quoted::NeedMore);
                        };
                        end_field(scratch);
                        return Ok(Quoted::Done {
                            consumed: i + len,
                            newlines: newlines + 1,
                        });
                    } else if b == quote && state == State::FieldStart {
                        state = State::Quoted;
                    } else {
                        scratch.push(b);
                        state = State::Unquoted;
                    }
                }
                State::Quoted => {
                    let Some(k) = memchr(quote, &bytes[i..]) else {
                        break;
                    };
                    let chunk = &bytes[i..i + k];
                    newlines += line_breaks(chunk);
                    scratch.extend_from_slice(chunk);
                    i += k;
                    state = State::QuoteInQuoted;
                }
                State::QuoteInQuoted => {
                    if b == quote {
                        scratch.push(quote);
                        state = State::Quoted;
                    } else if b == delimiter {
                        end_field(scratch);
                        state = State::FieldStart;
                    } else if b == b'\n' || b == b'\r' {
                        let Some(len) = break_len(i) else {
                            return Ok(Quoted::NeedMore);
                        };
                        end_field(scratch);
                        return Ok(Quoted::Done {
                            consumed: i + len,
                            newlines: newlines + 1,
                        });
                    } else {
                        scratch.push(b);
                        state = State::Unquoted;
                    }
                }
            }
            i += 1;
        }
        if !self.eof {
            return Ok(Quoted::NeedMore);
        }
        if state == State::Quoted {
            let field = ends.len();
            self.pos = self.len;
            return Err(RowError::Unterminated {
                line: self.line,
                field,
            });
        }
        end_field(scratch);
        Ok(Quoted::Done {
            consumed: bytes.len(),
            newlines,
        })
    }

    /// The record in `source`, transcoded to UTF-8 when the file is Latin-1.
    fn finish(&mut self, source: Source, line: u64) -> Record<'_> {
        let data = match source {
            Source::Buffer(start, end) => &self.buf[start..end],
            Source::Scratch => &self.scratch[..],
        };
        if self.dialect.encoding == Encoding::Latin1 && !data.is_ascii() {
            let out = &mut self.transcoded;
            out.clear();
            let mut start = 0;
            for end in &mut self.ends {
                for &b in &data[start..*end as usize] {
                    if b < 0x80 {
                        out.push(b);
                    } else {
                        out.extend_from_slice(&[0xC0 | (b >> 6), 0x80 | (b & 0x3F)]);
                    }
                }
                start = *end as usize + 1;
                #[allow(clippy::cast_possible_truncation)] // records are far below 4 GiB
                {
                    *end = out.len() as u32;
                }
                out.push(self.dialect.delimiter);
            }
            return Record {
                data: &self.transcoded,
                ends: &self.ends,
                line,
            };
        }
        Record {
            data,
            ends: &self.ends,
            line,
        }
    }
}

/// What `scan_line` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// A `\n` at this offset, and no quote before it.
    Ends(usize),
    /// A quote before any line break.
    Quoted,
    /// Neither before the end of the input.
    Open,
}

const LOW_BITS: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `word` that equals `byte`, exactly.
#[inline]
fn bytes_equal(word: u64, byte: u8) -> u64 {
    let x = word ^ (LOW_BITS * u64::from(byte));
    // Bit 7 of each byte of `(x & 0x7f..) + 0x7f..` is set when its low bits are not all
    // zero, and no byte carries into the next; or-ing `x` adds its own bit 7.
    !(((x & !HIGH_BITS).wrapping_add(!HIGH_BITS)) | x) & HIGH_BITS
}

/// Finds the end of the line starting `rest` (its first `\n`), eight bytes at a time, and
/// the offset of each delimiter before it (into `ends`, which it clears). A line with a
/// quote before its end is left to the quoted-record parser. A `\r` is looked for
/// afterwards, in the line alone (`RowReader::cut_at_cr`): rare, and cheaper that way.
#[allow(clippy::cast_possible_truncation)] // offsets within a record are far below 4 GiB
fn scan_line(rest: &[u8], delimiter: u8, quote: u8, ends: &mut Vec<u32>) -> Line {
    ends.clear();
    let mut chunks = rest.chunks_exact(8);
    let mut base = 0;
    for chunk in chunks.by_ref() {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let mut delimiters = bytes_equal(word, delimiter);
        let stops = bytes_equal(word, b'\n') | bytes_equal(word, quote);
        if stops != 0 {
            let at = stops.trailing_zeros();
            if chunk[at as usize / 8] == quote {
                return Line::Quoted;
            }
            delimiters &= (1u64 << at) - 1;
            while delimiters != 0 {
                ends.push((base + delimiters.trailing_zeros() as usize / 8) as u32);
                delimiters &= delimiters - 1;
            }
            return Line::Ends(base + at as usize / 8);
        }
        while delimiters != 0 {
            ends.push((base + delimiters.trailing_zeros() as usize / 8) as u32);
            delimiters &= delimiters - 1;
        }
        base += 8;
    }
    for (i, &b) in chunks.remainder().iter().enumerate() {
        if b == b'\n' {
            return Line::Ends(base + i);
        }
        if b == quote {
            return Line::Quoted;
        }
        if b == delimiter {
            ends.push((base + i) as u32);
        }
    }
    Line::Open
}

/// Where a record's bytes are.
#[derive(Clone, Copy)]
enum Source {
    /// In the read buffer, unescaped already (no quotes).
    Buffer(usize, usize),
    /// Unescaped into `scratch`.
    Scratch,
}

/// Where the first record at or after `offset` starts: just after the next `\n`, if one
/// is within `max_bytes`. Correct only when no quoted field spans that line break, which
/// the caller checks afterwards (see `parallel::scan_groups_in`).
///
/// # Errors
/// When reading fails.
pub fn next_line_start(
    file: &mut std::fs::File,
    offset: u64,
    max_bytes: u64,
) -> io::Result<Option<u64>> {
    use std::io::{Seek, SeekFrom};
    file.seek(SeekFrom::Start(offset))?;
    let mut buf = vec![0; 64 * 1024];
    let mut at = offset;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 || at - offset > max_bytes {
            return Ok(None);
        }
        if let Some(i) = memchr(b'\n', &buf[..n]) {
            return Ok(Some(at + i as u64 + 1));
        }
        at += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(input: &str, dialect: Dialect) -> Vec<(u64, Vec<String>)> {
        let mut reader = RowReader::new(input.as_bytes(), dialect, 0, u64::MAX);
        let mut out = Vec::new();
        while let Some(rec) = reader.next_record().unwrap() {
            let fields = (0..rec.len())
                .map(|i| String::from_utf8(rec.get(i).to_vec()).unwrap())
                .collect();
            out.push((rec.line, fields));
        }
        out
    }

    fn fields(input: &str) -> Vec<Vec<String>> {
        records(input, Dialect::default())
            .into_iter()
            .map(|(_, f)| f)
            .collect()
    }

    #[test]
    fn plain_lines_with_crlf_blank_lines_and_no_final_newline() {
        let got = records("a,b\r\n\n1,2\n\r\n3,\n4,5", Dialect::default());
        let lines: Vec<u64> = got.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![1, 3, 5, 6]);
        assert_eq!(got[2].1, vec!["3", ""]);
        assert_eq!(got[3].1, vec!["4", "5"]);
    }

    #[test]
    fn bare_cr_and_mixed_line_breaks_end_records() {
        assert_eq!(fields("a,b\r1,2\r"), vec![vec!["a", "b"], vec!["1", "2"]]);
        let got = records("a,b\n1,2\r\n3,4\r5,6\n\r\r\n7,8", Dialect::default());
        let rows: Vec<&[String]> = got.iter().map(|(_, f)| f.as_slice()).collect();
        assert_eq!(
            rows,
            [["a", "b"], ["1", "2"], ["3", "4"], ["5", "6"], ["7", "8"]]
        );
        let lines: Vec<u64> = got.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![1, 2, 3, 4, 7]);
        // Quoted records too; a CR inside quotes is data and counts as a line.
        let got = records("\"a\"\r\"b\rc\",d\r\"e\"\r\n", Dialect::default());
        assert_eq!(got[0], (1, vec!["a".into()]));
        assert_eq!(got[1], (2, vec!["b\rc".into(), "d".into()]));
        assert_eq!(got[2], (4, vec!["e".into()]));
    }

    #[test]
    fn a_cr_at_the_end_of_a_read_waits_for_the_next_byte() {
        // A reader that hands out one byte per read puts every CR at a buffer's end.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let Some((&b, rest)) = self.0.split_first() else {
                    return Ok(0);
                };
                buf[0] = b;
                self.0 = rest;
                Ok(1)
            }
        }
        let input = b"a,\"b\"\r\n1,2\r\n\r3,\"4\"\r5\r";
        let mut reader = RowReader::new(Trickle(input), Dialect::default(), 0, u64::MAX);
        let mut got = Vec::new();
        while let Some(rec) = reader.next_record().unwrap() {
            got.push((
                rec.line,
                (0..rec.len())
                    .map(|i| rec.get(i).to_vec())
                    .collect::<Vec<_>>(),
            ));
        }
        let expected: Vec<(u64, Vec<Vec<u8>>)> = vec![
            (1, vec![b"a".to_vec(), b"b".to_vec()]),
            (2, vec![b"1".to_vec(), b"2".to_vec()]),
            (4, vec![b"3".to_vec(), b"4".to_vec()]),
            (5, vec![b"5".to_vec()]),
        ];
        assert_eq!(got, expected);
    }

    #[test]
    fn records_past_the_limits_fail_without_reading_on() {
        let long = format!("a,b\n{},x\n1,2\n", "y".repeat(3 * BLOCK));
        for quoted in [false, true] {
            let input = if quoted {
                long.replace("yy", "\"y")
            } else {
                long.clone()
            };
            let mut reader = RowReader::new(input.as_bytes(), Dialect::default(), 0, u64::MAX)
                .guarded(BLOCK as u64, 100, None);
            assert!(reader.next_record().unwrap().is_some());
            assert!(matches!(
                reader.next_record(),
                Err(RowError::TooLong { line: 2 })
            ));
            assert!(reader.buf.len() <= 2 * BLOCK, "{}", reader.buf.len());
            assert!(reader.next_record().unwrap().is_none());
        }
        let wide = format!("{}\n", ",".repeat(1000));
        let mut reader = RowReader::new(wide.as_bytes(), Dialect::default(), 0, u64::MAX).guarded(
            1 << 20,
            1000,
            None,
        );
        assert!(matches!(
            reader.next_record(),
            Err(RowError::TooManyFields { line: 1 })
        ));
        let mut reader = RowReader::new(wide.as_bytes(), Dialect::default(), 0, u64::MAX).guarded(
            1 << 20,
            1001,
            None,
        );
        assert_eq!(reader.next_record().unwrap().unwrap().len(), 1001);
        let quoted = format!("\"q\"{}\n", ",".repeat(1000));
        let mut reader = RowReader::new(quoted.as_bytes(), Dialect::default(), 0, u64::MAX)
            .guarded(1 << 20, 1001, None);
        assert_eq!(reader.next_record().unwrap().unwrap().len(), 1001);
        let mut reader = RowReader::new(quoted.as_bytes(), Dialect::default(), 0, u64::MAX)
            .guarded(1 << 20, 1000, None);
        assert!(matches!(
            reader.next_record(),
            Err(RowError::TooManyFields { line: 1 })
        ));
    }

    #[test]
    fn a_cancel_stops_the_next_read() {
        let flag = Arc::new(AtomicBool::new(true));
        let mut reader = RowReader::new(&b"a\n"[..], Dialect::default(), 0, u64::MAX).guarded(
            100,
            100,
            Some(flag),
        );
        assert!(matches!(reader.next_record(), Err(RowError::Cancelled)));
    }

    #[test]
    fn quoted_fields_unescape_and_span_lines() {
        let got = records(
            "x,\"a,\"\"b\"\"\nc\"\r\n\"q\",2\nlast,\"\"\n",
            Dialect::default(),
        );
        assert_eq!(got[0], (1, vec!["x".into(), "a,\"b\"\nc".into()]));
        assert_eq!(got[1], (3, vec!["q".into(), "2".into()]));
        assert_eq!(got[2], (4, vec!["last".into(), String::new()]));
    }

    #[test]
    fn quotes_inside_unquoted_fields_are_plain() {
        assert_eq!(
            fields("5\" screen,\"a\"b\n"),
            vec![vec!["5\" screen", "ab"]]
        );
    }

    #[test]
    fn unterminated_quote_names_the_line_and_field() {
        let mut reader = RowReader::new(
            &b"a,b\n1,\"oops\n2,3\n"[..],
            Dialect::default(),
            0,
            u64::MAX,
        );
        assert!(reader.next_record().unwrap().is_some());
        match reader.next_record() {
            Err(RowError::Unterminated { line, field }) => assert_eq!((line, field), (2, 1)),
            other => panic!("{other:?}"),
        }
        assert!(reader.next_record().unwrap().is_none());
    }

    #[test]
    fn records_longer_than_the_buffer() {
        let long = "y".repeat(3 * BLOCK);
        let input = format!("a,\"{long}\"\n{long},b\n");
        let got = fields(&input);
        assert_eq!(got[0][1].len(), long.len());
        assert_eq!(got[1][1], "b");
    }

    #[test]
    fn scan_line_finds_delimiters_line_ends_and_quotes() {
        let mut ends = Vec::new();
        let line = b"aa,b,,cccccccc,d\nxx";
        assert_eq!(scan_line(line, b',', b'"', &mut ends), Line::Ends(16));
        assert_eq!(ends, vec![2, 4, 5, 14]);
        assert_eq!(
            scan_line(b"a,b,c,d,e,f\"g\n", b',', b'"', &mut ends),
            Line::Quoted
        );
        assert_eq!(scan_line(b"a\n\"", b',', b'"', &mut ends), Line::Ends(1));
        assert_eq!(
            scan_line(b"0123456789,x", b',', b'"', &mut ends),
            Line::Open
        );
        assert_eq!(ends, vec![10]);
        // Bytes with the high bit set must not look like matches.
        assert_eq!(
            scan_line("é,ü\u{80}\u{ff},\n".as_bytes(), b',', b'"', &mut ends),
            Line::Ends(10)
        );
        assert_eq!(ends, vec![2, 9]);
    }

    #[test]
    fn latin1_is_transcoded() {
        let dialect = Dialect {
            encoding: Encoding::Latin1,
            ..Dialect::default()
        };
        let mut reader = RowReader::new(&b"caf\xe9,\"\xfc\"\n"[..], dialect, 0, u64::MAX);
        let rec = reader.next_record().unwrap().unwrap();
        assert_eq!(rec.get(0), "café".as_bytes());
        assert_eq!(rec.get(1), "ü".as_bytes());
    }

    #[test]
    fn custom_delimiter_and_quote() {
        let dialect = Dialect {
            delimiter: b';',
            quote: b'\'',
            ..Dialect::default()
        };
        let got = records("a;'b;c'\n", dialect);
        assert_eq!(got[0].1, vec!["a", "b;c"]);
    }

    #[test]
    fn ranges_stop_before_the_limit() {
        let input = b"1,a\n2,b\n3,c\n";
        let mut first = RowReader::new(&input[..], Dialect::default(), 0, 4);
        assert!(first.next_record().unwrap().is_some());
        assert!(first.next_record().unwrap().is_none());
        assert_eq!(first.position(), 4);
        let mut second = RowReader::new(&input[4..], Dialect::default(), 4, u64::MAX);
        let rec = second.next_record().unwrap().unwrap();
        assert_eq!((rec.get(0), rec.line), (&b"2"[..], 1));
    }
}
