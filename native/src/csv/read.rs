//! `csv.read`: a CSV file's rows as objects, with typed values.

use serde_json::{json, Value};

use super::emit::{Emitter, MAX_INLINE_ROWS};
use super::scan::{Flow, Pass, Sink, Slot, Stats};
use super::source::{option_schemas, CsvOptions};
use super::types::Cell;
use crate::node::{NativeNode, NodeCtx, NodeFailure};
use crate::params::Params;

/// The `csv.read` node.
pub struct CsvRead;

/// Skips `offset` rows, then emits up to `limit`.
struct Window<'e> {
    offset: u64,
    left: u64,
    emitter: &'e mut Emitter,
}

impl Sink for Window<'_> {
    fn accept(&mut self, cells: &[Cell<'_>]) -> Result<Flow, NodeFailure> {
        if self.offset > 0 {
            self.offset -= 1;
            return Ok(Flow::More);
        }
        self.emitter.push(cells.iter().copied())?;
        self.left -= 1;
        Ok(if self.left == 0 {
            Flow::Stop
        } else {
            Flow::More
        })
    }
}

impl NativeNode for CsvRead {
    fn name(&self) -> &'static str {
        "csv.read"
    }

    fn description(&self) -> &'static str {
        "Read a CSV file into rows of typed values (declared, or inferred from the first 1000 rows)."
    }

    fn input_schema(&self) -> Value {
        let mut properties = option_schemas();
        properties.insert(
            "limit".into(),
            json!({"type": "integer", "minimum": 0, "description": "most rows to return"}),
        );
        properties.insert(
            "offset".into(),
            json!({"type": "integer", "minimum": 0, "description": "rows to skip first"}),
        );
        properties.insert(
            "max_rows".into(),
            json!({
                "type": "integer", "minimum": 0, "default": MAX_INLINE_ROWS,
                "description": "fail rather than return more rows than this"
            }),
        );
        json!({
            "type": "object",
            "properties": properties,
            "required": ["path"],
            "additionalProperties": false,
        })
    }

    fn output_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "rows": {"type": "array", "items": {"type": "object"}},
                "columns": {"type": "array", "items": {"type": "string"}},
                "skipped": {"type": "integer"},
            },
            "required": ["rows", "columns", "skipped"],
            "additionalProperties": false,
        })
    }

    fn run(&self, params: Value, ctx: &NodeCtx) -> Result<Value, NodeFailure> {
        let mut p = Params::new(params)?;
        let options = CsvOptions::from_params(&mut p)?.guarded(ctx);
        let limit = p.opt_u64("limit")?;
        let offset = p.opt_u64("offset")?.unwrap_or(0);
        let max_rows = p.opt_u64("max_rows")?.unwrap_or(MAX_INLINE_ROWS);
        p.finish()?;
        let table = options.open()?;
        let slots: Vec<Slot> = table
            .types
            .iter()
            .enumerate()
            .map(|(col, &ty)| Slot { col, ty })
            .collect();
        let mut emitter = Emitter::new(
            None,
            table.names.clone(),
            max_rows,
            options.limits.max_output_bytes,
            "read fewer with `limit`, or use csv.query with `output` to filter or write them to a file",
        )?;
        let mut stats = Stats::default();
        if limit != Some(0) {
            let pass = Pass {
                options: &options,
                table: &table,
                slots: &slots,
                filter: None,
                ctx,
            };
            let mut reader = options.reader(table.data_start, u64::MAX)?;
            let mut window = Window {
                offset,
                left: limit.unwrap_or(u64::MAX),
                emitter: &mut emitter,
            };
            pass.run(&mut reader, &mut window, &mut stats)
                .map_err(|e| e.into_failure(&options, &table, table.data_line - 1))?;
        }
        emitter.finish(None, stats.skipped)
    }
}
