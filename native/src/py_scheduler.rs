//! `RunState`, the Python face of [`Run`], and its snapshot format.

use std::sync::Arc;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyInt, PyList, PyString, PyTuple};

use crate::errors::PlanError;
use crate::py_plan::Plan;
use crate::scheduler::{NodeState, Run, Snapshot, Step};

/// The snapshot format version written by `snapshot()` and read by `restore()`.
const SNAPSHOT_VERSION: i64 = 1;

/// Scheduler state of one run of a plan.
#[pyclass(module = "polyhost._native")]
pub struct RunState {
    run: Run,
}

impl RunState {
    pub(crate) fn from_run(run: Run) -> Self {
        RunState { run }
    }

    fn node(&self, node: i64) -> PyResult<u32> {
        Ok(self.run.graph().check_node(node)?)
    }

    fn nodes(&self, nodes: &Bound<'_, PyAny>) -> PyResult<Vec<u32>> {
        let mut out = Vec::with_capacity(nodes.len().unwrap_or(0));
        if let Ok(list) = nodes.cast::<PyList>() {
            for item in list.iter() {
                out.push(self.node(item.extract()?)?);
            }
        } else {
            for item in nodes.try_iter()? {
                out.push(self.node(item?.extract()?)?);
            }
        }
        Ok(out)
    }
}

fn step_result(step: Step) -> (Vec<u32>, Vec<u32>) {
    (step.ready, step.skipped)
}

#[pymethods]
impl RunState {
    /// Marks the nodes without incoming edges ready and returns them.
    fn start(&mut self) -> PyResult<Vec<u32>> {
        Ok(self.run.start()?)
    }

    /// `node` finished, taking its outgoing edges on `ports`; returns
    /// `(newly_ready, newly_skipped)`, each ascending.
    fn complete(&mut self, node: i64, ports: &Bound<'_, PyAny>) -> PyResult<(Vec<u32>, Vec<u32>)> {
        let v = self.node(node)?;
        if ports.is_instance_of::<PyString>() {
            return Err(PyTypeError::new_err(
                "ports must be a sequence of port names, not a str",
            ));
        }
        let mut ids = Vec::new();
        for port in ports.try_iter()? {
            let port = port?;
            let name = port.cast::<PyString>()?.to_str()?;
            // A port no edge uses takes nothing.
            if let Some(id) = self.run.graph().ports.get(name) {
                ids.push(id);
            }
        }
        Ok(step_result(self.run.complete(v, &ids)?))
    }

    /// Every node of `nodes` finished on `port`; all or nothing.
    fn complete_many(
        &mut self,
        nodes: &Bound<'_, PyAny>,
        port: &str,
    ) -> PyResult<(Vec<u32>, Vec<u32>)> {
        let nodes = self.nodes(nodes)?;
        let port = self.run.graph().ports.get(port);
        Ok(step_result(self.run.complete_many(&nodes, port)?))
    }

    /// A ready node will not run: it and the paths only it feeds are skipped.
    fn skip(&mut self, node: i64) -> PyResult<(Vec<u32>, Vec<u32>)> {
        let v = self.node(node)?;
        Ok(step_result(self.run.skip(v)?))
    }

    /// Ready to running (optional bookkeeping).
    fn mark_running(&mut self, node: i64) -> PyResult<()> {
        let v = self.node(node)?;
        Ok(self.run.mark_running(v)?)
    }

    /// pending, ready, running, completed or skipped.
    fn state(&self, node: i64) -> PyResult<&'static str> {
        Ok(self.run.state(self.node(node)?).name())
    }

    /// No node is pending, ready or running.
    fn is_finished(&self) -> bool {
        self.run.is_finished()
    }

    /// The number of nodes in each state.
    fn counts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        for (state, count) in NodeState::ALL.iter().zip(self.run.counts()) {
            dict.set_item(state.name(), count)?;
        }
        Ok(dict)
    }

    /// The full scheduler state as JSON-compatible data.
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let snap = self.run.snapshot();
        let names: Vec<Bound<'py, PyString>> = NodeState::ALL
            .iter()
            .map(|s| PyString::intern(py, s.name()))
            .collect();
        let states = PyList::new(py, snap.states.iter().map(|&s| &names[s as usize]))?;
        let dict = PyDict::new(py);
        dict.set_item("version", SNAPSHOT_VERSION)?;
        dict.set_item("node_count", self.run.graph().node_count())?;
        dict.set_item("edge_count", self.run.graph().edge_count())?;
        dict.set_item("started", snap.started)?;
        dict.set_item("states", states)?;
        dict.set_item("taken_edges", snap.taken_edges)?;
        Ok(dict)
    }

    /// Rebuilds a run from `snapshot()` output taken on the same plan.
    #[staticmethod]
    fn restore(plan: &Bound<'_, Plan>, snapshot: &Bound<'_, PyAny>) -> PyResult<RunState> {
        let graph = Arc::clone(&plan.get().graph);
        let snap = read_snapshot(snapshot, graph.node_count(), graph.edge_count())?;
        Ok(RunState::from_run(Run::restore(graph, &snap)?))
    }

    fn __repr__(&self) -> String {
        let counts: Vec<String> = NodeState::ALL
            .iter()
            .zip(self.run.counts())
            .map(|(s, c)| format!("{}={c}", s.name()))
            .collect();
        format!("RunState({})", counts.join(", "))
    }
}

fn mismatch(why: &str) -> PyErr {
    PlanError::new_err(format!("snapshot does not match the plan: {why}"))
}

fn field<'py>(dict: &Bound<'py, PyDict>, key: &str) -> PyResult<Bound<'py, PyAny>> {
    dict.get_item(key)?
        .ok_or_else(|| mismatch(&format!("missing key {key:?}")))
}

fn int_field(dict: &Bound<'_, PyDict>, key: &str) -> PyResult<i64> {
    let value = field(dict, key)?;
    if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
        return Err(mismatch(&format!("{key:?} must be an int")));
    }
    value
        .extract()
        .map_err(|_| mismatch(&format!("{key:?} is out of range")))
}

fn list_field<'py>(dict: &Bound<'py, PyDict>, key: &str) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let value = field(dict, key)?;
    if let Ok(list) = value.cast::<PyList>() {
        Ok(list.iter().collect())
    } else if let Ok(tuple) = value.cast::<PyTuple>() {
        Ok(tuple.iter().collect())
    } else {
        Err(mismatch(&format!("{key:?} must be a list")))
    }
}

fn read_snapshot(
    snapshot: &Bound<'_, PyAny>,
    node_count: u32,
    edge_count: usize,
) -> PyResult<Snapshot> {
    let dict = snapshot
        .cast::<PyDict>()
        .map_err(|_| mismatch("a snapshot is a dict"))?;
    let version = int_field(dict, "version")?;
    if version != SNAPSHOT_VERSION {
        return Err(mismatch(&format!("unknown snapshot version {version}")));
    }
    let n = int_field(dict, "node_count")?;
    let m = int_field(dict, "edge_count")?;
    if n != i64::from(node_count) || usize::try_from(m).ok() != Some(edge_count) {
        return Err(mismatch(&format!(
            "it is of a plan of {n} nodes and {m} edges, not {node_count} and {edge_count}"
        )));
    }
    let started = field(dict, "started")?
        .cast::<PyBool>()
        .map_err(|_| mismatch("\"started\" must be a bool"))?
        .is_true();
    let states = list_field(dict, "states")?
        .iter()
        .map(|s| {
            s.cast::<PyString>()
                .ok()
                .and_then(|s| s.to_str().ok().and_then(NodeState::from_name))
                .ok_or_else(|| mismatch(&format!("{s} is not a node state")))
        })
        .collect::<PyResult<Vec<_>>>()?;
    let taken_edges = list_field(dict, "taken_edges")?
        .iter()
        .map(|e| {
            e.extract::<u32>()
                .ok()
                .filter(|_| !e.is_instance_of::<PyBool>())
                .ok_or_else(|| mismatch(&format!("{e} is not an edge index")))
        })
        .collect::<PyResult<Vec<_>>>()?;
    Ok(Snapshot {
        started,
        states,
        taken_edges,
    })
}
