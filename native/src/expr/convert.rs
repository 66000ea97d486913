//! Converting values between Python and CEL.
//!
//! Python to CEL happens once, when a value is put in a `Scope`; CEL to Python happens for
//! each evaluation result, straight from the interpreter's values.

use std::collections::HashMap;

use cel::common::types::{
    CelBool, CelBytes, CelDouble, CelDuration, CelInt, CelList, CelMap, CelMapKey, CelNull,
    CelOptional, CelString, CelTimestamp, CelType, CelUInt, Kind,
};
use cel::common::value::Val;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::errors::ExpressionEvalError;

fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string())
}

/// Converts a Python value into a CEL value.
///
/// # Errors
/// `TypeError` for a type CEL has no value for, `ExpressionEvalError` for an int beyond
/// 64 bits, polyhost's `LimitExceededError` (`max_value_depth`) for lists and maps nested
/// more than `max_depth` levels deep (a self-containing one included).
pub fn to_cel(value: &Bound<'_, PyAny>, max_depth: u32) -> PyResult<Box<dyn Val>> {
    Converter { max_depth }.convert(value, 0)
}

struct Converter {
    max_depth: u32,
}

impl Converter {
    fn convert(&self, value: &Bound<'_, PyAny>, depth: u32) -> PyResult<Box<dyn Val>> {
        if depth > self.max_depth {
            return Err(crate::expr::limit_error(
                value.py(),
                "max_value_depth",
                u64::from(self.max_depth),
                &format!("a value is nested more than {} levels deep", self.max_depth),
            ));
        }
        if let Ok(s) = value.cast::<PyString>() {
            return Ok(Box::new(CelString::from(s.to_str()?.to_owned())));
        }
        if let Ok(b) = value.cast::<PyBool>() {
            return Ok(Box::new(CelBool::from(b.is_true())));
        }
        if value.is_instance_of::<PyInt>() {
            return int(value);
        }
        if let Ok(f) = value.cast::<PyFloat>() {
            return Ok(Box::new(CelDouble::from(f.value())));
        }
        if value.is_none() {
            return Ok(Box::new(CelNull));
        }
        if let Ok(d) = value.cast::<PyDict>() {
            let mut map = HashMap::with_capacity(d.len());
            for (k, v) in d.iter() {
                map.insert(key(&k)?, self.convert(&v, depth + 1)?);
            }
            return Ok(Box::new(CelMap::from(map)));
        }
        if let Ok(l) = value.cast::<PyList>() {
            let items = l
                .iter()
                .map(|v| self.convert(&v, depth + 1))
                .collect::<PyResult<Vec<_>>>()?;
            return Ok(Box::new(CelList::from(items)));
        }
        if let Ok(t) = value.cast::<PyTuple>() {
            let items = t
                .iter()
                .map(|v| self.convert(&v, depth + 1))
                .collect::<PyResult<Vec<_>>>()?;
            return Ok(Box::new(CelList::from(items)));
        }
        if let Ok(b) = value.cast::<PyBytes>() {
            return Ok(Box::new(CelBytes::from(b.as_bytes().to_vec())));
        }
        Err(PyTypeError::new_err(format!(
            "cannot convert a value of type {} to a CEL value",
            type_name(value)
        )))
    }
}

fn int(value: &Bound<'_, PyAny>) -> PyResult<Box<dyn Val>> {
    if let Ok(i) = value.extract::<i64>() {
        return Ok(Box::new(CelInt::from(i)));
    }
    if let Ok(u) = value.extract::<u64>() {
        return Ok(Box::new(CelUInt::from(u)));
    }
    Err(ExpressionEvalError::new_err(format!(
        "integer {value} is out of range for CEL's 64-bit int and uint"
    )))
}

fn key(value: &Bound<'_, PyAny>) -> PyResult<CelMapKey<'static>> {
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(CelMapKey::from(s.to_str()?.to_owned()));
    }
    if let Ok(b) = value.cast::<PyBool>() {
        return Ok(CelMapKey::from(b.is_true()));
    }
    if value.is_instance_of::<PyInt>() {
        if let Ok(i) = value.extract::<i64>() {
            return Ok(CelMapKey::from(i));
        }
        if let Ok(u) = value.extract::<u64>() {
            return Ok(CelMapKey::from(u));
        }
    }
    Err(PyTypeError::new_err(format!(
        "a CEL map key must be a str, int or bool, not {}",
        type_name(value)
    )))
}

/// Converts a CEL value into a Python value: null to `None`, int and uint to `int`,
/// double to `float`, a timestamp to its RFC 3339 text, a duration to seconds as a
/// `float`, an optional to its value or `None`, a type to its name.
///
/// # Errors
/// `ExpressionEvalError` for a value with no Python counterpart.
pub fn to_python<'py>(py: Python<'py>, value: &dyn Val) -> PyResult<Bound<'py, PyAny>> {
    let unsupported = || {
        ExpressionEvalError::new_err(format!(
            "cannot convert a CEL {} to a Python value",
            value.get_type().name()
        ))
    };
    Ok(match value.get_type().kind() {
        Kind::NullType => py.None().into_bound(py),
        Kind::Boolean => {
            let b = value.downcast_ref::<CelBool>().ok_or_else(unsupported)?;
            PyBool::new(py, *b.inner()).to_owned().into_any()
        }
        Kind::Int => {
            let i = value.downcast_ref::<CelInt>().ok_or_else(unsupported)?;
            i.inner().into_pyobject(py)?.into_any()
        }
        Kind::UInt => {
            let u = value.downcast_ref::<CelUInt>().ok_or_else(unsupported)?;
            u.inner().into_pyobject(py)?.into_any()
        }
        Kind::Double => {
            let f = value.downcast_ref::<CelDouble>().ok_or_else(unsupported)?;
            PyFloat::new(py, *f.inner()).into_any()
        }
        Kind::String => {
            let s = value.downcast_ref::<CelString>().ok_or_else(unsupported)?;
            PyString::new(py, s.inner()).into_any()
        }
        Kind::Bytes => {
            let b = value.downcast_ref::<CelBytes>().ok_or_else(unsupported)?;
            PyBytes::new(py, b.inner()).into_any()
        }
        Kind::List => {
            let l = value.downcast_ref::<CelList>().ok_or_else(unsupported)?;
            let items = l
                .inner()
                .iter()
                .map(|v| to_python(py, v.as_ref()))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any()
        }
        Kind::Map => {
            let m = value.downcast_ref::<CelMap>().ok_or_else(unsupported)?;
            let dict = PyDict::new(py);
            for (k, v) in m.inner() {
                dict.set_item(to_python(py, k.inner())?, to_python(py, v.as_ref())?)?;
            }
            dict.into_any()
        }
        Kind::Timestamp => {
            let t = value
                .downcast_ref::<CelTimestamp>()
                .ok_or_else(unsupported)?;
            PyString::new(py, &t.inner().to_rfc3339()).into_any()
        }
        Kind::Duration => {
            let d = value
                .downcast_ref::<CelDuration>()
                .ok_or_else(unsupported)?;
            let d = d.inner();
            #[allow(clippy::cast_precision_loss)] // seconds as a float, as documented
            let seconds = d.num_seconds() as f64 + f64::from(d.subsec_nanos()) / 1e9;
            PyFloat::new(py, seconds).into_any()
        }
        Kind::Type => {
            let t = value.downcast_ref::<CelType>().ok_or_else(unsupported)?;
            PyString::new(py, t.name()).into_any()
        }
        _ => match value.downcast_ref::<CelOptional>() {
            Some(o) => match o.inner() {
                Some(inner) => to_python(py, inner)?,
                None => py.None().into_bound(py),
            },
            None => return Err(unsupported()),
        },
    })
}
