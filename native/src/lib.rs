//! `polyhost._native`: the plan graph, the run scheduler and CEL expressions.

pub mod errors;
pub mod expr;
pub mod plan;
pub mod py_plan;
pub mod py_scheduler;
pub mod scheduler;

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
    Ok(())
}
