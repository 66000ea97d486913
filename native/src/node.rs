//! The contract between the host and a native node: the [`NativeNode`] trait, the
//! [`NodeCtx`] a run receives, and the [`NodeFailure`] it may return.
//!
//! Everything here is plain Rust; `py_nodes` gives it its Python face and `registry` lists
//! the nodes.

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::Value;

/// Stable `snake_case` failure codes, shared by every node and by the Python side.
pub mod codes {
    /// A parameter is missing, of the wrong type or out of range.
    pub const INVALID_PARAMETERS: &str = "invalid_parameters";
    /// A path is relative or otherwise unusable.
    pub const INVALID_PATH: &str = "invalid_path";
    /// Reading or writing a file failed.
    pub const IO_ERROR: &str = "io_error";
    /// A CSV file is malformed: ragged row, bad UTF-8, unterminated quote, bad value.
    pub const CSV_ERROR: &str = "csv_error";
    /// Inline output would exceed its row limit.
    pub const TOO_MANY_ROWS: &str = "too_many_rows";
    /// The node's output would pass the host's output limit.
    pub const INVALID_OUTPUT: &str = "invalid_output";
    /// Input text is not valid for the node (e.g. not UTF-8).
    pub const INVALID_INPUT: &str = "invalid_input";
    /// The run was cancelled through its token.
    pub const CANCELLED: &str = "cancelled";
    /// The node panicked; the message carries the panic's own.
    pub const PANIC: &str = "panic";
    /// No node of that name is registered.
    pub const UNKNOWN_NATIVE_NODE: &str = "unknown_native_node";
    /// Input or work past one of the host's limits (`docs/limits.md`).
    pub const LIMIT_EXCEEDED: &str = "limit_exceeded";

    /// Every code above, for the Python side's sync test.
    pub const ALL: &[&str] = &[
        INVALID_PARAMETERS,
        INVALID_PATH,
        IO_ERROR,
        CSV_ERROR,
        TOO_MANY_ROWS,
        INVALID_INPUT,
        INVALID_OUTPUT,
        CANCELLED,
        PANIC,
        UNKNOWN_NATIVE_NODE,
        LIMIT_EXCEEDED,
    ];
}

/// The limits native nodes enforce. The host passes in the values of its `Limits` (same
/// names); the defaults here are the same as there, for callers that pass none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NativeLimits {
    /// Bytes of one CSV record, line breaks inside quoted fields included.
    pub max_csv_record_bytes: u64,
    /// Fields of one CSV record.
    pub max_csv_record_fields: u64,
    /// Nesting of `not` and parentheses in a `csv.query` `where`.
    pub max_csv_where_depth: u64,
    /// Memory for the distinct words `text.stats` keeps to list the most frequent ones.
    pub max_text_vocabulary_bytes: u64,
    /// Bytes of the rows a node returns inline (estimated as JSON), checked as they are
    /// collected so a large result fails before it is built.
    pub max_output_bytes: u64,
}

impl NativeLimits {
    /// Every limit, by name.
    pub const NAMES: [&'static str; 5] = [
        "max_csv_record_bytes",
        "max_csv_record_fields",
        "max_csv_where_depth",
        "max_text_vocabulary_bytes",
        "max_output_bytes",
    ];

    /// The limit called `name`, for setting it.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut u64> {
        Some(match name {
            "max_csv_record_bytes" => &mut self.max_csv_record_bytes,
            "max_csv_record_fields" => &mut self.max_csv_record_fields,
            "max_csv_where_depth" => &mut self.max_csv_where_depth,
            "max_text_vocabulary_bytes" => &mut self.max_text_vocabulary_bytes,
            "max_output_bytes" => &mut self.max_output_bytes,
            _ => return None,
        })
    }

    /// The limit called `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<u64> {
        let mut copy = *self;
        copy.get_mut(name).map(|v| *v)
    }
}

impl Default for NativeLimits {
    fn default() -> Self {
        NativeLimits {
            max_csv_record_bytes: 16 * 1024 * 1024,
            max_csv_record_fields: 100_000,
            max_csv_where_depth: 100,
            max_text_vocabulary_bytes: 64 * 1024 * 1024,
            max_output_bytes: 16 * 1024 * 1024,
        }
    }
}

/// A node type implemented in Rust.
///
/// Implementations are stateless values registered once (see `registry`); `run` may be
/// called from many threads at once, without the GIL, so it must not touch Python.
pub trait NativeNode: Send + Sync {
    /// The handler name, e.g. `"csv.query"`: unique, lowercase, dotted.
    fn name(&self) -> &'static str;

    /// One sentence for catalogs and `--help` output.
    fn description(&self) -> &'static str;

    /// JSON Schema of `params`: `type: object`, `additionalProperties: false`.
    fn input_schema(&self) -> Value;

    /// JSON Schema of the value `run` returns.
    fn output_schema(&self) -> Value;

    /// Does the work. Long work calls [`NodeCtx::check`] between chunks (every 64 KiB or
    /// 10k rows) so a cancel lands quickly.
    ///
    /// # Errors
    /// A [`NodeFailure`] with a stable code; the host reports it as the node's error.
    fn run(&self, params: Value, ctx: &NodeCtx) -> Result<Value, NodeFailure>;

    /// Problems found before any run in the parameters known when a workflow compiles
    /// (`params` holds only those); the host reports each as a diagnostic. The default
    /// finds none.
    fn check(&self, params: &Value, limits: &NativeLimits) -> Vec<NodeFailure> {
        let _ = (params, limits);
        Vec::new()
    }
}

/// What a run gets besides its parameters: the cancel flag, the node id and the limits.
#[derive(Debug, Clone, Default)]
pub struct NodeCtx {
    cancel: Arc<AtomicBool>,
    node_id: String,
    limits: NativeLimits,
}

impl NodeCtx {
    /// A context watching `cancel`, for the node `node_id` (may be empty).
    #[must_use]
    pub fn new(cancel: Arc<AtomicBool>, node_id: impl Into<String>) -> Self {
        NodeCtx {
            cancel,
            node_id: node_id.into(),
            limits: NativeLimits::default(),
        }
    }

    /// The same context with `limits`.
    #[must_use]
    pub fn with_limits(mut self, limits: NativeLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The limits this run must keep to.
    #[must_use]
    pub fn limits(&self) -> &NativeLimits {
        &self.limits
    }

    /// The cancel flag, for readers that check it themselves.
    #[must_use]
    pub fn cancel_flag(&self) -> &Arc<AtomicBool> {
        &self.cancel
    }

    /// The id of the workflow node being run, for messages; empty when unknown.
    #[must_use]
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Whether the run was cancelled.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// `Err(cancelled)` once the run was cancelled; call it between chunks of work.
    ///
    /// # Errors
    /// [`NodeFailure::cancelled`] when the flag is set.
    pub fn check(&self) -> Result<(), NodeFailure> {
        if self.is_cancelled() {
            Err(NodeFailure::cancelled())
        } else {
            Ok(())
        }
    }
}

/// Why a node failed: a stable code, a message for people, and the parameter at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFailure {
    /// A stable `snake_case` code, one of [`codes`] or the node's own.
    pub code: String,
    /// What went wrong, naming the file, line and column where there are some.
    pub message: String,
    /// The parameter at fault, if one is.
    pub field: Option<String>,
}

impl NodeFailure {
    /// A failure with `code` and `message` and no field.
    #[must_use]
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        NodeFailure {
            code: code.into(),
            message: message.into(),
            field: None,
        }
    }

    /// The same failure, naming the parameter `field`.
    #[must_use]
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// `invalid_parameters` for the parameter `field`.
    #[must_use]
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        NodeFailure::new(codes::INVALID_PARAMETERS, message).with_field(field)
    }

    /// `cancelled`.
    #[must_use]
    pub fn cancelled() -> Self {
        NodeFailure::new(codes::CANCELLED, "the run was cancelled")
    }

    /// `limit_exceeded`: `detail` went past the limit `limit` (a field of the host's
    /// `Limits`) of `value`, because of the parameter `field`.
    #[must_use]
    pub fn limit(limit: &str, value: u64, detail: impl fmt::Display, field: &str) -> Self {
        NodeFailure::new(
            codes::LIMIT_EXCEEDED,
            format!("{detail} (limit {limit} = {value}; see docs/limits.md)"),
        )
        .with_field(field)
    }

    /// `io_error` for `err` while `doing` something with `path`.
    #[must_use]
    pub fn io(doing: &str, path: &std::path::Path, err: &std::io::Error) -> Self {
        NodeFailure::new(
            codes::IO_ERROR,
            format!("cannot {doing} {}: {err}", path.display()),
        )
    }
}

impl fmt::Display for NodeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for NodeFailure {}

thread_local! {
    static IN_NODE: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` marked as node code: a panic inside it is reported by the caller as a
/// `NodeFailure` rather than printed by the panic hook. Worker threads a node spawns wrap
/// their body in this too.
pub fn as_node_code<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            IN_NODE.with(|flag| flag.set(self.0));
        }
    }
    let _reset = Reset(IN_NODE.with(|flag| flag.replace(true)));
    f()
}

/// Whether the current thread is running node code (see [`as_node_code`]).
#[must_use]
pub fn in_node_code() -> bool {
    IN_NODE.with(Cell::get)
}

/// The text of a panic payload: the `&str` or `String` given to `panic!`.
#[must_use]
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a non-string panic payload)".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_fails_once_cancelled() {
        let flag = Arc::new(AtomicBool::new(false));
        let ctx = NodeCtx::new(flag.clone(), "n1");
        assert!(ctx.check().is_ok());
        flag.store(true, Ordering::Relaxed);
        assert_eq!(ctx.check().unwrap_err().code, codes::CANCELLED);
        assert_eq!(ctx.node_id(), "n1");
    }

    #[test]
    fn node_code_flag_nests_and_resets() {
        assert!(!in_node_code());
        as_node_code(|| {
            assert!(in_node_code());
            as_node_code(|| assert!(in_node_code()));
            assert!(in_node_code());
        });
        assert!(!in_node_code());
        let caught = std::panic::catch_unwind(|| as_node_code(|| panic!("boom")));
        assert_eq!(panic_message(&*caught.unwrap_err()), "boom");
        assert!(!in_node_code());
    }
}
