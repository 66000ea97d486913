//! CSV nodes: `csv.read`, `csv.query` and `csv.write`.
//!
//! The pieces, from bytes up: `reader` splits records, `types` parses typed values and
//! infers column types, `source` opens a file (options, header, types), `scan` streams rows
//! through a filter into a sink, `predicate` compiles `where`, `aggregate` keeps group
//! state, `parallel` splits large grouped scans across threads, and `emit` and `output`
//! return or write the rows.

pub mod aggregate;
pub mod emit;
pub mod output;
pub mod parallel;
pub mod predicate;
pub mod query;
pub mod read;
pub mod reader;
pub mod scan;
pub mod source;
pub mod types;
pub mod write;

#[cfg(test)]
mod tests;

pub use query::CsvQuery;
pub use read::CsvRead;
pub use write::CsvWrite;
