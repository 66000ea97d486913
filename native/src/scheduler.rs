//! Per-run scheduler state over a [`Graph`], with dead-path elimination.
//!
//! An edge is *settled* once its source has completed or been skipped, and *taken* when its
//! source completed on the edge's port. A node becomes ready when all its incoming edges are
//! settled and at least one was taken; when all are settled and none was taken it is skipped,
//! which settles its own outgoing edges as not taken, and so on downstream. Nodes without
//! incoming edges are ready from the start.
//!
//! Plain Rust; `py_scheduler` wraps it for Python.

use std::sync::Arc;

use crate::plan::Graph;

/// The state of one node in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum NodeState {
    Pending = 0,
    Ready = 1,
    Running = 2,
    Completed = 3,
    Skipped = 4,
}

impl NodeState {
    pub const ALL: [NodeState; 5] = [
        NodeState::Pending,
        NodeState::Ready,
        NodeState::Running,
        NodeState::Completed,
        NodeState::Skipped,
    ];

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            NodeState::Pending => "pending",
            NodeState::Ready => "ready",
            NodeState::Running => "running",
            NodeState::Completed => "completed",
            NodeState::Skipped => "skipped",
        }
    }

    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        NodeState::ALL.into_iter().find(|s| s.name() == name)
    }

    fn is_active(self) -> bool {
        matches!(self, NodeState::Ready | NodeState::Running)
    }
}

/// A scheduling error: the caller asked for a transition the rules do not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerError(pub String);

impl std::fmt::Display for SchedulerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What one call changed: nodes that became ready and nodes that were skipped
/// (transitively), each in ascending order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Step {
    pub ready: Vec<u32>,
    pub skipped: Vec<u32>,
}

impl Step {
    fn sorted(mut self) -> Self {
        self.ready.sort_unstable();
        self.skipped.sort_unstable();
        self
    }
}

/// The whole scheduler state, as a snapshot stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub started: bool,
    pub states: Vec<NodeState>,
    /// Indices (in plan insertion order) of the edges that were taken.
    pub taken_edges: Vec<u32>,
}

/// Scheduler state for one run of a plan.
#[derive(Debug, Clone)]
pub struct Run {
    graph: Arc<Graph>,
    started: bool,
    states: Vec<NodeState>,
    /// Incoming edges of each node not settled yet.
    unsettled: Vec<u32>,
    /// Whether some incoming edge of each node was taken.
    any_taken: Vec<bool>,
    /// Per edge (insertion order): taken.
    taken: Vec<bool>,
    counts: [usize; 5],
    /// Reused work list for skip propagation.
    stack: Vec<u32>,
}

impl Run {
    /// A fresh run: every node pending.
    pub fn new(graph: Arc<Graph>) -> Self {
        let n = graph.node_count();
        let unsettled = (0..n).map(|v| graph.inc.degree(v)).collect();
        let mut counts = [0; 5];
        counts[NodeState::Pending as usize] = n as usize;
        Run {
            started: false,
            states: vec![NodeState::Pending; n as usize],
            unsettled,
            any_taken: vec![false; n as usize],
            taken: vec![false; graph.edge_count()],
            counts,
            stack: Vec::new(),
            graph,
        }
    }

    #[must_use]
    pub fn graph(&self) -> &Arc<Graph> {
        &self.graph
    }

    #[must_use]
    pub fn state(&self, node: u32) -> NodeState {
        self.states[node as usize]
    }

    #[must_use]
    pub fn counts(&self) -> [usize; 5] {
        self.counts
    }

    /// No node is pending, ready or running.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.counts[NodeState::Pending as usize] == 0
            && self.counts[NodeState::Ready as usize] == 0
            && self.counts[NodeState::Running as usize] == 0
    }

    fn set(&mut self, node: u32, state: NodeState) {
        let slot = &mut self.states[node as usize];
        self.counts[*slot as usize] -= 1;
        self.counts[state as usize] += 1;
        *slot = state;
    }

    /// Marks the nodes without incoming edges ready and returns them, ascending.
    ///
    /// # Errors
    /// When called a second time.
    pub fn start(&mut self) -> Result<Vec<u32>, SchedulerError> {
        if self.started {
            return Err(SchedulerError("the run has already been started".into()));
        }
        self.started = true;
        let roots: Vec<u32> = (0..self.graph.node_count())
            .filter(|&v| self.graph.inc.degree(v) == 0)
            .collect();
        for &v in &roots {
            self.set(v, NodeState::Ready);
        }
        Ok(roots)
    }

    fn check_active(&self, node: u32, doing: &str) -> Result<(), SchedulerError> {
        let state = self.states[node as usize];
        if state.is_active() {
            Ok(())
        } else {
            Err(SchedulerError(format!(
                "cannot {doing} node {node}: it is {}, not ready or running",
                state.name()
            )))
        }
    }

    /// Node `node` finished, taking its outgoing edges whose port is in `ports` (port ids).
    ///
    /// # Errors
    /// When the node is not ready or running.
    pub fn complete(&mut self, node: u32, ports: &[u32]) -> Result<Step, SchedulerError> {
        self.check_active(node, "complete")?;
        self.set(node, NodeState::Completed);
        let mut step = Step::default();
        self.settle(node, |p| ports.contains(&p), &mut step);
        Ok(step.sorted())
    }

    /// Every node of `nodes` finished on port `port` (`None`: a port no edge uses).
    /// Nothing changes if one of them is not ready or running, or appears twice.
    ///
    /// # Errors
    /// When a node is not ready or running, or is listed twice.
    pub fn complete_many(
        &mut self,
        nodes: &[u32],
        port: Option<u32>,
    ) -> Result<Step, SchedulerError> {
        let mut prior = Vec::with_capacity(nodes.len());
        for &v in nodes {
            if let Err(err) = self.check_active(v, "complete") {
                for &(done, state) in prior.iter().rev() {
                    self.set(done, state);
                }
                return Err(err);
            }
            prior.push((v, self.states[v as usize]));
            self.set(v, NodeState::Completed);
        }
        let mut step = Step::default();
        for &v in nodes {
            self.settle(v, |p| Some(p) == port, &mut step);
        }
        Ok(step.sorted())
    }

    /// A ready (or running) node will not run: it is skipped and its outgoing edges are
    /// settled as not taken. The returned step does not list `node` itself.
    ///
    /// # Errors
    /// When the node is not ready or running.
    pub fn skip(&mut self, node: u32) -> Result<Step, SchedulerError> {
        self.check_active(node, "skip")?;
        self.set(node, NodeState::Skipped);
        let mut step = Step::default();
        self.settle(node, |_| false, &mut step);
        Ok(step.sorted())
    }

    /// Ready to running.
    ///
    /// # Errors
    /// When the node is not ready.
    pub fn mark_running(&mut self, node: u32) -> Result<(), SchedulerError> {
        let state = self.states[node as usize];
        if state != NodeState::Ready {
            return Err(SchedulerError(format!(
                "cannot run node {node}: it is {}, not ready",
                state.name()
            )));
        }
        self.set(node, NodeState::Running);
        Ok(())
    }

    /// Settles the outgoing edges of `node` (taken where `take(port)`), then propagates skips.
    fn settle(&mut self, node: u32, take: impl Fn(u32) -> bool, step: &mut Step) {
        self.stack.clear();
        let graph = Arc::clone(&self.graph);
        let out = &graph.out;
        for pos in out.range(node) {
            let target = out.nodes[pos];
            if take(out.ports[pos]) {
                self.taken[out.edges[pos] as usize] = true;
                self.any_taken[target as usize] = true;
            }
            self.settle_edge(target, step);
        }
        while let Some(skipped) = self.stack.pop() {
            for pos in out.range(skipped) {
                self.settle_edge(out.nodes[pos], step);
            }
        }
    }

    #[inline]
    fn settle_edge(&mut self, target: u32, step: &mut Step) {
        let left = &mut self.unsettled[target as usize];
        *left -= 1;
        if *left == 0 {
            if self.any_taken[target as usize] {
                self.set(target, NodeState::Ready);
                step.ready.push(target);
            } else {
                self.set(target, NodeState::Skipped);
                step.skipped.push(target);
                self.stack.push(target);
            }
        }
    }

    /// The full state.
    ///
    /// # Panics
    /// Not in practice: `Graph::new` checks that edge indices fit `u32`.
    #[must_use]
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            started: self.started,
            states: self.states.clone(),
            taken_edges: (0..self.taken.len())
                .filter(|&e| self.taken[e])
                .map(|e| u32::try_from(e).expect("Graph::new checks edge counts fit u32"))
                .collect(),
        }
    }

    /// Rebuilds a run from a snapshot taken on the same plan.
    ///
    /// # Errors
    /// When the snapshot does not fit the plan or is not a state a run can reach.
    pub fn restore(graph: Arc<Graph>, snapshot: &Snapshot) -> Result<Self, SchedulerError> {
        let bad = |why: String| SchedulerError(format!("snapshot does not match the plan: {why}"));
        let n = graph.node_count() as usize;
        if snapshot.states.len() != n {
            return Err(bad(format!(
                "it has {} node states for {n} nodes",
                snapshot.states.len()
            )));
        }
        let mut run = Run::new(graph);
        run.started = snapshot.started;
        run.states.clone_from(&snapshot.states);
        run.counts = [0; 5];
        for &s in &run.states {
            run.counts[s as usize] += 1;
        }
        for &e in &snapshot.taken_edges {
            let e = e as usize;
            if e >= run.taken.len() {
                return Err(bad(format!("taken edge {e} does not exist")));
            }
            if run.taken[e] {
                return Err(bad(format!("taken edge {e} is listed twice")));
            }
            let (source, target) = run.graph.edge(e);
            if run.states[source as usize] != NodeState::Completed {
                return Err(bad(format!(
                    "edge {e} is taken but node {source} did not complete"
                )));
            }
            run.taken[e] = true;
            run.any_taken[target as usize] = true;
        }
        for e in 0..run.graph.edge_count() {
            let (source, target) = run.graph.edge(e);
            if matches!(
                run.states[source as usize],
                NodeState::Completed | NodeState::Skipped
            ) {
                run.unsettled[target as usize] -= 1;
            }
        }
        run.check_consistent().map_err(bad)?;
        Ok(run)
    }

    fn check_consistent(&self) -> Result<(), String> {
        for v in 0..self.graph.node_count() {
            let state = self.states[v as usize];
            let pending = state == NodeState::Pending;
            if !self.started {
                if !pending {
                    return Err(format!(
                        "node {v} is {} before the run started",
                        state.name()
                    ));
                }
                continue;
            }
            let has_inputs = self.graph.inc.degree(v) > 0;
            let settled = self.unsettled[v as usize] == 0;
            if pending == settled {
                return Err(format!(
                    "node {v} is {} with {} of its incoming edges settled",
                    state.name(),
                    if settled { "all" } else { "not all" }
                ));
            }
            if has_inputs
                && matches!(
                    state,
                    NodeState::Ready | NodeState::Running | NodeState::Completed
                )
                && !self.any_taken[v as usize]
            {
                return Err(format!(
                    "node {v} is {} but no edge into it was taken",
                    state.name()
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(n: i64, edges: &[(i64, i64, &str)]) -> Run {
        Run::new(Arc::new(Graph::from_edges(n, edges).unwrap()))
    }

    fn port(r: &Run, name: &str) -> u32 {
        r.graph().ports.get(name).unwrap()
    }

    #[test]
    fn roots_are_ready_at_start_once() {
        let mut r = run(3, &[(0, 2, "out"), (1, 2, "out")]);
        assert_eq!(r.start().unwrap(), vec![0, 1]);
        assert!(r.start().is_err());
        assert_eq!(r.state(2), NodeState::Pending);
    }

    #[test]
    fn a_node_waits_for_all_inputs_and_needs_one_taken() {
        let mut r = run(3, &[(0, 2, "out"), (1, 2, "out")]);
        r.start().unwrap();
        let out = port(&r, "out");
        assert_eq!(r.complete(0, &[out]).unwrap(), Step::default());
        let step = r.complete(1, &[]).unwrap();
        assert_eq!(step.ready, vec![2]);
        assert!(step.skipped.is_empty());
    }

    #[test]
    fn skips_propagate_but_not_past_a_taken_edge() {
        // 0 -true-> 1 -> 3 ; 0 -false-> 2 -> 3 ; 1 -> 4
        let mut r = run(
            5,
            &[
                (0, 1, "true"),
                (0, 2, "false"),
                (1, 3, "out"),
                (2, 3, "out"),
                (1, 4, "out"),
            ],
        );
        r.start().unwrap();
        let t = port(&r, "false");
        let step = r.complete(0, &[t]).unwrap();
        assert_eq!(step.ready, vec![2]);
        assert_eq!(step.skipped, vec![1, 4]);
        let step = r.complete(2, &[port(&r, "out")]).unwrap();
        assert_eq!(step.ready, vec![3]);
        r.mark_running(3).unwrap();
        assert_eq!(r.complete(3, &[]).unwrap(), Step::default());
        assert!(r.is_finished());
        assert_eq!(r.counts(), [0, 0, 0, 3, 2]);
    }

    #[test]
    fn skip_settles_outputs_as_not_taken() {
        let mut r = run(3, &[(0, 1, "out"), (1, 2, "out")]);
        r.start().unwrap();
        let step = r.skip(0).unwrap();
        assert_eq!(step.skipped, vec![1, 2]);
        assert!(r.skip(0).is_err());
        assert!(r.is_finished());
    }

    #[test]
    fn complete_many_is_all_or_nothing() {
        let mut r = run(4, &[(0, 3, "out"), (1, 3, "out"), (2, 3, "out")]);
        r.start().unwrap();
        r.mark_running(1).unwrap();
        let out = port(&r, "out");
        assert!(r.complete_many(&[0, 1, 0], Some(out)).is_err());
        assert_eq!(r.state(0), NodeState::Ready);
        assert_eq!(r.state(1), NodeState::Running);
        assert_eq!(r.counts(), [1, 2, 1, 0, 0]);
        let step = r.complete_many(&[0, 1, 2], Some(out)).unwrap();
        assert_eq!(step.ready, vec![3]);
    }

    #[test]
    fn snapshot_round_trips_and_is_validated() {
        let mut r = run(4, &[(0, 1, "a"), (0, 2, "b"), (1, 3, "out"), (2, 3, "out")]);
        r.start().unwrap();
        r.complete(0, &[port(&r, "a")]).unwrap();
        let snap = r.snapshot();
        let mut back = Run::restore(Arc::clone(r.graph()), &snap).unwrap();
        assert_eq!(back.snapshot(), snap);
        let out = port(&r, "out");
        assert_eq!(
            r.complete(1, &[out]).unwrap(),
            back.complete(1, &[out]).unwrap()
        );

        let mut wrong = snap.clone();
        wrong.taken_edges = vec![2];
        assert!(Run::restore(Arc::clone(r.graph()), &wrong).is_err());
        let mut wrong = snap;
        wrong.states[3] = NodeState::Ready;
        assert!(Run::restore(Arc::clone(r.graph()), &wrong).is_err());
    }
}
