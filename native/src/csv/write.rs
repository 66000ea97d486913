//! `csv.write`: rows of objects to a CSV file, created anew or appended to.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use serde_json::{json, Map, Value};

use super::output::{Format, RowWriter};
use super::reader::{Dialect, RowError, RowReader};
use super::scan::CHECK_EVERY;
use crate::files;
use crate::node::{NativeNode, NodeCtx, NodeFailure};
use crate::params::{wrong_type, Params};

/// The `csv.write` node.
pub struct CsvWrite;

static NULL: Value = Value::Null;

/// The header of an existing non-empty file, and whether it ends with a line break.
fn existing_header(
    path: &Path,
    delimiter: u8,
    ctx: &NodeCtx,
) -> Result<Option<(Vec<String>, bool)>, NodeFailure> {
    let Some(mut file) = files::open_read_opt(path, "path", true)? else {
        return Ok(None);
    };
    let io = |e: std::io::Error| NodeFailure::io("read", path, &e);
    let len = file.metadata().map_err(io)?.len();
    if len == 0 {
        return Ok(None);
    }
    let mut last = [0u8];
    file.seek(SeekFrom::Start(len - 1)).map_err(io)?;
    file.read_exact(&mut last).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    let dialect = Dialect {
        delimiter,
        ..Dialect::default()
    };
    let limits = ctx.limits();
    let mut reader = RowReader::new(file, dialect, 0, u64::MAX).guarded(
        limits.max_csv_record_bytes,
        limits.max_csv_record_fields,
        Some(ctx.cancel_flag().clone()),
    );
    let header = match reader.skip_bom().and_then(|()| reader.next_record()) {
        Ok(Some(record)) => (0..record.len())
            .map(|i| String::from_utf8_lossy(record.get(i)).into_owned())
            .collect(),
        Ok(None) => return Ok(None),
        Err(RowError::Io(e)) => return Err(io(e)),
        Err(RowError::Cancelled) => return Err(NodeFailure::cancelled()),
        Err(RowError::TooLong { .. }) => {
            let max = limits.max_csv_record_bytes;
            return Err(NodeFailure::limit(
                "max_csv_record_bytes",
                max,
                format!("{}: the header is longer than {max} bytes", path.display()),
                "path",
            ));
        }
        Err(RowError::TooManyFields { .. }) => {
            let max = limits.max_csv_record_fields;
            return Err(NodeFailure::limit(
                "max_csv_record_fields",
                max,
                format!("{}: the header has more than {max} fields", path.display()),
                "path",
            ));
        }
        Err(RowError::Unterminated { .. }) => {
            return Err(NodeFailure::new(
                crate::node::codes::CSV_ERROR,
                format!("{}: cannot read the header to append to", path.display()),
            ))
        }
    };
    Ok(Some((header, last[0] == b'\n')))
}

/// The rows as objects, or `invalid_parameters` for `rows`.
fn objects(rows: Vec<Value>) -> Result<Vec<Map<String, Value>>, NodeFailure> {
    rows.into_iter()
        .enumerate()
        .map(|(i, row)| match row {
            Value::Object(map) => Ok(map),
            other => Err(wrong_type(&format!("rows[{i}]"), "an object", &other).with_field("rows")),
        })
        .collect()
}

/// The keys of the first row in order, then each new key as met.
fn keys_in_order(rows: &[Map<String, Value>]) -> Vec<String> {
    let mut columns: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for row in rows {
        for key in row.keys() {
            if seen.insert(key.as_str()) {
                columns.push(key.clone());
            }
        }
    }
    columns
}

impl NativeNode for CsvWrite {
    fn name(&self) -> &'static str {
        "csv.write"
    }

    fn description(&self) -> &'static str {
        "Write rows of objects to a CSV file, replacing it or appending to it."
    }

    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "path": {"type": "string", "format": "path", "description": "absolute path of the CSV file"},
                "rows": {"type": "array", "items": {"type": "object"}},
                "columns": {
                    "type": "array", "items": {"type": "string"},
                    "description": "columns in order; default: the keys of the first row, then new keys as met"
                },
                "delimiter": {"type": "string", "minLength": 1, "maxLength": 1, "default": ","},
                "append": {
                    "type": "boolean", "default": false,
                    "description": "add to the end of the file, following its header"
                },
            },
            "required": ["path", "rows"],
            "additionalProperties": false,
        })
    }

    fn output_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "rows_written": {"type": "integer"},
                "path": {"type": "string"},
            },
            "required": ["rows_written", "path"],
            "additionalProperties": false,
        })
    }

    fn run(&self, params: Value, ctx: &NodeCtx) -> Result<Value, NodeFailure> {
        let mut p = Params::new(params)?;
        let path = p.path("path")?;
        let rows = match p.take("rows") {
            Some(Value::Array(rows)) => objects(rows)?,
            Some(other) => return Err(wrong_type("rows", "an array of objects", &other)),
            None => return Err(NodeFailure::invalid("rows", "`rows` is required")),
        };
        let columns = p.opt_str_list("columns")?;
        let delimiter = p.byte_or("delimiter", b',')?;
        let append = p.bool_or("append", false)?;
        p.finish()?;

        let existing = if append {
            existing_header(&path, delimiter, ctx)?
        } else {
            None
        };
        let columns = match (&existing, columns) {
            (Some((header, _)), Some(columns)) if *header != columns => {
                return Err(NodeFailure::invalid(
                    "columns",
                    format!(
                        "`columns` {columns:?} differ from the header of {}: {header:?}",
                        path.display()
                    ),
                ))
            }
            (Some((header, _)), _) => {
                for (i, row) in rows.iter().enumerate() {
                    if let Some(key) = row.keys().find(|k| !header.contains(k)) {
                        return Err(NodeFailure::invalid(
                            "rows",
                            format!(
                                "rows[{i}] has '{key}', which is not a column of {}; its columns are {}",
                                path.display(),
                                header.join(", ")
                            ),
                        ));
                    }
                }
                header.clone()
            }
            (None, Some(columns)) => columns,
            (None, None) => keys_in_order(&rows),
        };
        if let Some((_, false)) = existing {
            // The file's last line has no line break: add one so the rows start afresh.
            files::open_append(&path, "path")?
                .write_all(b"\n")
                .map_err(|e| NodeFailure::io("write", &path, &e))?;
        }
        let mut writer =
            RowWriter::create(&path, "path", Format::Csv, delimiter, &columns, append)?;
        for (i, row) in rows.iter().enumerate() {
            if (i as u64).is_multiple_of(CHECK_EVERY) {
                ctx.check()?;
            }
            writer.write(columns.iter().map(|c| row.get(c).unwrap_or(&NULL)))?;
        }
        let written = writer.finish()?;
        Ok(json!({"rows_written": written, "path": path.to_string_lossy()}))
    }
}
