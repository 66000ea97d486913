//! `Plan`, the Python face of [`Graph`].

use std::sync::Arc;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyInt, PyList, PyString, PyTuple};

use crate::errors::PlanError;
use crate::plan::{Graph, Ports};
use crate::py_scheduler::RunState;
use crate::scheduler::Run;

/// Graphs at least this big (nodes + edges) are searched with the GIL released.
const DETACH_THRESHOLD: usize = 4096;

/// An immutable DAG of nodes `0..node_count` with port-labelled edges.
#[pyclass(module = "polyhost._native", frozen)]
pub struct Plan {
    pub(crate) graph: Arc<Graph>,
    port_names: Vec<Py<PyString>>,
}

impl Plan {
    fn big(&self) -> bool {
        self.graph.node_count() as usize + self.graph.edge_count() >= DETACH_THRESHOLD
    }

    /// Runs `f` on the graph, without the GIL when the graph is big.
    fn with_graph<T: Send>(&self, py: Python<'_>, f: impl FnOnce(&Graph) -> T + Send) -> T {
        if self.big() {
            let graph = &*self.graph;
            py.detach(move || f(graph))
        } else {
            f(&self.graph)
        }
    }

    fn node(&self, node: i64) -> PyResult<u32> {
        Ok(self.graph.check_node(node)?)
    }

    fn neighbours(
        &self,
        py: Python<'_>,
        node: i64,
        outgoing: bool,
    ) -> PyResult<Vec<(u32, Py<PyString>)>> {
        let v = self.node(node)?;
        let adjacency = if outgoing {
            &self.graph.out
        } else {
            &self.graph.inc
        };
        Ok(adjacency
            .range(v)
            .map(|p| {
                let port = &self.port_names[adjacency.ports[p] as usize];
                (adjacency.nodes[p], port.clone_ref(py))
            })
            .collect())
    }
}

#[pymethods]
impl Plan {
    /// Builds the plan from `(source, target, port)` edges.
    #[new]
    fn new(py: Python<'_>, node_count: i64, edges: &Bound<'_, PyAny>) -> PyResult<Self> {
        let read = EdgeReader::read(node_count, edges)?;
        let EdgeReader {
            sources,
            targets,
            port_ids,
            ports,
            ..
        } = read;
        let graph =
            py.detach(move || Graph::new(node_count, sources, targets, &port_ids, ports))?;
        let port_names = graph
            .ports
            .names()
            .iter()
            .map(|name| PyString::intern(py, name).unbind())
            .collect();
        Ok(Plan {
            graph: Arc::new(graph),
            port_names,
        })
    }

    /// The number of nodes.
    #[getter]
    fn node_count(&self) -> u32 {
        self.graph.node_count()
    }

    /// The number of edges, duplicates included.
    #[getter]
    fn edge_count(&self) -> usize {
        self.graph.edge_count()
    }

    /// One cycle in edge order from its smallest node, or None when acyclic.
    fn find_cycle(&self, py: Python<'_>) -> Option<Vec<u32>> {
        self.with_graph(py, |g| g.find_cycle().map(<[u32]>::to_vec))
    }

    /// All nodes in topological order, smallest available index first.
    fn topo_order(&self, py: Python<'_>) -> PyResult<Vec<u32>> {
        Ok(self.with_graph(py, Graph::topo_order)?)
    }

    /// Sorted indices of every node with a path to `node`, `node` excluded.
    fn ancestors(&self, py: Python<'_>, node: i64) -> PyResult<Vec<u32>> {
        let v = self.node(node)?;
        Ok(self.with_graph(py, |g| g.ancestors(v)))
    }

    /// `(target, port)` for each edge leaving `node`, in insertion order.
    fn successors(&self, py: Python<'_>, node: i64) -> PyResult<Vec<(u32, Py<PyString>)>> {
        self.neighbours(py, node, true)
    }

    /// `(source, port)` for each edge entering `node`, in insertion order.
    fn predecessors(&self, py: Python<'_>, node: i64) -> PyResult<Vec<(u32, Py<PyString>)>> {
        self.neighbours(py, node, false)
    }

    /// A fresh run of this plan; raises `PlanError` on a cyclic plan.
    fn new_run(&self, py: Python<'_>) -> PyResult<RunState> {
        if let Some(cycle) = self.with_graph(py, |g| g.find_cycle().map(<[u32]>::to_vec)) {
            return Err(crate::plan::GraphError::Cyclic(cycle).into());
        }
        Ok(RunState::from_run(Run::new(Arc::clone(&self.graph))))
    }

    fn __repr__(&self) -> String {
        format!(
            "Plan(node_count={}, edge_count={})",
            self.graph.node_count(),
            self.graph.edge_count()
        )
    }
}

/// Reads `(source, target, port)` triples from Python, interning ports.
struct EdgeReader<'py> {
    node_count: i64,
    sources: Vec<u32>,
    targets: Vec<u32>,
    port_ids: Vec<u32>,
    ports: Ports,
    /// Recently seen port objects: the same `str` object is looked up by identity. Holding
    /// them keeps the identity meaningful for the whole read.
    seen: Vec<(Bound<'py, PyString>, u32)>,
}

impl<'py> EdgeReader<'py> {
    fn read(node_count: i64, edges: &Bound<'py, PyAny>) -> PyResult<Self> {
        if node_count < 0 {
            return Err(PlanError::new_err(format!(
                "node_count must not be negative, got {node_count}"
            )));
        }
        let capacity = edges.len().unwrap_or(0);
        let mut reader = EdgeReader {
            node_count,
            sources: Vec::with_capacity(capacity),
            targets: Vec::with_capacity(capacity),
            port_ids: Vec::with_capacity(capacity),
            ports: Ports::default(),
            seen: Vec::new(),
        };
        if let Ok(list) = edges.cast::<PyList>() {
            for item in list.iter() {
                reader.push(&item)?;
            }
        } else if let Ok(tuple) = edges.cast::<PyTuple>() {
            for item in tuple.iter() {
                reader.push(&item)?;
            }
        } else {
            for item in edges.try_iter()? {
                reader.push(&item?)?;
            }
        }
        Ok(reader)
    }

    fn push(&mut self, item: &Bound<'py, PyAny>) -> PyResult<()> {
        let shape_error = || {
            PyTypeError::new_err(format!(
                "edge {} must be a (source, target, port) tuple",
                self.sources.len()
            ))
        };
        if let Ok(t) = item.cast::<PyTuple>() {
            if t.len() != 3 {
                return Err(shape_error());
            }
            // Borrowed items: no reference counting per edge.
            let source = self.index(&*t.get_borrowed_item(0)?)?;
            let target = self.index(&*t.get_borrowed_item(1)?)?;
            let port = self.port(&*t.get_borrowed_item(2)?)?;
            self.add(source, target, port);
        } else if let Ok(l) = item.cast::<PyList>() {
            if l.len() != 3 {
                return Err(shape_error());
            }
            let source = self.index(&l.get_item(0)?)?;
            let target = self.index(&l.get_item(1)?)?;
            let port = self.port(&l.get_item(2)?)?;
            self.add(source, target, port);
        } else {
            return Err(shape_error());
        }
        Ok(())
    }

    fn add(&mut self, source: u32, target: u32, port: u32) {
        self.sources.push(source);
        self.targets.push(target);
        self.port_ids.push(port);
    }

    fn index(&self, value: &Bound<'py, PyAny>) -> PyResult<u32> {
        let v = match value.extract::<i64>() {
            Ok(v) => v,
            // An int too big for i64 is out of range like any other.
            Err(_) if value.is_instance_of::<PyInt>() => -1,
            Err(err) => return Err(err),
        };
        if v < 0 || v >= self.node_count {
            return Err(PlanError::new_err(format!(
                "edge {}: node index {value} is out of range for a plan of {} nodes",
                self.sources.len(),
                self.node_count
            )));
        }
        // Bounded by node_count, which Graph::new checks against u32.
        Ok(u32::try_from(v).unwrap_or(u32::MAX))
    }

    fn port(&mut self, value: &Bound<'py, PyAny>) -> PyResult<u32> {
        if let Some(&(_, id)) = self.seen.iter().find(|(s, _)| s.is(value)) {
            return Ok(id);
        }
        let port = value.cast::<PyString>().map_err(|_| {
            PyTypeError::new_err(format!(
                "edge {}: the port must be a str, not {}",
                self.sources.len(),
                value
                    .get_type()
                    .name()
                    .map_or_else(|_| "?".to_owned(), |n| n.to_string())
            ))
        })?;
        let id = self.ports.intern(port.to_str()?);
        if self.seen.len() < 16 {
            self.seen.push((port.clone(), id));
        }
        Ok(id)
    }
}
