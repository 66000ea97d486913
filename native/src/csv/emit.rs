//! Where a node's rows go: into its output (bounded by `max_rows`) or into a file.

use serde_json::{Map, Value};

use super::output::{OutputSpec, RowWriter};
use super::scan::Stats;
use super::types::Cell;
use crate::node::{codes, NodeFailure};

/// The default bound on rows returned inline.
pub const MAX_INLINE_ROWS: u64 = 1_000_000;

/// Rows of a fixed list of columns, collected inline or written to a file.
pub enum Emitter {
    Inline {
        columns: Vec<String>,
        rows: Vec<Value>,
        max_rows: u64,
        /// Advice for the too-many-rows message.
        advice: &'static str,
        /// A lower bound of the rows' size as compact JSON, and the most allowed.
        bytes: u64,
        max_bytes: u64,
        /// `"name":` and a comma for every column.
        key_bytes: u64,
    },
    File {
        columns: Vec<String>,
        writer: Box<RowWriter>,
        output: OutputSpec,
    },
}

impl Emitter {
    /// Rows of `columns` for `output`, or inline up to `max_rows` rows and `max_bytes`
    /// bytes (the host's output limit: rows past it are refused as they come, before
    /// they take memory).
    ///
    /// # Errors
    /// `io_error` when the output file cannot be created.
    pub fn new(
        output: Option<&OutputSpec>,
        columns: Vec<String>,
        max_rows: u64,
        max_bytes: u64,
        advice: &'static str,
    ) -> Result<Self, NodeFailure> {
        Ok(match output {
            None => Emitter::Inline {
                key_bytes: columns.iter().map(|c| c.len() as u64 + 4).sum(),
                columns,
                rows: Vec::new(),
                max_rows,
                advice,
                bytes: 0,
                max_bytes,
            },
            Some(output) => Emitter::File {
                writer: Box::new(RowWriter::create(
                    &output.path,
                    "output",
                    output.format,
                    b',',
                    &columns,
                    false,
                )?),
                columns,
                output: output.clone(),
            },
        })
    }

    /// Adds one row: a cell per column.
    ///
    /// # Errors
    /// `too_many_rows` past the inline bound, `io_error` when writing fails.
    pub fn push<'c>(
        &mut self,
        cells: impl IntoIterator<Item = Cell<'c>>,
    ) -> Result<(), NodeFailure> {
        match self {
            Emitter::Inline {
                columns,
                rows,
                max_rows,
                advice,
                bytes,
                max_bytes,
                key_bytes,
            } => {
                if rows.len() as u64 >= *max_rows {
                    return Err(too_many_rows(*max_rows, advice));
                }
                *bytes += 2 + *key_bytes;
                let row: Map<String, Value> = columns
                    .iter()
                    .zip(cells)
                    .map(|(name, cell)| {
                        *bytes += json_size(&cell);
                        (name.clone(), cell.to_json())
                    })
                    .collect();
                if *bytes > *max_bytes {
                    return Err(NodeFailure::new(
                        codes::INVALID_OUTPUT,
                        format!(
                            "the rows to return inline pass the output limit of {max_bytes} \
                             bytes (max_output_bytes) at row {}; {advice}",
                            rows.len() + 1
                        ),
                    ));
                }
                rows.push(Value::Object(row));
                Ok(())
            }
            Emitter::File { writer, .. } => writer.write(cells),
        }
    }

    /// The node's output: the rows (or where they went) and the counts.
    ///
    /// # Errors
    /// `io_error` when finishing the file fails.
    pub fn finish(self, stats: Option<Stats>, skipped: u64) -> Result<Value, NodeFailure> {
        let mut map = Map::new();
        match self {
            Emitter::Inline { columns, rows, .. } => {
                map.insert("rows".into(), Value::Array(rows));
                map.insert("columns".into(), columns.into());
            }
            Emitter::File {
                columns,
                writer,
                output,
            } => {
                map.insert("rows_written".into(), writer.finish()?.into());
                map.insert("path".into(), output.path.to_string_lossy().into());
                map.insert("columns".into(), columns.into());
            }
        }
        if let Some(stats) = stats {
            map.insert("rows_scanned".into(), stats.scanned.into());
            map.insert("rows_matched".into(), stats.matched.into());
        }
        map.insert("skipped".into(), skipped.into());
        Ok(Value::Object(map))
    }
}

/// A lower bound of the size of `cell` as JSON.
fn json_size(cell: &Cell<'_>) -> u64 {
    match cell {
        Cell::Null | Cell::Bool(true) => 4,
        Cell::Bool(false) => 5,
        Cell::Int(i) => u64::from(i.unsigned_abs().checked_ilog10().unwrap_or(0)) + 1,
        Cell::Float(_) => 3,
        Cell::Str(s) => s.len() as u64 + 2,
    }
}

/// `too_many_rows` for an inline result past `max_rows`.
#[must_use]
pub fn too_many_rows(max_rows: u64, advice: &str) -> NodeFailure {
    NodeFailure::new(
        codes::TOO_MANY_ROWS,
        format!("more than {max_rows} rows to return inline (`max_rows`); {advice}"),
    )
    .with_field("max_rows")
}
