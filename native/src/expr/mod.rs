//! CEL expressions: parsed once, evaluated many times against a [`Scope`].

pub mod budget;
pub mod convert;
pub mod evaluate;
pub mod limits;
pub mod parse;
pub mod references;
pub mod reserved;
pub mod scope;

use std::sync::Arc;

use cel::IdedExpr;
use pyo3::prelude::*;

use crate::errors::{ExpressionEvalError, ExpressionSyntaxError};
use budget::Exceeded;
use scope::Scope;

/// The defaults of the expression limits (`Limits` in Python passes its own values).
pub const MAX_BYTES: usize = 64 * 1024;
pub const MAX_DEPTH: u32 = 500;
pub const MAX_STEPS: u64 = 1_000_000;
pub const MAX_MEMORY: u64 = 64 * 1024 * 1024;

/// Raises polyhost's `LimitExceededError(limit, value, detail)`.
pub(crate) fn limit_error(py: Python<'_>, limit: &str, value: u64, detail: &str) -> PyErr {
    let raised = py
        .import("polyhost._errors")
        .and_then(|m| m.getattr("LimitExceededError"))
        .and_then(|cls| cls.call1((limit, value, detail)));
    match raised {
        Ok(err) => PyErr::from_value(err),
        Err(err) => err,
    }
}

/// A parsed CEL expression.
#[pyclass(module = "polyhost._native", frozen)]
pub struct Expression {
    source: String,
    expr: IdedExpr,
    references: Vec<String>,
    /// Whether it has comprehensions or growing functions: only then is a budget kept,
    /// and the GIL released while it runs.
    costly: bool,
    max_steps: u64,
    max_memory: u64,
}

#[pymethods]
impl Expression {
    /// Parses `source`; raises `ExpressionSyntaxError`, or `LimitExceededError` for a
    /// source longer than `max_bytes` or nested deeper than `max_depth`. `max_steps` and
    /// `max_memory` bound each evaluation.
    #[new]
    #[pyo3(signature = (source, max_bytes=MAX_BYTES, max_depth=MAX_DEPTH, max_steps=MAX_STEPS, max_memory=MAX_MEMORY))]
    fn new(
        py: Python<'_>,
        source: String,
        max_bytes: usize,
        max_depth: u32,
        max_steps: u64,
        max_memory: u64,
    ) -> PyResult<Self> {
        limits::check_source(&source, max_bytes, max_depth)
            .map_err(|e| limit_error(py, e.limit, e.value, &e.detail))?;
        let mut expr = parse::compile(&source).map_err(ExpressionSyntaxError::new_err)?;
        let references = references::free_variables(&expr);
        let costly = budget::instrument(&mut expr);
        Ok(Expression {
            source,
            expr,
            references,
            costly,
            max_steps,
            max_memory,
        })
    }

    /// The source text.
    #[getter]
    fn source(&self) -> &str {
        &self.source
    }

    /// Sorted free top-level names the expression reads.
    fn references(&self) -> Vec<String> {
        self.references.clone()
    }

    /// Evaluates against `scope`; raises `ExpressionEvalError`, or `LimitExceededError`
    /// when the evaluation goes past its budget.
    fn evaluate<'py>(
        &self,
        py: Python<'py>,
        scope: PyRef<'_, Scope>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if !self.costly {
            return evaluate::evaluate(&self.expr, &scope.vars, |value| {
                convert::to_python(py, value)
            })
            .map_err(|e| ExpressionEvalError::new_err(message(&e)))?;
        }
        // Loops may run long: other Python threads go on meanwhile. The scope's variables
        // are shared, so the scope itself stays free for other threads to change.
        let vars = Arc::clone(&scope.vars);
        drop(scope);
        let (result, exceeded) = py.detach(|| {
            budget::with_budget(self.max_steps, self.max_memory, || {
                evaluate::evaluate(&self.expr, &vars, |value| {
                    Python::attach(|py| convert::to_python(py, value).map(Bound::unbind))
                })
            })
        });
        match exceeded {
            Some(Exceeded::Steps) => Err(limit_error(
                py,
                "max_expression_steps",
                self.max_steps,
                "the expression's comprehensions took more steps than one evaluation may",
            )),
            Some(Exceeded::Memory) => Err(limit_error(
                py,
                "max_expression_memory",
                self.max_memory,
                "the expression built more bytes of values than one evaluation may",
            )),
            None => match result {
                Ok(value) => Ok(value?.into_bound(py)),
                Err(e) => Err(ExpressionEvalError::new_err(message(&e))),
            },
        }
    }

    fn __repr__(&self) -> String {
        format!("Expression({:?})", self.source)
    }
}

/// The evaluation error's description, with the budget's stand-ins named as the user wrote.
fn message(err: &cel::ExecutionError) -> String {
    let text = evaluate::describe(err);
    if text.contains("@polyhost.") {
        text.replace(budget::REPLACE, "replace")
    } else {
        text
    }
}
