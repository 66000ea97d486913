//! The streaming pass: read each record, check its shape, decode the columns a node uses,
//! filter, and hand the row to a [`Sink`]. Malformed rows fail the pass or, when lenient,
//! are skipped and counted.

use std::io::Read;

use super::predicate::Predicate;
use super::reader::{RowError, RowReader};
use super::source::{CsvOptions, Table};
use super::types::{parse_cell, Cell, CellError, ColType, INFER_ROWS};
use crate::node::{NodeCtx, NodeFailure};

/// How often, in rows, a pass checks for a cancel.
pub const CHECK_EVERY: u64 = 10_000;

/// A column a pass decodes: its index in the file and its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub col: usize,
    pub ty: ColType,
}

/// The columns a pass decodes, each once; rows reach the sink as one cell per slot.
#[derive(Debug, Clone, Default)]
pub struct Slots {
    pub slots: Vec<Slot>,
}

impl Slots {
    /// The slot of file column `col`, added if new.
    pub fn add(&mut self, table: &Table, col: usize) -> usize {
        if let Some(i) = self.slots.iter().position(|s| s.col == col) {
            return i;
        }
        self.slots.push(Slot {
            col,
            ty: table.types[col],
        });
        self.slots.len() - 1
    }
}

/// Row counts of a pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Data rows read, malformed ones included.
    pub scanned: u64,
    /// Rows that passed the filter.
    pub matched: u64,
    /// Malformed rows skipped in lenient mode.
    pub skipped: u64,
}

impl Stats {
    pub fn add(&mut self, other: Stats) {
        self.scanned += other.scanned;
        self.matched += other.matched;
        self.skipped += other.skipped;
    }
}

/// Whether a sink wants more rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    More,
    Stop,
}

/// Where a pass sends the rows that pass its filter.
pub trait Sink {
    /// Takes one row: a cell per slot.
    ///
    /// # Errors
    /// A failure ends the pass.
    fn accept(&mut self, cells: &[Cell<'_>]) -> Result<Flow, NodeFailure>;
}

/// A malformed row, located by its line within the reader's range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowFault {
    pub line: u64,
    /// The column at fault, when there is one.
    pub column: Option<usize>,
    pub detail: String,
}

/// Why a pass stopped early.
#[derive(Debug)]
pub enum ScanError {
    Fault(RowFault),
    Failure(NodeFailure),
    /// A reader error other than a malformed row: a read error, a limit, a cancel.
    Reader(RowError),
}

impl From<NodeFailure> for ScanError {
    fn from(failure: NodeFailure) -> Self {
        ScanError::Failure(failure)
    }
}

impl ScanError {
    /// The failure to report, with lines counted from the file start: `line_offset` is the
    /// number of lines before the reader's range.
    #[must_use]
    pub fn into_failure(
        self,
        options: &CsvOptions,
        table: &Table,
        line_offset: u64,
    ) -> NodeFailure {
        match self {
            ScanError::Failure(failure) => failure,
            ScanError::Reader(err) => options.reader_failure(err, line_offset),
            ScanError::Fault(fault) => {
                let line = fault.line + line_offset;
                let message = match fault.column {
                    Some(col) => format!(
                        "line {line}, column '{}': {}",
                        table.names.get(col).map_or("?", String::as_str),
                        fault.detail
                    ),
                    None => format!("line {line}: {}", fault.detail),
                };
                options.error(message)
            }
        }
    }
}

/// What a pass needs besides its reader and sink.
pub struct Pass<'a> {
    pub options: &'a CsvOptions,
    pub table: &'a Table,
    pub slots: &'a [Slot],
    pub filter: Option<&'a Predicate>,
    pub ctx: &'a NodeCtx,
}

/// A vector of cells emptied and given a new lifetime, keeping its allocation.
fn recycle<'b>(mut cells: Vec<Cell<'_>>) -> Vec<Cell<'b>> {
    cells.clear();
    cells.into_iter().map(|_| Cell::Null).collect()
}

impl Pass<'_> {
    /// Reads every record of `reader` into `sink`, counting into `stats`.
    ///
    /// # Errors
    /// The first malformed row (unless lenient), a read error, a cancel, or a sink failure.
    pub fn run<R: Read>(
        &self,
        reader: &mut RowReader<R>,
        sink: &mut impl Sink,
        stats: &mut Stats,
    ) -> Result<(), ScanError> {
        let width = self.table.names.len();
        let lenient = self.options.lenient;
        let mut spare: Vec<Cell<'static>> = Vec::with_capacity(self.slots.len());
        // A large filter makes each row slow: check for a cancel after as much work.
        let work = self.filter.map_or(0, Predicate::size) as u64;
        let check_every = (CHECK_EVERY / (1 + work / 16)).max(1);
        loop {
            let record = match reader.next_record() {
                Ok(Some(record)) => record,
                Ok(None) => return Ok(()),
                Err(RowError::Unterminated { line, field }) => {
                    stats.scanned += 1;
                    if lenient {
                        stats.skipped += 1;
                        return Ok(());
                    }
                    return Err(ScanError::Fault(RowFault {
                        line,
                        column: Some(field).filter(|f| *f < width),
                        detail: "unterminated quoted field in this data row (the file ends \
                                 inside it)"
                            .into(),
                    }));
                }
                Err(other) => return Err(ScanError::Reader(other)),
            };
            stats.scanned += 1;
            if stats.scanned.is_multiple_of(check_every) {
                self.ctx.check()?;
            }
            if record.len() != width {
                if lenient {
                    stats.skipped += 1;
                    continue;
                }
                return Err(ScanError::Fault(ragged(record.line, record.len(), width)));
            }
            let mut cells = recycle(std::mem::take(&mut spare));
            let mut fault = None;
            for slot in self.slots {
                match parse_cell(record.get(slot.col), slot.ty) {
                    Ok(cell) => cells.push(cell),
                    Err(err) => {
                        fault =
                            Some(self.cell_fault(record.line, slot, &err, record.get(slot.col)));
                        break;
                    }
                }
            }
            if let Some(fault) = fault {
                spare = recycle(cells);
                if lenient {
                    stats.skipped += 1;
                    continue;
                }
                return Err(ScanError::Fault(fault));
            }
            let flow = if self.filter.is_none_or(|f| f.passes(&cells)) {
                stats.matched += 1;
                sink.accept(&cells)?
            } else {
                Flow::More
            };
            spare = recycle(cells);
            if flow == Flow::Stop {
                return Ok(());
            }
        }
    }

    fn cell_fault(&self, line: u64, slot: &Slot, err: &CellError, bytes: &[u8]) -> RowFault {
        let detail = match err {
            CellError::NotUtf8 => {
                "invalid UTF-8 (set `encoding` if the file is Latin-1)".to_owned()
            }
            CellError::NotA(ty) => {
                let shown: String = String::from_utf8_lossy(bytes).chars().take(40).collect();
                let how = if self.table.declared[slot.col] {
                    "declared in `columns`".to_owned()
                } else {
                    format!(
                        "inferred from the first {INFER_ROWS} rows; declare the column's type in `columns`"
                    )
                };
                format!("expected {} ({how}), found {shown:?}", ty.name())
            }
        };
        RowFault {
            line,
            column: Some(slot.col),
            detail,
        }
    }
}

fn ragged(line: u64, found: usize, width: usize) -> RowFault {
    let (column, what) = if found < width {
        (found, "is missing")
    } else {
        (width - 1, "is followed by an extra field")
    };
    RowFault {
        line,
        column: Some(column),
        detail: format!("expected {width} fields, found {found} (this column {what})"),
    }
}
