//! `polyhost._native`: the plan graph, the run scheduler, CEL expressions, and the native
//! nodes (`registry`) with their Python face (`py_nodes`).

pub mod csv;
pub mod diagnostic;
pub mod errors;
pub mod expr;
pub mod files;
pub mod node;
pub mod params;
pub mod pattern;
pub mod plan;
pub mod py_json;
pub mod py_nodes;
pub mod py_plan;
pub mod py_scheduler;
pub mod registry;
pub mod scheduler;
pub mod text;

use pyo3::prelude::*;

/// The module: everything it exports is listed here.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("PlanError", py.get_type::<errors::PlanError>())?;
    m.add(
        "ExpressionSyntaxError",
        py.get_type::<errors::ExpressionSyntaxError>(),
    )?;
    m.add(
        "ExpressionEvalError",
        py.get_type::<errors::ExpressionEvalError>(),
    )?;
    m.add_class::<py_plan::Plan>()?;
    m.add_class::<py_scheduler::RunState>()?;
    m.add_class::<expr::Expression>()?;
    m.add_class::<expr::scope::Scope>()?;
    m.add(
        "NativeNodeError",
        py.get_type::<py_nodes::NativeNodeError>(),
    )?;
    m.add_class::<py_nodes::CancelToken>()?;
    m.add_function(wrap_pyfunction!(py_nodes::native_nodes, m)?)?;
    m.add_function(wrap_pyfunction!(py_nodes::call_native, m)?)?;
    m.add_function(wrap_pyfunction!(py_nodes::check_native, m)?)?;
    m.add_function(wrap_pyfunction!(py_nodes::native_limit_defaults, m)?)?;
    pattern::register(m)?;
    Ok(())
}
