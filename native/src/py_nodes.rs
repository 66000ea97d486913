//! The Python face of the native node registry: `CancelToken`, `NativeNodeError`,
//! `native_nodes()`, `call_native()`, `check_native()` and `native_limit_defaults()`.
//!
//! A node runs without the GIL. A panic inside it is caught and raised as
//! `NativeNodeError("panic", ...)`; the module installs, once, a panic hook that stays
//! silent for panics in node code (their message travels in the exception instead) and
//! defers to the previous hook for any other panic. Other extension modules keep their
//! own hooks: each links its own copy of the Rust runtime.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::node::{
    as_node_code, codes, in_node_code, panic_message, NativeLimits, NodeCtx, NodeFailure,
};
use crate::py_json::{to_json, to_py};
use crate::registry;

create_exception!(
    polyhost._native,
    NativeNodeError,
    PyException,
    "A native node failed. `args` is `(code, message, field)`: a stable snake_case code, \
     a message for people, and the parameter at fault or None."
);

impl From<NodeFailure> for PyErr {
    fn from(failure: NodeFailure) -> Self {
        NativeNodeError::new_err((failure.code, failure.message, failure.field))
    }
}

/// A flag shared with running native nodes; setting it asks them to stop.
#[pyclass(module = "polyhost._native", frozen)]
pub struct CancelToken {
    flag: Arc<AtomicBool>,
}

#[pymethods]
impl CancelToken {
    /// A token not cancelled yet.
    #[new]
    fn new() -> Self {
        CancelToken {
            flag: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Asks every node run with this token to stop; idempotent.
    fn cancel(&self) {
        self.flag.store(true, Ordering::Relaxed);
    }

    /// Whether `cancel()` was called.
    #[getter]
    fn cancelled(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    fn __repr__(&self) -> String {
        let cancelled = if self.cancelled() { "True" } else { "False" };
        format!("CancelToken(cancelled={cancelled})")
    }
}

fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !in_node_code() {
                previous(info);
            }
        }));
    });
}

/// Every registered node: name, description, and input and output JSON Schemas.
///
/// # Errors
/// When Python cannot allocate.
#[pyfunction]
pub fn native_nodes(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
    let list = PyList::empty(py);
    for node in registry::nodes() {
        let entry = PyDict::new(py);
        entry.set_item("name", node.name())?;
        entry.set_item("description", node.description())?;
        entry.set_item("input_schema", to_py(py, node.input_schema())?)?;
        entry.set_item("output_schema", to_py(py, node.output_schema())?)?;
        list.append(entry)?;
    }
    Ok(list)
}

/// The limits in `limits` (name to non-negative int; absent ones keep their default).
fn read_limits(limits: Option<&Bound<'_, PyDict>>) -> PyResult<NativeLimits> {
    let mut out = NativeLimits::default();
    for (key, value) in limits.into_iter().flat_map(PyDictMethods::iter) {
        let key: String = key.extract()?;
        let Some(slot) = out.get_mut(&key) else {
            return Err(PyValueError::new_err(format!(
                "unknown native limit {key:?}; the limits are {}",
                NativeLimits::NAMES.join(", ")
            )));
        };
        *slot = value.extract()?;
    }
    Ok(out)
}

/// The default of every limit native nodes enforce, by name.
///
/// # Errors
/// When Python cannot allocate.
#[pyfunction]
pub fn native_limit_defaults(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let defaults = NativeLimits::default();
    let out = PyDict::new(py);
    for name in NativeLimits::NAMES {
        out.set_item(name, defaults.get(name))?;
    }
    Ok(out)
}

/// Problems in the parameters of a node of type `name` known before a run (`params`
/// holds only those), as `(code, message, field)` tuples; empty for an unknown node.
///
/// # Errors
/// `ValueError` for an unknown limit; `NativeNodeError` for parameters with no JSON
/// counterpart.
#[pyfunction]
#[pyo3(signature = (name, params, limits = None))]
pub fn check_native(
    name: &str,
    params: &Bound<'_, PyDict>,
    limits: Option<&Bound<'_, PyDict>>,
) -> PyResult<Vec<(String, String, Option<String>)>> {
    let limits = read_limits(limits)?;
    let Some(node) = registry::find(name) else {
        return Ok(Vec::new());
    };
    let params = to_json(params.as_any(), "").map_err(|e| {
        NodeFailure::new(
            codes::INVALID_PARAMETERS,
            format!("parameter: {}", e.message),
        )
    })?;
    install_panic_hook();
    let found = catch_unwind(AssertUnwindSafe(|| {
        as_node_code(|| node.check(&params, &limits))
    }))
    .map_err(|payload| {
        NodeFailure::new(
            codes::PANIC,
            format!("{name} panicked: {}", panic_message(&*payload)),
        )
    })?;
    Ok(found
        .into_iter()
        .map(|f| (f.code, f.message, f.field))
        .collect())
}

/// Runs the native node `name` on `params` without the GIL and returns its output.
/// `limits` overrides the defaults of [`NativeLimits`] by name.
///
/// # Errors
/// `NativeNodeError` for an unknown node, parameters with no JSON counterpart, a node
/// failure or a panic; `ValueError` for an unknown limit.
#[pyfunction]
#[pyo3(signature = (name, params, token, node_id = "", limits = None))]
pub fn call_native<'py>(
    py: Python<'py>,
    name: &str,
    params: &Bound<'py, PyDict>,
    token: &Bound<'py, CancelToken>,
    node_id: &str,
    limits: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let limits = read_limits(limits)?;
    let Some(node) = registry::find(name) else {
        let known: Vec<&str> = registry::nodes().iter().map(|n| n.name()).collect();
        return Err(NodeFailure::new(
            codes::UNKNOWN_NATIVE_NODE,
            format!(
                "no native node is called {name:?}; the native nodes are {}",
                known.join(", ")
            ),
        )
        .into());
    };
    let params = to_json(params.as_any(), "").map_err(|e| {
        let field = e
            .path
            .split(['.', '['])
            .next()
            .unwrap_or_default()
            .to_owned();
        let at = if e.path.is_empty() {
            String::new()
        } else {
            format!(" at `{}`", e.path)
        };
        let failure = NodeFailure::new(
            codes::INVALID_PARAMETERS,
            format!("parameter{at}: {}", e.message),
        );
        if field.is_empty() {
            failure
        } else {
            failure.with_field(field)
        }
    })?;
    let ctx = NodeCtx::new(token.get().flag.clone(), node_id).with_limits(limits);
    install_panic_hook();
    let outcome = py.detach(move || {
        catch_unwind(AssertUnwindSafe(|| as_node_code(|| node.run(params, &ctx))))
            .map_err(|payload| panic_message(&*payload))
    });
    match outcome {
        Ok(Ok(value)) => to_py(py, value),
        Ok(Err(failure)) => Err(failure.into()),
        Err(message) => {
            Err(NodeFailure::new(codes::PANIC, format!("{name} panicked: {message}")).into())
        }
    }
}
