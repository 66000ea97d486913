//! `csv.query`: filter, project, group, aggregate, order and limit in one streaming pass.
//!
//! Memory stays bounded by what the answer needs: a grouped query keeps one state per
//! group; an unordered row query streams each passing row to its output and stops at
//! `limit`; an ordered one with a `limit` keeps the best `limit` rows; only an ordered
//! query without a limit keeps every passing row.

use std::cmp::Ordering;

use serde_json::{json, Value};

use super::aggregate::{AggOp, AggSpec, Groups};
use super::emit::{Emitter, MAX_INLINE_ROWS};
use super::output::OutputSpec;
use super::parallel::scan_groups;
use super::predicate::{self, Predicate};
use super::scan::{Flow, Pass, Sink, Slots, Stats};
use super::source::{option_schemas, CsvOptions, Table};
use super::types::{Cell, Scalar};
use crate::node::{NativeLimits, NativeNode, NodeCtx, NodeFailure};
use crate::params::Params;

const ADVICE: &str = "set `limit`, or write the rows to a file with `output`";

/// The `csv.query` node.
pub struct CsvQuery;

/// A parsed `csv.query` request.
struct Spec {
    options: CsvOptions,
    select: Option<Vec<String>>,
    filter: Option<String>,
    group_by: Vec<String>,
    aggregate: Vec<(String, AggOp, Option<String>)>,
    order_by: Vec<(String, bool)>,
    limit: Option<u64>,
    output: Option<OutputSpec>,
    max_rows: Option<u64>,
}

impl Spec {
    fn from_params(params: Value, ctx: &NodeCtx) -> Result<Self, NodeFailure> {
        let mut p = Params::new(params)?;
        let options = CsvOptions::from_params(&mut p)?.guarded(ctx);
        let mut aggregate = Vec::new();
        for (name, spec) in p.opt_object("aggregate")?.unwrap_or_default() {
            aggregate.push(aggregate_spec(name, spec)?);
        }
        let order_by = p
            .opt_str_list("order_by")?
            .unwrap_or_default()
            .into_iter()
            .map(|key| match key.strip_prefix('-') {
                Some(name) => (name.to_owned(), true),
                None => (key, false),
            })
            .collect();
        let spec = Spec {
            options,
            select: p.opt_str_list("select")?,
            filter: p.opt_str("where")?,
            group_by: p.opt_str_list("group_by")?.unwrap_or_default(),
            aggregate,
            order_by,
            limit: p.opt_u64("limit")?,
            output: p.take("output").map(OutputSpec::from_value).transpose()?,
            max_rows: p.opt_u64("max_rows")?,
        };
        p.finish()?;
        Ok(spec)
    }

    fn grouped(&self) -> bool {
        !self.group_by.is_empty() || !self.aggregate.is_empty()
    }

    fn max_inline(&self) -> u64 {
        self.max_rows.unwrap_or(MAX_INLINE_ROWS)
    }
}

fn aggregate_spec(
    name: String,
    spec: Value,
) -> Result<(String, AggOp, Option<String>), NodeFailure> {
    const FIELD: &str = "aggregate";
    let bad = |why: &str| NodeFailure::invalid(FIELD, format!("aggregate '{name}': {why}"));
    let Value::Object(mut map) = spec else {
        return Err(bad("must be an object {\"op\": ..., \"column\": ...}"));
    };
    let op = match map.shift_remove("op") {
        Some(Value::String(op)) => AggOp::from_name(&op).ok_or_else(|| {
            bad(&format!(
                "unknown op {op:?}; use count, sum, min, max or mean"
            ))
        })?,
        _ => return Err(bad("`op` is required: count, sum, min, max or mean")),
    };
    let column = match map.shift_remove("column") {
        None | Some(Value::Null) => None,
        Some(Value::String(c)) => Some(c),
        Some(_) => return Err(bad("`column` must be a string")),
    };
    if let Some(key) = map.keys().next() {
        return Err(bad(&format!("unknown key `{key}`")));
    }
    if column.is_none() && op != AggOp::Count {
        return Err(bad("this op needs a `column`"));
    }
    Ok((name, op, column))
}

/// The index of each name of `wanted` in `available`, or `invalid_parameters` for `field`.
fn positions(
    wanted: &[String],
    available: &[String],
    field: &str,
) -> Result<Vec<usize>, NodeFailure> {
    wanted
        .iter()
        .map(|name| {
            available.iter().position(|a| a == name).ok_or_else(|| {
                NodeFailure::invalid(
                    field,
                    format!(
                        "unknown column '{name}' in `{field}`; the choices are {}",
                        available.join(", ")
                    ),
                )
            })
        })
        .collect()
}

/// Compares two rows by `keys` (index into the row, descending?); nulls always last.
fn compare(a: &[Scalar], b: &[Scalar], keys: &[(usize, bool)]) -> Ordering {
    for &(i, descending) in keys {
        let ord = match (&a[i], &b[i]) {
            (Scalar::Null, Scalar::Null) => Ordering::Equal,
            (Scalar::Null, _) => Ordering::Greater,
            (_, Scalar::Null) => Ordering::Less,
            (x, y) if descending => y.order(x),
            (x, y) => x.order(y),
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

fn compile_filter(
    spec: &Spec,
    table: &Table,
    slots: &mut Slots,
) -> Result<Option<Predicate>, NodeFailure> {
    let Some(source) = &spec.filter else {
        return Ok(None);
    };
    let ast = predicate::parse(source, spec.options.limits.max_csv_where_depth)?;
    for name in ast.columns() {
        if let Some(col) = table.column(name) {
            slots.add(table, col);
        }
    }
    let resolve = |name: &str| {
        let col = table.column(name)?;
        let slot = slots.slots.iter().position(|s| s.col == col)?;
        Some((slot, table.types[col]))
    };
    Predicate::compile(&ast, &resolve, &table.names).map(Some)
}

/// Streams passing rows straight to the emitter, stopping at the limit.
struct Stream<'e> {
    out: Vec<usize>,
    emitter: &'e mut Emitter,
    left: u64,
}

impl Sink for Stream<'_> {
    fn accept(&mut self, cells: &[Cell<'_>]) -> Result<Flow, NodeFailure> {
        self.emitter.push(self.out.iter().map(|&s| cells[s]))?;
        self.left -= 1;
        Ok(if self.left == 0 {
            Flow::Stop
        } else {
            Flow::More
        })
    }
}

/// Keeps passing rows for ordering: all of them, or the best `limit` so far.
struct Keep {
    /// Slots kept per row: the output columns, then the sort keys.
    take: Vec<usize>,
    keys: Vec<(usize, bool)>,
    limit: Option<usize>,
    max_rows: Option<u64>,
    rows: Vec<Vec<Scalar>>,
}

impl Keep {
    fn compact(&mut self, limit: usize) {
        let keys = &self.keys;
        self.rows.sort_by(|a, b| compare(a, b, keys));
        self.rows.truncate(limit);
    }
}

impl Sink for Keep {
    fn accept(&mut self, cells: &[Cell<'_>]) -> Result<Flow, NodeFailure> {
        self.rows
            .push(self.take.iter().map(|&s| Scalar::from(cells[s])).collect());
        match self.limit {
            Some(limit) if self.rows.len() >= limit.saturating_mul(2).max(1024) => {
                self.compact(limit);
            }
            None => {
                if let Some(max) = self.max_rows {
                    if self.rows.len() as u64 > max {
                        return Err(super::emit::too_many_rows(max, ADVICE));
                    }
                }
            }
            Some(_) => {}
        }
        Ok(Flow::More)
    }
}

fn run_rows(
    spec: &Spec,
    table: &Table,
    mut slots: Slots,
    filter: Option<&Predicate>,
    ctx: &NodeCtx,
) -> Result<Value, NodeFailure> {
    let columns = spec.select.clone().unwrap_or_else(|| table.names.clone());
    let out: Vec<usize> = positions(&columns, &table.names, "select")?
        .into_iter()
        .map(|col| slots.add(table, col))
        .collect();
    let order_cols = positions(
        &spec
            .order_by
            .iter()
            .map(|(n, _)| n.clone())
            .collect::<Vec<_>>(),
        &table.names,
        "order_by",
    )?;
    let order_slots: Vec<usize> = order_cols.iter().map(|&c| slots.add(table, c)).collect();
    let inline = spec.output.is_none();
    let mut emitter = Emitter::new(
        spec.output.as_ref(),
        columns,
        spec.max_inline(),
        spec.options.limits.max_output_bytes,
        ADVICE,
    )?;
    let mut stats = Stats::default();
    let pass = Pass {
        options: &spec.options,
        table,
        slots: &slots.slots,
        filter,
        ctx,
    };
    let mut reader = spec.options.reader(table.data_start, u64::MAX)?;
    let fail =
        |e: super::scan::ScanError| e.into_failure(&spec.options, table, table.data_line - 1);
    if spec.limit == Some(0) {
        // Nothing to read.
    } else if order_slots.is_empty() {
        let mut sink = Stream {
            out,
            emitter: &mut emitter,
            left: spec.limit.unwrap_or(u64::MAX),
        };
        pass.run(&mut reader, &mut sink, &mut stats).map_err(fail)?;
    } else {
        let width = out.len();
        let mut take = out;
        take.extend(&order_slots);
        let keys: Vec<(usize, bool)> = spec
            .order_by
            .iter()
            .enumerate()
            .map(|(i, (_, desc))| (width + i, *desc))
            .collect();
        let limit = spec.limit.map(|l| usize::try_from(l).unwrap_or(usize::MAX));
        let mut keep = Keep {
            take,
            keys,
            limit,
            max_rows: if inline {
                Some(spec.max_inline())
            } else {
                None
            },
            rows: Vec::new(),
        };
        pass.run(&mut reader, &mut keep, &mut stats).map_err(fail)?;
        keep.compact(limit.unwrap_or(usize::MAX));
        for row in &keep.rows {
            ctx.check()?;
            emitter.push(row[..width].iter().map(Scalar::as_cell))?;
        }
    }
    let skipped = stats.skipped;
    emitter.finish(Some(stats), skipped)
}

fn run_grouped(
    spec: &Spec,
    table: &Table,
    mut slots: Slots,
    filter: Option<&Predicate>,
    ctx: &NodeCtx,
) -> Result<Value, NodeFailure> {
    let mut names = spec.group_by.clone();
    let keys: Vec<usize> = positions(&spec.group_by, &table.names, "group_by")?
        .into_iter()
        .map(|col| slots.add(table, col))
        .collect();
    let mut aggs = Vec::with_capacity(spec.aggregate.len());
    for (name, op, column) in &spec.aggregate {
        if names.contains(name) {
            return Err(NodeFailure::invalid(
                "aggregate",
                format!("aggregate '{name}' has the name of another output column"),
            ));
        }
        let input = match column {
            None => None,
            Some(column) => {
                let col = table.require(column, "aggregate")?;
                let ty = table.types[col];
                if matches!(op, AggOp::Sum | AggOp::Mean) && !ty.is_numeric() {
                    return Err(NodeFailure::invalid(
                        "aggregate",
                        format!(
                            "aggregate '{name}': column '{column}' is {}, not a number; declare its type in `columns` if it holds numbers",
                            ty.name()
                        ),
                    ));
                }
                Some((slots.add(table, col), ty))
            }
        };
        names.push(name.clone());
        aggs.push(AggSpec { op: *op, input });
    }
    let columns = spec.select.clone().unwrap_or_else(|| names.clone());
    let project = positions(&columns, &names, "select")?;
    let order_names: Vec<String> = spec.order_by.iter().map(|(n, _)| n.clone()).collect();
    let order: Vec<(usize, bool)> = positions(&order_names, &names, "order_by")?
        .into_iter()
        .zip(spec.order_by.iter().map(|(_, d)| *d))
        .collect();
    let max_groups = match (&spec.output, spec.max_rows) {
        (None, _) => spec.max_inline(),
        (Some(_), Some(max)) => max,
        (Some(_), None) => u64::MAX,
    };
    let max_groups = usize::try_from(max_groups).unwrap_or(usize::MAX);
    let pass = Pass {
        options: &spec.options,
        table,
        slots: &slots.slots,
        filter,
        ctx,
    };
    let mut stats = Stats::default();
    let make = || Groups::new(&keys, &aggs, max_groups);
    let groups = scan_groups(&pass, &make, &mut stats)?;
    let mut rows = groups.finish();
    if !order.is_empty() {
        rows.sort_by(|a, b| compare(a, b, &order));
    }
    if let Some(limit) = spec.limit {
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    }
    let mut emitter = Emitter::new(
        spec.output.as_ref(),
        columns,
        u64::MAX,
        spec.options.limits.max_output_bytes,
        ADVICE,
    )?;
    for row in &rows {
        emitter.push(project.iter().map(|&i| row[i].as_cell()))?;
    }
    let skipped = stats.skipped;
    emitter.finish(Some(stats), skipped)
}

impl NativeNode for CsvQuery {
    fn name(&self) -> &'static str {
        "csv.query"
    }

    fn description(&self) -> &'static str {
        "Filter, project, group, aggregate, order and limit a CSV file in one streaming pass, \
         returning the rows or writing them to a CSV or JSON Lines file."
    }

    fn input_schema(&self) -> Value {
        let mut properties = option_schemas();
        let names = json!({"type": "array", "items": {"type": "string"}});
        properties.insert("select".into(), json!({
            "type": "array", "items": {"type": "string"},
            "description": "output columns: file columns, or group keys and aggregate names when grouping"
        }));
        properties.insert("where".into(), json!({
            "type": "string",
            "description": "a predicate: comparisons (= != < <= > >=) of a column with a literal, \
                            in (...), is [not] null, and, or, not, parentheses"
        }));
        properties.insert("group_by".into(), names);
        properties.insert(
            "aggregate".into(),
            json!({
                "type": "object",
                "description": "output name -> {op, column}",
                "additionalProperties": {
                    "type": "object",
                    "properties": {
                        "op": {"enum": ["count", "sum", "min", "max", "mean"]},
                        "column": {"type": "string"}
                    },
                    "required": ["op"],
                    "additionalProperties": false
                }
            }),
        );
        properties.insert("order_by".into(), json!({
            "type": "array", "items": {"type": "string"},
            "description": "columns to sort by (file columns; group keys or aggregate names when grouping); a leading '-' sorts descending; nulls last"
        }));
        properties.insert("limit".into(), json!({"type": "integer", "minimum": 0}));
        properties.insert("output".into(), OutputSpec::schema());
        properties.insert(
            "max_rows".into(),
            json!({
                "type": "integer", "minimum": 0, "default": MAX_INLINE_ROWS,
                "description": "most rows (or groups) returned inline"
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
                "rows_written": {"type": "integer"},
                "path": {"type": "string"},
                "rows_scanned": {"type": "integer"},
                "rows_matched": {"type": "integer"},
                "skipped": {"type": "integer"},
            },
            "required": ["columns", "rows_scanned", "rows_matched", "skipped"],
        })
    }

    /// A constant `where` is parsed when the workflow compiles: a syntax error or one
    /// nested too deep is a diagnostic, not a failed run.
    fn check(&self, params: &Value, limits: &NativeLimits) -> Vec<NodeFailure> {
        match params.get("where") {
            Some(Value::String(source)) => predicate::parse(source, limits.max_csv_where_depth)
                .err()
                .into_iter()
                .collect(),
            _ => Vec::new(),
        }
    }

    fn run(&self, params: Value, ctx: &NodeCtx) -> Result<Value, NodeFailure> {
        let spec = Spec::from_params(params, ctx)?;
        let table = spec.options.open()?;
        let mut slots = Slots::default();
        let filter = compile_filter(&spec, &table, &mut slots)?;
        if spec.grouped() {
            run_grouped(&spec, &table, slots, filter.as_ref(), ctx)
        } else {
            run_rows(&spec, &table, slots, filter.as_ref(), ctx)
        }
    }
}
