//! Opening a CSV file: the reader options every CSV node shares, the header, and the
//! column types (declared, or inferred from the first rows).

use std::collections::HashSet;
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::reader::{Dialect, Encoding, RowError, RowReader};
use super::types::{ColType, Inference, INFER_ROWS};
use crate::files;
use crate::node::{codes, NativeLimits, NodeCtx, NodeFailure};
use crate::params::Params;

/// The options shared by `csv.read` and `csv.query`.
#[derive(Debug, Clone)]
pub struct CsvOptions {
    pub path: PathBuf,
    pub dialect: Dialect,
    pub header: bool,
    /// Declared types, by column name.
    pub declared: Vec<(String, ColType)>,
    pub lenient: bool,
    /// The record limits every reader of the file keeps to.
    pub limits: NativeLimits,
    /// Set when the run is cancelled; readers check it before every read.
    pub cancel: Option<Arc<AtomicBool>>,
}

/// JSON Schema properties for the options in [`CsvOptions`].
#[must_use]
pub fn option_schemas() -> Map<String, Value> {
    let Value::Object(map) = json!({
        "path": {"type": "string", "format": "path", "description": "absolute path of the CSV file"},
        "delimiter": {"type": "string", "minLength": 1, "maxLength": 1, "default": ","},
        "quote": {"type": "string", "minLength": 1, "maxLength": 1, "default": "\""},
        "header": {
            "type": "boolean", "default": true,
            "description": "the first row names the columns; without one they are c0, c1, ..."
        },
        "encoding": {"enum": ["utf-8", "latin-1"], "default": "utf-8"},
        "columns": {
            "type": "object",
            "additionalProperties": {"enum": ["string", "int", "float", "bool"]},
            "description": "declared column types; the others are inferred from the first 1000 rows"
        },
        "lenient": {
            "type": "boolean", "default": false,
            "description": "skip malformed rows (counted in `skipped`) instead of failing"
        },
    }) else {
        unreachable!("a JSON object literal")
    };
    map
}

impl CsvOptions {
    /// Takes the shared options out of `params`.
    ///
    /// # Errors
    /// `invalid_parameters` naming the option at fault, `invalid_path` for a relative path.
    pub fn from_params(params: &mut Params) -> Result<Self, NodeFailure> {
        let path = params.path("path")?;
        let delimiter = params.byte_or("delimiter", b',')?;
        let quote = params.byte_or("quote", b'"')?;
        if quote == delimiter {
            return Err(NodeFailure::invalid(
                "quote",
                "`quote` and `delimiter` must differ",
            ));
        }
        let encoding = match params.opt_str("encoding")?.as_deref() {
            None | Some("utf-8" | "utf8" | "UTF-8") => Encoding::Utf8,
            Some("latin-1" | "latin1" | "iso-8859-1" | "ISO-8859-1") => Encoding::Latin1,
            Some(other) => {
                return Err(NodeFailure::invalid(
                    "encoding",
                    format!("`encoding` must be \"utf-8\" or \"latin-1\", not {other:?}"),
                ))
            }
        };
        let mut declared = Vec::new();
        for (name, ty) in params.opt_object("columns")?.unwrap_or_default() {
            let ty = ty.as_str().and_then(ColType::from_name).ok_or_else(|| {
                NodeFailure::invalid(
                    "columns",
                    format!(
                        "the type of column '{name}' must be \"string\", \"int\", \"float\" or \"bool\", not {ty}"
                    ),
                )
            })?;
            declared.push((name, ty));
        }
        Ok(CsvOptions {
            path,
            dialect: Dialect {
                delimiter,
                quote,
                encoding,
            },
            header: params.bool_or("header", true)?,
            declared,
            lenient: params.bool_or("lenient", false)?,
            limits: NativeLimits::default(),
            cancel: None,
        })
    }

    /// The same options, with the run's limits and cancel flag.
    #[must_use]
    pub fn guarded(mut self, ctx: &NodeCtx) -> Self {
        self.limits = *ctx.limits();
        self.cancel = Some(ctx.cancel_flag().clone());
        self
    }

    /// The failure for a reader error that is not about one malformed row: a read error,
    /// a record past a limit, or a cancel. `line_offset` is the number of lines before the
    /// reader's range.
    #[must_use]
    pub fn reader_failure(&self, err: RowError, line_offset: u64) -> NodeFailure {
        let path = self.path.display();
        match err {
            RowError::Io(e) => NodeFailure::io("read", &self.path, &e),
            RowError::Cancelled => NodeFailure::cancelled(),
            RowError::TooLong { line } => {
                let max = self.limits.max_csv_record_bytes;
                NodeFailure::limit(
                    "max_csv_record_bytes",
                    max,
                    format!(
                        "{path}: line {}: a record longer than {max} bytes",
                        line + line_offset
                    ),
                    "path",
                )
            }
            RowError::TooManyFields { line } => {
                let max = self.limits.max_csv_record_fields;
                NodeFailure::limit(
                    "max_csv_record_fields",
                    max,
                    format!(
                        "{path}: line {}: a record with more than {max} fields",
                        line + line_offset
                    ),
                    "path",
                )
            }
            RowError::Unterminated { line, .. } => self.error(format!(
                "line {}: unterminated quoted field in a data row (the file ends inside it)",
                line + line_offset
            )),
        }
    }

    /// A reader of `file` from offset `start`, with this file's dialect and limits.
    fn row_reader(&self, file: File, start: u64, limit: u64) -> RowReader<File> {
        RowReader::new(file, self.dialect, start, limit).guarded(
            self.limits.max_csv_record_bytes,
            self.limits.max_csv_record_fields,
            self.cancel.clone(),
        )
    }

    /// A `csv_error` about this file.
    #[must_use]
    pub fn error(&self, message: impl std::fmt::Display) -> NodeFailure {
        NodeFailure::new(
            codes::CSV_ERROR,
            format!("{}: {message}", self.path.display()),
        )
    }

    /// Opens the file, reads its header and settles the column types.
    ///
    /// # Errors
    /// `io_error` when the file cannot be read, `csv_error` for a malformed header,
    /// `invalid_parameters` for a declared column the file does not have.
    pub fn open(&self) -> Result<Table, NodeFailure> {
        let file = self.open_file()?;
        let len = file
            .metadata()
            .map_err(|e| NodeFailure::io("read", &self.path, &e))?
            .len();
        let mut reader = self.row_reader(file, 0, u64::MAX);
        reader.skip_bom().map_err(|e| self.reader_failure(e, 0))?;
        let mut table = Table {
            names: Vec::new(),
            types: Vec::new(),
            declared: Vec::new(),
            data_start: reader.position(),
            data_line: 1,
            len,
        };
        let mut inference = Vec::new();
        let mut rows = 0;
        loop {
            let record = match reader.next_record() {
                Ok(Some(record)) => record,
                Err(RowError::Unterminated { line, .. })
                    if table.names.is_empty() && self.header =>
                {
                    return Err(self.error(format!(
                        "line {line}: unterminated quoted field in the header"
                    )))
                }
                // Data rows get their errors, with their lines, when they are scanned.
                Ok(None) | Err(RowError::Unterminated { .. }) => break,
                Err(other) => return Err(self.reader_failure(other, 0)),
            };
            if table.names.is_empty() {
                inference = vec![Inference::default(); record.len()];
                if self.header {
                    table.names = header_names(self, &record)?;
                    table.data_start = reader.position();
                    table.data_line = reader.line();
                    continue;
                }
                table.names = (0..record.len()).map(|i| format!("c{i}")).collect();
            }
            if record.len() == inference.len() {
                for (i, inf) in inference.iter_mut().enumerate() {
                    inf.observe(record.get(i));
                }
            }
            rows += 1;
            if rows >= INFER_ROWS {
                break;
            }
        }
        table.types = inference.iter().map(Inference::result).collect();
        table.declared = vec![false; table.names.len()];
        for (name, ty) in &self.declared {
            let i = table.column(name).ok_or_else(|| {
                NodeFailure::invalid(
                    "columns",
                    format!(
                        "`columns` declares '{name}', which is not a column of {}; the columns are {}",
                        self.path.display(),
                        table.names.join(", ")
                    ),
                )
            })?;
            table.types[i] = *ty;
            table.declared[i] = true;
        }
        Ok(table)
    }

    /// Opens the file, refusing anything but a regular file.
    ///
    /// # Errors
    /// `invalid_path` for a FIFO, socket, device or folder, `io_error` when it cannot be
    /// opened.
    pub fn open_file(&self) -> Result<File, NodeFailure> {
        files::open_read(&self.path, "path")
    }

    /// A reader of the data rows from byte `start` up to the first record at or after
    /// `limit`.
    ///
    /// # Errors
    /// `io_error` when the file cannot be opened or positioned.
    pub fn reader(&self, start: u64, limit: u64) -> Result<RowReader<File>, NodeFailure> {
        let mut file = self.open_file()?;
        file.seek(SeekFrom::Start(start))
            .map_err(|e| NodeFailure::io("read", &self.path, &e))?;
        Ok(self.row_reader(file, start, limit))
    }
}

/// Column names from the header row: an empty name becomes `c{i}`, a repeated one gets
/// `_1`, `_2`, ... appended.
fn header_names(
    options: &CsvOptions,
    record: &super::reader::Record<'_>,
) -> Result<Vec<String>, NodeFailure> {
    let mut names: Vec<String> = Vec::with_capacity(record.len());
    let mut taken: HashSet<String> = HashSet::with_capacity(record.len());
    for i in 0..record.len() {
        let raw = std::str::from_utf8(record.get(i)).map_err(|_| {
            options.error(format!(
                "line {}: header field {} is not valid UTF-8 (set `encoding`)",
                record.line,
                i + 1
            ))
        })?;
        let base = if raw.is_empty() {
            format!("c{i}")
        } else {
            raw.to_owned()
        };
        let mut name = base.clone();
        let mut n = 0;
        while taken.contains(&name) {
            n += 1;
            name = format!("{base}_{n}");
        }
        taken.insert(name.clone());
        names.push(name);
    }
    Ok(names)
}

/// A file's columns and where its data rows start.
#[derive(Debug, Clone)]
pub struct Table {
    pub names: Vec<String>,
    pub types: Vec<ColType>,
    /// Whether each column's type was declared rather than inferred.
    pub declared: Vec<bool>,
    /// Byte offset of the first data row.
    pub data_start: u64,
    /// Line number of the first data row.
    pub data_line: u64,
    /// File size in bytes.
    pub len: u64,
}

impl Table {
    /// The index of the column called `name`.
    #[must_use]
    pub fn column(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// The index of `name`, or `invalid_parameters` for `field` listing the columns.
    ///
    /// # Errors
    /// When there is no such column.
    pub fn require(&self, name: &str, field: &str) -> Result<usize, NodeFailure> {
        self.column(name).ok_or_else(|| {
            NodeFailure::invalid(
                field,
                format!(
                    "unknown column '{name}' in `{field}`; the columns are {}",
                    self.names.join(", ")
                ),
            )
        })
    }
}
