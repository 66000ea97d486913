//! CEL expressions: parsed once, evaluated many times against a [`Scope`].

pub mod convert;
pub mod evaluate;
pub mod parse;
pub mod references;
pub mod reserved;
pub mod scope;

use cel::IdedExpr;
use pyo3::prelude::*;

use crate::errors::{ExpressionEvalError, ExpressionSyntaxError};
use scope::Scope;

/// A parsed CEL expression.
#[pyclass(module = "polyhost._native", frozen)]
pub struct Expression {
    source: String,
    expr: IdedExpr,
    references: Vec<String>,
}

#[pymethods]
impl Expression {
    /// Parses `source`; raises `ExpressionSyntaxError`.
    #[new]
    fn new(source: String) -> PyResult<Self> {
        let expr = parse::compile(&source).map_err(ExpressionSyntaxError::new_err)?;
        let references = references::free_variables(&expr);
        Ok(Expression {
            source,
            expr,
            references,
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

    /// Evaluates against `scope`; raises `ExpressionEvalError`.
    fn evaluate<'py>(
        &self,
        py: Python<'py>,
        scope: PyRef<'_, Scope>,
    ) -> PyResult<Bound<'py, PyAny>> {
        evaluate::evaluate(&self.expr, &scope.vars, |value| {
            convert::to_python(py, value)
        })
        .map_err(|e| ExpressionEvalError::new_err(evaluate::describe(&e)))?
    }

    fn __repr__(&self) -> String {
        format!("Expression({:?})", self.source)
    }
}
