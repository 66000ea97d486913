//! Writing rows to a file as CSV or JSON Lines.
//!
//! A new file is written under a temporary name beside its target and renamed into place
//! by [`RowWriter::finish`], so a failed or cancelled node never leaves half a file; an
//! append goes straight to the target.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Value};

use super::types::{Cell, Scalar};
use crate::files;
use crate::node::NodeFailure;
use crate::params::{absolute_path, wrong_type};

/// An output file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
}

/// Where query results go instead of the node's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSpec {
    pub path: PathBuf,
    pub format: Format,
}

impl OutputSpec {
    /// Reads `{"path": ..., "format": "csv" | "jsonl"}`; the format defaults to the path's
    /// extension (`.jsonl`, `.ndjson`), else CSV.
    ///
    /// # Errors
    /// `invalid_parameters` or `invalid_path` for the field `output`.
    pub fn from_value(value: Value) -> Result<Self, NodeFailure> {
        const FIELD: &str = "output";
        let Value::Object(mut map) = value else {
            return Err(wrong_type(FIELD, "an object", &value));
        };
        let path = match map.shift_remove("path") {
            Some(Value::String(s)) => absolute_path(FIELD, s)?,
            _ => {
                return Err(NodeFailure::invalid(
                    FIELD,
                    "`output.path` is required and must be a string",
                ))
            }
        };
        let format = match map.shift_remove("format") {
            None | Some(Value::Null) => match path.extension().and_then(|e| e.to_str()) {
                Some("jsonl" | "ndjson") => Format::Jsonl,
                _ => Format::Csv,
            },
            Some(Value::String(s)) if s == "csv" => Format::Csv,
            Some(Value::String(s)) if s == "jsonl" => Format::Jsonl,
            Some(other) => {
                return Err(NodeFailure::invalid(
                    FIELD,
                    format!("`output.format` must be \"csv\" or \"jsonl\", not {other}"),
                ))
            }
        };
        if let Some(key) = map.keys().next() {
            return Err(NodeFailure::invalid(
                FIELD,
                format!("unknown key `{key}` in `output`"),
            ));
        }
        Ok(OutputSpec { path, format })
    }

    /// The JSON Schema of the `output` parameter.
    #[must_use]
    pub fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "path": {"type": "string", "format": "path", "description": "absolute path of the file to write"},
                "format": {"enum": ["csv", "jsonl"]},
            },
            "required": ["path"],
            "additionalProperties": false,
            "description": "write the rows to this file instead of returning them",
        })
    }
}

/// A value that can be written as a CSV field and as JSON.
pub trait OutCell {
    /// Appends the CSV text (null is empty).
    fn csv_text(&self, buf: &mut String);
    /// Appends the JSON text.
    fn json(&self, buf: &mut Vec<u8>);
}

impl OutCell for Cell<'_> {
    fn csv_text(&self, buf: &mut String) {
        match self {
            Cell::Null => {}
            Cell::Int(i) => {
                let _ = write!(buf, "{i}");
            }
            // Debug keeps the `.0` of whole numbers, so the text reads back as a float.
            Cell::Float(f) => {
                let _ = write!(buf, "{f:?}");
            }
            Cell::Bool(b) => buf.push_str(if *b { "true" } else { "false" }),
            Cell::Str(s) => buf.push_str(s),
        }
    }

    fn json(&self, buf: &mut Vec<u8>) {
        match self {
            Cell::Str(s) => {
                let _ = serde_json::to_writer(&mut *buf, s);
            }
            other => {
                let _ = serde_json::to_writer(&mut *buf, &other.to_json());
            }
        }
    }
}

impl OutCell for Scalar {
    fn csv_text(&self, buf: &mut String) {
        self.as_cell().csv_text(buf);
    }

    fn json(&self, buf: &mut Vec<u8>) {
        self.as_cell().json(buf);
    }
}

impl<T: OutCell + ?Sized> OutCell for &T {
    fn csv_text(&self, buf: &mut String) {
        (**self).csv_text(buf);
    }

    fn json(&self, buf: &mut Vec<u8>) {
        (**self).json(buf);
    }
}

impl OutCell for Value {
    fn csv_text(&self, buf: &mut String) {
        match self {
            Value::Null => {}
            Value::String(s) => buf.push_str(s),
            Value::Bool(b) => buf.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) => {
                let _ = write!(buf, "{n}");
            }
            // Nested values are written as JSON text.
            other => buf.push_str(&other.to_string()),
        }
    }

    fn json(&self, buf: &mut Vec<u8>) {
        let _ = serde_json::to_writer(&mut *buf, self);
    }
}

enum Sink {
    Csv(Box<csv::Writer<BufWriter<File>>>),
    Jsonl(BufWriter<File>),
}

/// Writes rows of a fixed list of columns to a file.
pub struct RowWriter {
    sink: Option<Sink>,
    path: PathBuf,
    /// The temporary file renamed into place on finish; `None` when appending.
    temp: Option<PathBuf>,
    /// For JSON Lines: `"name":` for each column, encoded once.
    keys: Vec<Vec<u8>>,
    text: String,
    line: Vec<u8>,
    rows: u64,
}

fn temp_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map_or_else(|| "output".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.{}-{n}.tmp", std::process::id()))
}

impl RowWriter {
    /// Creates (or, with `append`, extends) `path`, the parameter `field`, for rows of
    /// `columns`. A CSV file gets a header row unless it is appended to and not empty.
    ///
    /// # Errors
    /// `invalid_path` when `path` is a FIFO, socket, device or folder; `io_error` when the
    /// file cannot be created.
    ///
    /// # Panics
    /// Never: column names always serialize.
    pub fn create(
        path: &Path,
        field: &str,
        format: Format,
        delimiter: u8,
        columns: &[String],
        append: bool,
    ) -> Result<Self, NodeFailure> {
        let (file, temp, header) = if append {
            let file = files::open_append(path, field)?;
            let empty = file
                .metadata()
                .map_err(|e| NodeFailure::io("open", path, &e))?
                .len()
                == 0;
            (file, None, empty)
        } else {
            // Renaming over a FIFO or device would replace it: refuse those.
            files::check_target(path, field)?;
            let temp = temp_path(path);
            let file = files::create_new(&temp, path, field)?;
            (file, Some(temp), true)
        };
        let out = BufWriter::with_capacity(256 * 1024, file);
        let sink = match format {
            Format::Csv => Sink::Csv(Box::new(
                csv::WriterBuilder::new()
                    .delimiter(delimiter)
                    .flexible(true)
                    .from_writer(out),
            )),
            Format::Jsonl => Sink::Jsonl(out),
        };
        let keys = columns
            .iter()
            .map(|c| {
                let mut key = serde_json::to_vec(c).expect("strings serialize");
                key.push(b':');
                key
            })
            .collect();
        let mut writer = RowWriter {
            sink: Some(sink),
            path: path.to_owned(),
            temp,
            keys,
            text: String::new(),
            line: Vec::new(),
            rows: 0,
        };
        if header && format == Format::Csv && !columns.is_empty() {
            writer.write_csv(columns.iter().map(String::as_bytes))?;
        }
        Ok(writer)
    }

    fn io(&self, err: &std::io::Error) -> NodeFailure {
        NodeFailure::io("write", &self.path, err)
    }

    fn write_csv<'b>(&mut self, fields: impl Iterator<Item = &'b [u8]>) -> Result<(), NodeFailure> {
        let Some(Sink::Csv(w)) = &mut self.sink else {
            unreachable!("a CSV writer")
        };
        let result = w.write_record(fields);
        result.map_err(|e| self.io(&e.into()))
    }

    /// Writes one row: a cell per column, in column order.
    ///
    /// # Errors
    /// `io_error` when writing fails.
    ///
    /// # Panics
    /// After `finish`, which consumes the writer, so never.
    pub fn write<C: OutCell>(
        &mut self,
        cells: impl IntoIterator<Item = C>,
    ) -> Result<(), NodeFailure> {
        let result = match self.sink.as_mut().expect("not finished") {
            Sink::Csv(w) => {
                let mut result = Ok(());
                for cell in cells {
                    self.text.clear();
                    cell.csv_text(&mut self.text);
                    if let Err(e) = w.write_field(self.text.as_bytes()) {
                        result = Err(e.into());
                        break;
                    }
                }
                result.and_then(|()| w.write_record(None::<&[u8]>).map_err(Into::into))
            }
            Sink::Jsonl(w) => {
                self.line.clear();
                self.line.push(b'{');
                for (i, (key, cell)) in self.keys.iter().zip(cells).enumerate() {
                    if i > 0 {
                        self.line.push(b',');
                    }
                    self.line.extend_from_slice(key);
                    cell.json(&mut self.line);
                }
                self.line.extend_from_slice(b"}\n");
                w.write_all(&self.line)
            }
        };
        self.rows += 1;
        result.map_err(|e: std::io::Error| self.io(&e))
    }

    /// The rows written so far.
    #[must_use]
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Flushes, and moves a new file into place.
    ///
    /// # Errors
    /// `io_error` when flushing or renaming fails.
    ///
    /// # Panics
    /// Never: the sink is there until this consumes the writer.
    pub fn finish(mut self) -> Result<u64, NodeFailure> {
        let flushed = match self.sink.take().expect("not finished") {
            Sink::Csv(w) => w
                .into_inner()
                .map_err(|e| std::io::Error::other(e.to_string()))
                .and_then(|out| {
                    out.into_inner()
                        .map_err(std::io::IntoInnerError::into_error)
                }),
            Sink::Jsonl(out) => out
                .into_inner()
                .map_err(std::io::IntoInnerError::into_error),
        };
        let file = flushed.map_err(|e| self.io(&e))?;
        drop(file);
        if let Some(temp) = self.temp.take() {
            if let Err(e) = std::fs::rename(&temp, &self.path) {
                let _ = std::fs::remove_file(&temp);
                return Err(self.io(&e));
            }
        }
        Ok(self.rows)
    }
}

impl Drop for RowWriter {
    fn drop(&mut self) {
        // Not finished: throw the partial file away.
        if let Some(temp) = self.temp.take() {
            self.sink = None;
            let _ = std::fs::remove_file(temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("polyhost-output-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn csv_and_jsonl() {
        let dir = temp_dir("formats");
        let columns = vec!["a".to_owned(), "b,c".to_owned()];
        let rows = [
            vec![Scalar::Int(1), Scalar::Str("x,\"y\"".into())],
            vec![Scalar::Float(2.0), Scalar::Null],
        ];
        for (format, expected) in [
            (Format::Csv, "a,\"b,c\"\n1,\"x,\"\"y\"\"\"\n2.0,\n"),
            (
                Format::Jsonl,
                "{\"a\":1,\"b,c\":\"x,\\\"y\\\"\"}\n{\"a\":2.0,\"b,c\":null}\n",
            ),
        ] {
            let path = dir.join("out");
            let mut w = RowWriter::create(&path, "output", format, b',', &columns, false).unwrap();
            for row in &rows {
                w.write(row).unwrap();
            }
            assert_eq!(w.finish().unwrap(), 2);
            assert_eq!(std::fs::read_to_string(&path).unwrap(), expected);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_unfinished_file_leaves_nothing() {
        let dir = temp_dir("unfinished");
        let path = dir.join("out.csv");
        let mut w =
            RowWriter::create(&path, "output", Format::Csv, b',', &["a".into()], false).unwrap();
        w.write(&[Scalar::Int(1)]).unwrap();
        drop(w);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn output_spec_defaults_the_format_from_the_extension() {
        let spec = OutputSpec::from_value(json!({"path": "/tmp/x.jsonl"})).unwrap();
        assert_eq!(spec.format, Format::Jsonl);
        let err = OutputSpec::from_value(json!({"path": "x.csv"})).unwrap_err();
        assert_eq!(err.code, "invalid_path");
        assert!(OutputSpec::from_value(json!({"path": "/x", "format": "xml"})).is_err());
    }
}
