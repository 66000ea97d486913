//! The plan: an immutable directed graph of nodes `0..node_count` and port-labelled edges,
//! stored as compressed sparse rows in both directions, with the graph algorithms the
//! compiler and the scheduler need (topological order, cycle search, ancestors).
//!
//! Everything here is plain Rust; `py_plan` wraps it for Python.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::OnceLock;

/// Why a plan could not be built or queried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphError {
    /// A node index outside `0..node_count`.
    NodeOutOfRange { node: i64, node_count: u32 },
    /// Too many nodes or edges for 32-bit indices.
    TooLarge(&'static str),
    /// The operation needs an acyclic plan.
    Cyclic(Vec<u32>),
}

impl std::fmt::Display for GraphError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GraphError::NodeOutOfRange { node, node_count } => write!(
                f,
                "node index {node} is out of range for a plan of {node_count} nodes"
            ),
            GraphError::TooLarge(what) => write!(f, "too many {what} for a plan"),
            GraphError::Cyclic(cycle) => {
                let path: Vec<String> = cycle.iter().map(u32::to_string).collect();
                write!(
                    f,
                    "the plan has a cycle: {} -> {}",
                    path.join(" -> "),
                    cycle[0]
                )
            }
        }
    }
}

/// Port names interned to small ids, in order of first appearance.
#[derive(Debug, Default)]
pub struct Ports {
    names: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Ports {
    /// The id of `name`, adding it if new.
    ///
    /// # Panics
    /// With more than `u32::MAX` distinct names, which the edge count rules out.
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = u32::try_from(self.names.len()).expect("fewer than 2^32 distinct ports");
        self.names.push(name.to_owned());
        self.ids.insert(name.to_owned(), id);
        id
    }

    /// The id of `name`, if any edge uses it.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    /// The name of port `id`.
    #[must_use]
    pub fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    /// All names, indexed by id.
    #[must_use]
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

/// One direction of adjacency in CSR form: the edges of node `v` are at
/// `start[v]..start[v + 1]`, in edge insertion order.
#[derive(Debug, Default)]
pub struct Adjacency {
    pub start: Vec<u32>,
    /// The node at the other end of each edge.
    pub nodes: Vec<u32>,
    /// The port id of each edge.
    pub ports: Vec<u32>,
    /// The index of each edge in insertion order.
    pub edges: Vec<u32>,
}

impl Adjacency {
    fn build(node_count: usize, from: &[u32], to: &[u32], ports: &[u32]) -> Self {
        let mut start = vec![0u32; node_count + 1];
        for &f in from {
            start[f as usize + 1] += 1;
        }
        for i in 0..node_count {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        let m = from.len();
        let mut nodes = vec![0u32; m];
        let mut out_ports = vec![0u32; m];
        let mut edges = vec![0u32; m];
        for (e, (&f, (&t, &p))) in from.iter().zip(to.iter().zip(ports)).enumerate() {
            let slot = &mut fill[f as usize];
            let at = *slot as usize;
            *slot += 1;
            nodes[at] = t;
            out_ports[at] = p;
            #[allow(clippy::cast_possible_truncation)] // Graph::new checks edge counts fit u32
            let e = e as u32;
            edges[at] = e;
        }
        Adjacency {
            start,
            nodes,
            ports: out_ports,
            edges,
        }
    }

    /// The positions of node `v`'s edges.
    #[inline]
    #[must_use]
    pub fn range(&self, v: u32) -> std::ops::Range<usize> {
        self.start[v as usize] as usize..self.start[v as usize + 1] as usize
    }

    /// The number of edges of node `v`.
    #[inline]
    #[must_use]
    pub fn degree(&self, v: u32) -> u32 {
        self.start[v as usize + 1] - self.start[v as usize]
    }
}

/// An immutable plan graph.
#[derive(Debug)]
pub struct Graph {
    node_count: u32,
    sources: Vec<u32>,
    targets: Vec<u32>,
    pub ports: Ports,
    pub out: Adjacency,
    pub inc: Adjacency,
    /// Whether every edge goes from a lower to a higher index, which makes
    /// `0..n` the topological order and rules out cycles.
    forward_only: bool,
    /// `None` while unknown; the cycle `find_cycle` returns once computed.
    cycle: OnceLock<Option<Vec<u32>>>,
}

impl Graph {
    /// Builds a graph from edges `(source, target, port id)`; `ports` holds the names.
    ///
    /// # Errors
    /// A node index out of range, or more than `u32::MAX - 1` nodes or edges.
    pub fn new(
        node_count: i64,
        sources: Vec<u32>,
        targets: Vec<u32>,
        port_ids: &[u32],
        ports: Ports,
    ) -> Result<Self, GraphError> {
        let n = u32::try_from(node_count)
            .ok()
            .filter(|&n| n < u32::MAX)
            .ok_or(if node_count < 0 {
                GraphError::NodeOutOfRange {
                    node: node_count,
                    node_count: 0,
                }
            } else {
                GraphError::TooLarge("nodes")
            })?;
        if u32::try_from(sources.len()).is_err() {
            return Err(GraphError::TooLarge("edges"));
        }
        let mut forward_only = true;
        for (&s, &t) in sources.iter().zip(&targets) {
            if s >= n || t >= n {
                let node = if s >= n { s } else { t };
                return Err(GraphError::NodeOutOfRange {
                    node: i64::from(node),
                    node_count: n,
                });
            }
            forward_only &= s < t;
        }
        let out = Adjacency::build(n as usize, &sources, &targets, port_ids);
        let inc = Adjacency::build(n as usize, &targets, &sources, port_ids);
        Ok(Graph {
            node_count: n,
            sources,
            targets,
            ports,
            out,
            inc,
            forward_only,
            cycle: OnceLock::new(),
        })
    }

    /// Convenience for tests and Rust callers: edges as `(source, target, port)`.
    ///
    /// # Errors
    /// See [`Graph::new`].
    pub fn from_edges(node_count: i64, edges: &[(i64, i64, &str)]) -> Result<Self, GraphError> {
        let mut ports = Ports::default();
        let mut sources = Vec::with_capacity(edges.len());
        let mut targets = Vec::with_capacity(edges.len());
        let mut port_ids = Vec::with_capacity(edges.len());
        for &(s, t, p) in edges {
            let check = |v: i64| {
                u32::try_from(v).map_err(|_| GraphError::NodeOutOfRange {
                    node: v,
                    node_count: u32::try_from(node_count).unwrap_or(0),
                })
            };
            sources.push(check(s)?);
            targets.push(check(t)?);
            port_ids.push(ports.intern(p));
        }
        Graph::new(node_count, sources, targets, &port_ids, ports)
    }

    #[inline]
    pub fn node_count(&self) -> u32 {
        self.node_count
    }

    #[inline]
    pub fn edge_count(&self) -> usize {
        self.sources.len()
    }

    /// The source and target of edge `e` (insertion order).
    #[inline]
    pub fn edge(&self, e: usize) -> (u32, u32) {
        (self.sources[e], self.targets[e])
    }

    /// Checks that `node` is a node of this graph.
    ///
    /// # Errors
    /// [`GraphError::NodeOutOfRange`].
    pub fn check_node(&self, node: i64) -> Result<u32, GraphError> {
        u32::try_from(node)
            .ok()
            .filter(|&v| v < self.node_count)
            .ok_or(GraphError::NodeOutOfRange {
                node,
                node_count: self.node_count,
            })
    }

    /// One cycle, as the nodes in edge order starting at its smallest index,
    /// or `None` when the graph is acyclic. Computed once.
    pub fn find_cycle(&self) -> Option<&[u32]> {
        self.cycle
            .get_or_init(|| {
                if self.forward_only {
                    None
                } else {
                    self.search_cycle()
                }
            })
            .as_deref()
    }

    /// Iterative depth-first search from each node in ascending order, edges in
    /// insertion order; the first back edge closes the cycle.
    fn search_cycle(&self) -> Option<Vec<u32>> {
        const WHITE: u8 = 0;
        const GREY: u8 = 1;
        const BLACK: u8 = 2;
        let n = self.node_count as usize;
        let mut colour = vec![WHITE; n];
        // (node, next edge position)
        let mut stack: Vec<(u32, usize)> = Vec::new();
        for root in 0..self.node_count {
            if colour[root as usize] != WHITE {
                continue;
            }
            colour[root as usize] = GREY;
            stack.push((root, self.out.range(root).start));
            while let Some(top) = stack.last_mut() {
                let (v, pos) = *top;
                if pos == self.out.range(v).end {
                    colour[v as usize] = BLACK;
                    stack.pop();
                    continue;
                }
                top.1 += 1;
                let w = self.out.nodes[pos];
                match colour[w as usize] {
                    WHITE => {
                        colour[w as usize] = GREY;
                        stack.push((w, self.out.range(w).start));
                    }
                    GREY => {
                        let from = stack
                            .iter()
                            .rposition(|&(u, _)| u == w)
                            .expect("a grey node is on the stack");
                        let mut cycle: Vec<u32> = stack[from..].iter().map(|&(u, _)| u).collect();
                        let smallest = (0..cycle.len())
                            .min_by_key(|&i| cycle[i])
                            .expect("a cycle has a node");
                        cycle.rotate_left(smallest);
                        return Some(cycle);
                    }
                    _ => {}
                }
            }
        }
        None
    }

    /// Kahn's algorithm, taking the smallest ready index first.
    ///
    /// # Errors
    /// [`GraphError::Cyclic`] with one cycle.
    ///
    /// # Panics
    /// Not in practice: when Kahn's algorithm stops early, a cycle exists.
    pub fn topo_order(&self) -> Result<Vec<u32>, GraphError> {
        if self.forward_only {
            return Ok((0..self.node_count).collect());
        }
        let n = self.node_count as usize;
        let mut indegree: Vec<u32> = (0..self.node_count).map(|v| self.inc.degree(v)).collect();
        let mut heap: BinaryHeap<Reverse<u32>> = (0..self.node_count)
            .filter(|&v| indegree[v as usize] == 0)
            .map(Reverse)
            .collect();
        let mut order = Vec::with_capacity(n);
        while let Some(Reverse(v)) = heap.pop() {
            order.push(v);
            for pos in self.out.range(v) {
                let w = self.out.nodes[pos];
                let d = &mut indegree[w as usize];
                *d -= 1;
                if *d == 0 {
                    heap.push(Reverse(w));
                }
            }
        }
        if order.len() == n {
            let _ = self.cycle.set(None);
            Ok(order)
        } else {
            let cycle = self
                .find_cycle()
                .expect("Kahn stopped early, so there is a cycle");
            Err(GraphError::Cyclic(cycle.to_vec()))
        }
    }

    /// Sorted indices of every node with a path to `node`; `node` itself is
    /// excluded, even on a cyclic plan.
    pub fn ancestors(&self, node: u32) -> Vec<u32> {
        let mut seen = vec![false; self.node_count as usize];
        seen[node as usize] = true;
        let mut stack = vec![node];
        let mut found = Vec::new();
        while let Some(v) = stack.pop() {
            for pos in self.inc.range(v) {
                let u = self.inc.nodes[pos];
                if !seen[u as usize] {
                    seen[u as usize] = true;
                    found.push(u);
                    stack.push(u);
                }
            }
        }
        found.sort_unstable();
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(n: i64, edges: &[(i64, i64)]) -> Graph {
        let edges: Vec<(i64, i64, &str)> = edges.iter().map(|&(s, t)| (s, t, "out")).collect();
        Graph::from_edges(n, &edges).unwrap()
    }

    #[test]
    fn rejects_out_of_range_nodes() {
        assert!(matches!(
            Graph::from_edges(2, &[(0, 2, "out")]),
            Err(GraphError::NodeOutOfRange { node: 2, .. })
        ));
        assert!(matches!(
            Graph::from_edges(2, &[(-1, 1, "out")]),
            Err(GraphError::NodeOutOfRange { node: -1, .. })
        ));
        assert!(Graph::from_edges(-1, &[]).is_err());
    }

    #[test]
    fn topo_order_takes_smallest_index_first() {
        let g = graph(5, &[(3, 1), (4, 0), (1, 2), (0, 2)]);
        assert_eq!(g.topo_order().unwrap(), vec![3, 1, 4, 0, 2]);
        assert_eq!(g.find_cycle(), None);
    }

    #[test]
    fn forward_graphs_are_ordered_by_index() {
        let g = graph(4, &[(0, 3), (1, 2), (2, 3)]);
        assert_eq!(g.topo_order().unwrap(), vec![0, 1, 2, 3]);
    }

    #[test]
    fn cycles_start_at_their_smallest_node() {
        let g = graph(5, &[(0, 1), (1, 4), (4, 2), (2, 1)]);
        assert_eq!(g.find_cycle(), Some(&[1, 4, 2][..]));
        assert!(matches!(g.topo_order(), Err(GraphError::Cyclic(c)) if c == vec![1, 4, 2]));
        let g = graph(3, &[(0, 1), (2, 2)]);
        assert_eq!(g.find_cycle(), Some(&[2][..]));
    }

    #[test]
    fn ancestors_are_sorted_and_exclude_the_node() {
        let g = graph(6, &[(0, 2), (1, 2), (2, 3), (4, 3), (3, 5)]);
        assert_eq!(g.ancestors(3), vec![0, 1, 2, 4]);
        assert_eq!(g.ancestors(0), Vec::<u32>::new());
    }

    #[test]
    fn adjacency_keeps_insertion_order_and_ports() {
        let g = Graph::from_edges(3, &[(0, 2, "b"), (0, 1, "a"), (1, 2, "b")]).unwrap();
        let succ: Vec<(u32, &str)> = g
            .out
            .range(0)
            .map(|p| (g.out.nodes[p], g.ports.name(g.out.ports[p])))
            .collect();
        assert_eq!(succ, vec![(2, "b"), (1, "a")]);
        let pred: Vec<u32> = g.inc.range(2).map(|p| g.inc.nodes[p]).collect();
        assert_eq!(pred, vec![0, 1]);
        assert_eq!(g.edge(2), (1, 2));
    }
}
