//! `Scope`: named variables, converted to CEL once, shared cheaply between scopes.

use std::sync::Arc;

use pyo3::prelude::*;

use super::convert::to_cel;
use super::evaluate::Vars;

/// Variables for evaluating expressions.
#[pyclass(module = "polyhost._native")]
pub struct Scope {
    pub(crate) vars: Arc<Vars>,
    /// Values nested deeper are refused (`Limits.max_value_depth`).
    max_depth: u32,
}

#[pymethods]
impl Scope {
    /// An empty scope; values put in it may nest lists and maps `max_value_depth` deep.
    #[new]
    #[pyo3(signature = (max_value_depth=128))]
    fn new(max_value_depth: u32) -> Self {
        Scope {
            vars: Arc::default(),
            max_depth: max_value_depth,
        }
    }

    /// Binds `name` to `value`, converted to CEL now; raises `LimitExceededError`
    /// (`max_value_depth`) for a value nested too deep.
    fn set(&mut self, name: String, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let value = Arc::from(to_cel(value, self.max_depth)?);
        Arc::make_mut(&mut self.vars).insert(name, value);
        Ok(())
    }

    /// Unbinds `name`, if bound.
    fn remove(&mut self, name: &str) {
        if self.vars.contains_key(name) {
            Arc::make_mut(&mut self.vars).remove(name);
        }
    }

    fn __contains__(&self, name: &str) -> bool {
        self.vars.contains_key(name)
    }

    /// The bound names, sorted.
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.vars.keys().cloned().collect();
        names.sort_unstable();
        names
    }

    /// A new scope with this scope's variables as they are now; cheap.
    fn child(&self) -> Scope {
        Scope {
            vars: Arc::clone(&self.vars),
            max_depth: self.max_depth,
        }
    }

    fn __repr__(&self) -> String {
        format!("Scope({})", self.names().join(", "))
    }
}
