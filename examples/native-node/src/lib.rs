//! `polyhost_example_native`: a native node built outside polyhost's own crate.
//!
//! The protocol for out-of-tree native nodes is a callable `(params: dict, cancel) -> dict`
//! in an importable module, named by a manifest (`runtime = "native"`, `module`,
//! `handler`). The host calls it on a worker thread; `cancel.cancelled` turns true when the
//! run is cancelled or times out; raising `ValueError` fails the node with its message.
//! Long work releases the GIL and looks at `cancel.cancelled` between chunks.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

/// Bytes counted between two looks at the cancel flag.
const CHUNK: usize = 64 * 1024;

/// Counts whitespace-separated words, carrying a word across chunk boundaries.
#[derive(Default)]
struct Counter {
    words: u64,
    in_word: bool,
}

impl Counter {
    fn feed(&mut self, text: &str) {
        for c in text.chars() {
            let word = !c.is_whitespace();
            if word && !self.in_word {
                self.words += 1;
            }
            self.in_word = word;
        }
    }
}

/// `text` split into pieces of about `CHUNK` bytes, at character boundaries.
fn chunks(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = CHUNK.min(rest.len());
        while !rest.is_char_boundary(end) {
            end += 1;
        }
        let (head, tail) = rest.split_at(end);
        rest = tail;
        Some(head)
    })
}

/// The `word_count` node: `{"text": str}` to `{"words": int}`.
///
/// # Errors
/// `ValueError` for missing or unknown parameters, and when cancelled.
#[pyfunction]
fn word_count<'py>(
    py: Python<'py>,
    params: &Bound<'py, PyDict>,
    cancel: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let mut text = None;
    for (key, value) in params.iter() {
        match key.extract::<String>()?.as_str() {
            "text" => {
                let value = value
                    .cast::<PyString>()
                    .map_err(|_| PyValueError::new_err("`text` must be a string"))?;
                text = Some(value.to_str()?.to_owned());
            }
            other => {
                return Err(PyValueError::new_err(format!(
                    "unknown parameter `{other}`"
                )))
            }
        }
    }
    let text = text.ok_or_else(|| PyValueError::new_err("`text` is required"))?;
    let cancel = cancel.clone().unbind();
    let words = py.detach(|| {
        let mut counter = Counter::default();
        for chunk in chunks(&text) {
            // Reading a Python attribute needs the GIL, briefly.
            let cancelled = Python::attach(|py| cancel.bind(py).getattr("cancelled")?.is_truthy())?;
            if cancelled {
                return Err(PyValueError::new_err("cancelled"));
            }
            counter.feed(chunk);
        }
        Ok::<u64, PyErr>(counter.words)
    })?;
    let out = PyDict::new(py);
    out.set_item("words", words)?;
    Ok(out)
}

/// The module.
#[pymodule]
fn polyhost_example_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(word_count, m)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_span_chunks() {
        let text = format!("{} tail", "é".repeat(CHUNK));
        let mut counter = Counter::default();
        let pieces: Vec<&str> = chunks(&text).collect();
        assert!(pieces.len() > 1);
        for piece in pieces {
            counter.feed(piece);
        }
        assert_eq!(counter.words, 2);
    }
}
