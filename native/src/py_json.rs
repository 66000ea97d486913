//! Converting between Python values and JSON values (`serde_json::Value`) for native
//! nodes: dict (str keys), list and tuple, str, int (64-bit), float (finite), bool and
//! None, each way.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value};

/// Containers nested deeper than this are refused (and self-containing ones caught).
const MAX_DEPTH: u32 = 128;

/// Why a Python value has no JSON counterpart; `path` locates it, like `rows[3].price`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertError {
    pub path: String,
    pub message: String,
}

fn err(path: &str, message: String) -> ConvertError {
    ConvertError {
        path: path.to_owned(),
        message,
    }
}

fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string())
}

/// Converts a Python value; `path` names it in errors.
///
/// # Errors
/// A value with no JSON counterpart: another type, a non-str key, an int beyond 64 bits,
/// a NaN or infinite float, or nesting deeper than 128 levels.
pub fn to_json(value: &Bound<'_, PyAny>, path: &str) -> Result<Value, ConvertError> {
    convert(value, path, 0)
}

fn convert(value: &Bound<'_, PyAny>, path: &str, depth: u32) -> Result<Value, ConvertError> {
    if depth > MAX_DEPTH {
        return Err(err(
            path,
            format!("nested more than {MAX_DEPTH} levels deep"),
        ));
    }
    if let Ok(s) = value.cast::<PyString>() {
        return s
            .to_str()
            .map(|s| Value::String(s.to_owned()))
            .map_err(|e| err(path, e.to_string()));
    }
    if let Ok(b) = value.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if value.is_instance_of::<PyInt>() {
        if let Ok(i) = value.extract::<i64>() {
            return Ok(Value::from(i));
        }
        if let Ok(u) = value.extract::<u64>() {
            return Ok(Value::from(u));
        }
        return Err(err(
            path,
            format!("the integer {value} does not fit 64 bits"),
        ));
    }
    if let Ok(f) = value.cast::<PyFloat>() {
        return Number::from_f64(f.value())
            .map(Value::Number)
            .ok_or_else(|| err(path, format!("the float {} is not finite", f.value())));
    }
    if value.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(d) = value.cast::<PyDict>() {
        let mut map = Map::with_capacity(d.len());
        for (k, v) in d.iter() {
            let Ok(key) = k.cast::<PyString>() else {
                return Err(err(
                    path,
                    format!("a key of type {} (keys must be str)", type_name(&k)),
                ));
            };
            let key = key.to_str().map_err(|e| err(path, e.to_string()))?;
            let child = if path.is_empty() {
                key.to_owned()
            } else {
                format!("{path}.{key}")
            };
            map.insert(key.to_owned(), convert(&v, &child, depth + 1)?);
        }
        return Ok(Value::Object(map));
    }
    if let Ok(l) = value.cast::<PyList>() {
        return sequence(l.iter(), l.len(), path, depth);
    }
    if let Ok(t) = value.cast::<PyTuple>() {
        return sequence(t.iter(), t.len(), path, depth);
    }
    Err(err(
        path,
        format!(
            "a value of type {} has no JSON counterpart",
            type_name(value)
        ),
    ))
}

fn sequence<'py>(
    items: impl Iterator<Item = Bound<'py, PyAny>>,
    len: usize,
    path: &str,
    depth: u32,
) -> Result<Value, ConvertError> {
    let mut out = Vec::with_capacity(len);
    for (i, item) in items.enumerate() {
        out.push(convert(&item, &format!("{path}[{i}]"), depth + 1)?);
    }
    Ok(Value::Array(out))
}

/// Converts a JSON value to Python, consuming it so each part is freed once converted.
///
/// The objects of one array share their key strings when they have the same keys in the
/// same order (rows of a table), which saves a string per field.
///
/// # Errors
/// When Python cannot allocate.
pub fn to_py(py: Python<'_>, value: Value) -> PyResult<Bound<'_, PyAny>> {
    let mut no_keys = Vec::new();
    convert_back(py, value, &mut no_keys)
}

fn convert_back<'py>(
    py: Python<'py>,
    value: Value,
    keys: &mut Vec<(String, Bound<'py, PyString>)>,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                PyFloat::new(py, n.as_f64().unwrap_or(f64::NAN)).into_any()
            }
        }
        Value::String(s) => PyString::new(py, &s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            let mut row_keys = Vec::new();
            for item in items {
                list.append(convert_back(py, item, &mut row_keys)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            let mut inner = Vec::new();
            for (i, (k, v)) in map.into_iter().enumerate() {
                let key = match keys.get(i) {
                    Some((cached, key)) if *cached == k => key.clone(),
                    _ => {
                        let key = PyString::new(py, &k);
                        keys.truncate(i);
                        keys.push((k, key.clone()));
                        key
                    }
                };
                dict.set_item(key, convert_back(py, v, &mut inner)?)?;
            }
            dict.into_any()
        }
    })
}
