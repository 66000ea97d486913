//! The CSV nodes end to end, on small files written by each test.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use super::aggregate::{AggOp, AggSpec, Groups};
use super::parallel::scan_groups_in;
use super::scan::{Pass, Slots, Stats};
use super::source::CsvOptions;
use super::{CsvQuery, CsvRead, CsvWrite};
use crate::node::{codes, NativeNode, NodeCtx, NodeFailure};
use crate::params::Params;

/// A fresh directory for one test, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "polyhost-csv-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn file(&self, name: &str, content: impl AsRef<[u8]>) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, content).unwrap();
        path.to_string_lossy().into_owned()
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(node: &dyn NativeNode, params: Value) -> Result<Value, NodeFailure> {
    node.run(params, &NodeCtx::default())
}

const SALES: &str = "\
region,product,qty,price,ok
north,apple,3,1.5,true
south,pear,,2.0,false
north,pear,5,2.5,true
east,apple,1,1.0,
south,apple,7,1.25,true
north,apple,2,,false
";

#[test]
fn read_infers_types_and_nulls() {
    let dir = TempDir::new();
    let path = dir.file("sales.csv", SALES);
    let out = run(&CsvRead, json!({"path": path, "limit": 2, "offset": 1})).unwrap();
    assert_eq!(
        out["columns"],
        json!(["region", "product", "qty", "price", "ok"])
    );
    assert_eq!(
        out["rows"],
        json!([
            {"region": "south", "product": "pear", "qty": null, "price": 2.0, "ok": false},
            {"region": "north", "product": "pear", "qty": 5, "price": 2.5, "ok": true},
        ])
    );
    assert_eq!(out["skipped"], 0);
}

#[test]
fn read_without_header_declared_types_and_options() {
    let dir = TempDir::new();
    let path = dir.file("plain.csv", "\u{feff}1;'a;b'\r\n2;x\r\n");
    let out = run(
        &CsvRead,
        json!({"path": path, "header": false, "delimiter": ";", "quote": "'",
               "columns": {"c0": "string"}}),
    )
    .unwrap();
    assert_eq!(out["columns"], json!(["c0", "c1"]));
    assert_eq!(out["rows"][0], json!({"c0": "1", "c1": "a;b"}));
    let latin = dir.file("latin.csv", b"name\ncaf\xe9\n");
    let out = run(&CsvRead, json!({"path": latin, "encoding": "latin-1"})).unwrap();
    assert_eq!(out["rows"][0]["name"], "café");
    let err = run(&CsvRead, json!({"path": latin})).unwrap_err();
    assert_eq!(err.code, codes::CSV_ERROR);
    assert!(
        err.message.contains("line 2, column 'name': invalid UTF-8"),
        "{}",
        err.message
    );
}

#[test]
fn read_refuses_relative_paths_unknown_parameters_and_too_many_rows() {
    let dir = TempDir::new();
    let path = dir.file("sales.csv", SALES);
    let err = run(&CsvRead, json!({"path": "sales.csv"})).unwrap_err();
    assert_eq!(err.code, codes::INVALID_PATH);
    let err = run(&CsvRead, json!({"path": path, "colums": {}})).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("colums"));
    let err = run(&CsvRead, json!({"path": path, "max_rows": 3})).unwrap_err();
    assert_eq!(err.code, codes::TOO_MANY_ROWS);
    assert!(err.message.contains("csv.query"), "{}", err.message);
    let err = run(&CsvRead, json!({"path": path, "columns": {"nope": "int"}})).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("columns"));
    let err = run(&CsvRead, json!({"path": dir.path("missing.csv")})).unwrap_err();
    assert_eq!(err.code, codes::IO_ERROR);
}

#[test]
fn malformed_rows_name_file_line_and_column() {
    let dir = TempDir::new();
    // The quoted field spans lines 3 and 4, so the ragged row is on line 6.
    let ragged = dir.file("ragged.csv", "a,b\n1,x\n2,\"two\nlines\"\n3,y\n4\n5,z\n");
    let err = run(&CsvRead, json!({"path": ragged})).unwrap_err();
    assert_eq!(err.code, codes::CSV_ERROR);
    assert!(
        err.message.contains("ragged.csv: line 6, column 'b'"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("expected 2 fields, found 1"),
        "{}",
        err.message
    );

    let out = run(&CsvRead, json!({"path": ragged, "lenient": true})).unwrap();
    assert_eq!(out["skipped"], 1);
    assert_eq!(out["rows"].as_array().unwrap().len(), 4);
    assert_eq!(out["rows"][1]["b"], "two\nlines");

    let typed = dir.file("typed.csv", "a,b\n1,x\n2,y\noops,z\n");
    let err = run(&CsvRead, json!({"path": typed, "columns": {"a": "int"}})).unwrap_err();
    assert!(
        err.message
            .contains("line 4, column 'a': expected int (declared in `columns`), found \"oops\""),
        "{}",
        err.message
    );

    let open = dir.file("open.csv", "a,b\n1,x\n2,\"never closed\n3,y\n");
    let err = run(&CsvRead, json!({"path": open})).unwrap_err();
    assert!(
        err.message
            .contains("line 3, column 'b': unterminated quoted field"),
        "{}",
        err.message
    );
    let out = run(&CsvRead, json!({"path": open, "lenient": true})).unwrap();
    assert_eq!(
        (
            out["skipped"].as_u64(),
            out["rows"].as_array().unwrap().len()
        ),
        (Some(1), 1)
    );
}

#[test]
fn query_groups_aggregates_orders_and_limits() {
    let dir = TempDir::new();
    let path = dir.file("sales.csv", SALES);
    let out = run(
        &CsvQuery,
        json!({
            "path": path,
            "where": "ok = true or qty is null",
            "group_by": ["region"],
            "aggregate": {
                "n": {"op": "count"},
                "qty": {"op": "sum", "column": "qty"},
                "cheapest": {"op": "min", "column": "price"},
                "last": {"op": "max", "column": "product"},
                "avg": {"op": "mean", "column": "price"},
            },
            "order_by": ["-qty", "region"],
            "limit": 2,
        }),
    )
    .unwrap();
    assert_eq!(
        out["columns"],
        json!(["region", "n", "qty", "cheapest", "last", "avg"])
    );
    assert_eq!(
        out["rows"],
        json!([
            {"region": "north", "n": 2, "qty": 8, "cheapest": 1.5, "last": "pear", "avg": 2.0},
            {"region": "south", "n": 2, "qty": 7, "cheapest": 1.25, "last": "pear", "avg": 1.625},
        ])
    );
    assert_eq!(
        (out["rows_scanned"].as_u64(), out["rows_matched"].as_u64()),
        (Some(6), Some(4))
    );
}

#[test]
fn aggregates_without_groups_give_one_row() {
    let dir = TempDir::new();
    let path = dir.file("sales.csv", SALES);
    let out = run(
        &CsvQuery,
        json!({"path": path, "where": "qty > 100",
               "aggregate": {"n": {"op": "count"}, "s": {"op": "sum", "column": "price"},
                             "m": {"op": "max", "column": "qty"}}}),
    )
    .unwrap();
    assert_eq!(out["rows"], json!([{"n": 0, "s": 0.0, "m": null}]));
}

#[test]
fn row_queries_select_filter_order_and_limit() {
    let dir = TempDir::new();
    let path = dir.file("sales.csv", SALES);
    let out = run(
        &CsvQuery,
        json!({"path": path, "select": ["product", "qty"], "where": "region in ('north', 'south')",
               "order_by": ["-price"], "limit": 2}),
    )
    .unwrap();
    assert_eq!(
        out["rows"],
        json!([{"product": "pear", "qty": 5}, {"product": "pear", "qty": null}])
    );
    // Unordered with a limit: stops reading early.
    let out = run(&CsvQuery, json!({"path": path, "limit": 1})).unwrap();
    assert_eq!(out["rows_scanned"], 1);
    // Nulls sort last in both directions.
    let out = run(
        &CsvQuery,
        json!({"path": path, "select": ["qty"], "order_by": ["qty"]}),
    )
    .unwrap();
    let qty: Vec<Value> = out["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["qty"].clone())
        .collect();
    assert_eq!(
        qty,
        vec![
            json!(1),
            json!(2),
            json!(3),
            json!(5),
            json!(7),
            Value::Null
        ]
    );
    let out = run(
        &CsvQuery,
        json!({"path": path, "select": ["qty"], "order_by": ["-qty"]}),
    )
    .unwrap();
    assert_eq!(out["rows"][0]["qty"], 7);
    assert_eq!(out["rows"][5]["qty"], Value::Null);
}

#[test]
fn top_k_matches_a_full_sort() {
    let dir = TempDir::new();
    let mut text = String::from("k,v\n");
    for i in 0..5000u64 {
        writeln!(text, "{},{}", i, (i * 7919) % 1009).unwrap();
    }
    let path = dir.file("many.csv", text);
    let full = run(&CsvQuery, json!({"path": path, "order_by": ["-v", "k"]})).unwrap();
    let top = run(
        &CsvQuery,
        json!({"path": path, "order_by": ["-v", "k"], "limit": 7}),
    )
    .unwrap();
    assert_eq!(
        top["rows"].as_array().unwrap()[..],
        full["rows"].as_array().unwrap()[..7]
    );
}

#[test]
fn query_errors_name_the_parameter() {
    let dir = TempDir::new();
    let path = dir.file("sales.csv", SALES);
    let field = |params: Value| run(&CsvQuery, params).unwrap_err().field;
    assert_eq!(
        field(json!({"path": path, "where": "qtty > 1"})).as_deref(),
        Some("where")
    );
    assert_eq!(
        field(json!({"path": path, "where": "qty > "})).as_deref(),
        Some("where")
    );
    assert_eq!(
        field(json!({"path": path, "select": ["nope"]})).as_deref(),
        Some("select")
    );
    assert_eq!(
        field(json!({"path": path, "group_by": ["nope"]})).as_deref(),
        Some("group_by")
    );
    assert_eq!(
        field(json!({"path": path, "aggregate": {"s": {"op": "sum", "column": "region"}}}))
            .as_deref(),
        Some("aggregate")
    );
    assert_eq!(
        field(json!({"path": path, "aggregate": {"s": {"op": "median", "column": "qty"}}}))
            .as_deref(),
        Some("aggregate")
    );
    assert_eq!(
        field(json!({"path": path, "group_by": ["region"], "order_by": ["qty"]})).as_deref(),
        Some("order_by")
    );
    assert_eq!(
        field(json!({"path": path, "output": {"path": "rel.csv"}})).as_deref(),
        Some("output")
    );
}

#[test]
fn query_output_files() {
    let dir = TempDir::new();
    let path = dir.file("sales.csv", SALES);
    let csv_out = dir.path("out.csv");
    let out = run(
        &CsvQuery,
        json!({"path": path, "select": ["region", "price"], "where": "price >= 2",
               "output": {"path": csv_out, "format": "csv"}}),
    )
    .unwrap();
    assert_eq!(out["rows_written"], 2);
    assert!(out.get("rows").is_none());
    assert_eq!(
        std::fs::read_to_string(&csv_out).unwrap(),
        "region,price\nsouth,2.0\nnorth,2.5\n"
    );
    let jsonl = dir.path("out.jsonl");
    run(
        &CsvQuery,
        json!({"path": path, "group_by": ["ok"], "aggregate": {"n": {"op": "count"}},
               "output": {"path": jsonl}}),
    )
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(&jsonl).unwrap(),
        "{\"ok\":true,\"n\":3}\n{\"ok\":false,\"n\":2}\n{\"ok\":null,\"n\":1}\n"
    );
}

#[test]
fn cancel_stops_a_query() {
    let dir = TempDir::new();
    let mut text = String::from("a,b\n");
    for i in 0..30_000 {
        writeln!(text, "{i},x").unwrap();
    }
    let path = dir.file("big.csv", text);
    let flag = Arc::new(AtomicBool::new(true));
    let ctx = NodeCtx::new(flag, "q");
    let err = CsvQuery
        .run(json!({"path": path, "where": "a > 0"}), &ctx)
        .unwrap_err();
    assert_eq!(err.code, codes::CANCELLED);
}

/// Runs a grouped count over `parts` ranges.
fn grouped_count(
    path: &str,
    parts: usize,
    lenient: bool,
) -> Result<(Vec<Vec<super::types::Scalar>>, Stats), NodeFailure> {
    let mut params = Params::new(json!({"path": path, "lenient": lenient})).unwrap();
    let options = CsvOptions::from_params(&mut params).unwrap();
    let table = options.open()?;
    let mut slots = Slots::default();
    let key = slots.add(&table, 1);
    let keys = [key];
    let aggs = [AggSpec {
        op: AggOp::Count,
        input: None,
    }];
    let ctx = NodeCtx::default();
    let pass = Pass {
        options: &options,
        table: &table,
        slots: &slots.slots,
        filter: None,
        ctx: &ctx,
    };
    let mut stats = Stats::default();
    let make = || Groups::new(&keys, &aggs, 1000);
    let groups = scan_groups_in(&pass, &make, &mut stats, parts)?;
    Ok((groups.finish(), stats))
}

#[test]
fn ranges_agree_with_one_pass_even_across_quoted_line_breaks() {
    let dir = TempDir::new();
    let mut text = String::from("id,key\n");
    for i in 0..2000 {
        if i % 7 == 3 {
            // Quoted line breaks, some of which a range boundary will land in.
            writeln!(text, "{i},\"k{}\n\n\nmore\"", i % 5).unwrap();
        } else {
            writeln!(text, "{i},k{}", i % 5).unwrap();
        }
    }
    let path = dir.file("spans.csv", &text);
    let (one, one_stats) = grouped_count(&path, 1, false).unwrap();
    for parts in [2, 3, 5, 16, 64] {
        let (many, stats) = grouped_count(&path, parts, false).unwrap();
        assert_eq!(many, one, "{parts} parts");
        assert_eq!(stats, one_stats, "{parts} parts");
    }
}

#[test]
fn ranges_report_absolute_line_numbers() {
    let dir = TempDir::new();
    let mut text = String::from("id,key\n");
    for i in 0..3000 {
        if i == 2500 {
            text.push_str("oops\n");
        } else {
            writeln!(text, "{i},k{}", i % 3).unwrap();
        }
    }
    let path = dir.file("bad.csv", &text);
    for parts in [1, 2, 4] {
        let err = grouped_count(&path, parts, false).unwrap_err();
        assert!(
            err.message.contains("line 2502,"),
            "{parts}: {}",
            err.message
        );
        let (_, stats) = grouped_count(&path, parts, true).unwrap();
        assert_eq!((stats.scanned, stats.skipped), (3000, 1));
    }
}

#[test]
fn write_then_read_round_trips_and_appends() {
    let dir = TempDir::new();
    let path = dir.path("w.csv");
    let rows = json!([{"a": 1, "b": "x,y"}, {"b": "z", "c": true}, {"a": 2.5, "c": null}]);
    let out = run(&CsvWrite, json!({"path": path, "rows": rows})).unwrap();
    assert_eq!(out["rows_written"], 3);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "a,b,c\n1,\"x,y\",\n,z,true\n2.5,,\n"
    );
    run(
        &CsvWrite,
        json!({"path": path, "rows": [{"c": false, "a": 3}], "append": true}),
    )
    .unwrap();
    let read = run(&CsvRead, json!({"path": path, "columns": {"a": "float"}})).unwrap();
    assert_eq!(read["rows"][3], json!({"a": 3.0, "b": null, "c": false}));
    let err = run(
        &CsvWrite,
        json!({"path": path, "rows": [{"d": 1}], "append": true}),
    )
    .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("rows"));
    let err = run(
        &CsvWrite,
        json!({"path": path, "rows": [], "columns": ["x"], "append": true}),
    )
    .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("columns"));
    let err = run(&CsvWrite, json!({"path": path, "rows": [1]})).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("rows"));
    let explicit = dir.path("e.csv");
    run(
        &CsvWrite,
        json!({"path": explicit, "rows": [{"a": 1, "b": 2}], "columns": ["b", "a"], "delimiter": ";"}),
    )
    .unwrap();
    assert_eq!(std::fs::read_to_string(&explicit).unwrap(), "b;a\n2;1\n");
}
