//! The exceptions the module raises. All subclass `ValueError`, so callers that only
//! care about "bad input" can catch that.

use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::PyErr;

use crate::plan::GraphError;
use crate::scheduler::SchedulerError;

create_exception!(
    polyhost._native,
    PlanError,
    PyValueError,
    "A plan or run state was used wrongly: a node index out of range, a cyclic plan where \
     an acyclic one is needed, a transition the scheduler does not allow, or a snapshot \
     that does not match its plan."
);

create_exception!(
    polyhost._native,
    ExpressionSyntaxError,
    PyValueError,
    "A CEL expression could not be parsed; the message gives the position."
);

create_exception!(
    polyhost._native,
    ExpressionEvalError,
    PyValueError,
    "A CEL expression failed while evaluating (no such key, undeclared variable, no \
     matching overload, division by zero, ...), or a value could not be converted."
);

impl From<GraphError> for PyErr {
    fn from(err: GraphError) -> Self {
        PlanError::new_err(err.to_string())
    }
}

impl From<SchedulerError> for PyErr {
    fn from(err: SchedulerError) -> Self {
        PlanError::new_err(err.0)
    }
}
