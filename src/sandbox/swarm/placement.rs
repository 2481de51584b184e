//! Where a sandbox may start, and where a new learner's goes.
//!
//! A node's capacity (`pglab.capacity` node label, else
//! `--swarm-node-capacity`) is how many of this pglab's sandboxes it runs at
//! once: a start needs a running place on its node ([`NodeLoad::has_room`]).
//! A new learner goes to the ready, active node with a running place and the
//! most free places (capacity minus the sandboxes placed on it, stopped ones
//! included, since their volumes stay there: so volumes spread by capacity
//! too). Ties go to the node listed first, so placement is deterministic.
//! When no node has a running place the start waits in the admission queue
//! (`crate::sandbox::admission`).

/// One node as placement sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeLoad {
    pub id: String,
    /// Ready and active (not drained or paused).
    pub usable: bool,
    pub capacity: usize,
    /// Sandboxes of this pglab placed on it (running or stopped).
    pub placed: usize,
    /// Sandboxes of this pglab meant to run on it (one replica asked).
    pub running: usize,
}

impl NodeLoad {
    /// Capacity minus placed; negative when more volumes live here than it
    /// runs at once.
    pub fn free(&self) -> i64 {
        self.capacity as i64 - self.placed as i64
    }

    /// Whether one more sandbox may run here now.
    pub fn has_room(&self) -> bool {
        self.usable && self.running < self.capacity
    }
}

/// The node for a new sandbox, or `None` when no usable node has a running
/// place.
pub fn choose(nodes: &[NodeLoad]) -> Option<&NodeLoad> {
    let mut best: Option<&NodeLoad> = None;
    for n in nodes.iter().filter(|n| n.has_room()) {
        if best.is_none_or(|b| n.free() > b.free()) {
            best = Some(n);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, usable: bool, capacity: usize, placed: usize) -> NodeLoad {
        NodeLoad {
            id: id.into(),
            usable,
            capacity,
            placed,
            running: placed,
        }
    }

    #[test]
    fn the_node_with_most_free_places_wins_and_full_or_down_nodes_never() {
        let nodes = [
            node("a", true, 3, 2),
            node("b", true, 5, 1),
            node("c", false, 9, 0),
        ];
        assert_eq!(choose(&nodes).unwrap().id, "b");
        let nodes = [node("a", true, 3, 1), node("b", true, 3, 1)];
        assert_eq!(choose(&nodes).unwrap().id, "a", "ties go to the first");
        let full = [node("a", true, 2, 2), node("b", false, 3, 0)];
        assert_eq!(choose(&full), None);
        assert_eq!(choose(&[]), None);
    }

    #[test]
    fn spreading_by_capacity_fills_every_node() {
        let mut nodes = vec![
            node("a", true, 3, 0),
            node("b", true, 3, 0),
            node("c", true, 3, 0),
        ];
        for _ in 0..9 {
            let id = choose(&nodes).unwrap().id.clone();
            let n = nodes.iter_mut().find(|n| n.id == id).unwrap();
            n.placed += 1;
            n.running += 1;
        }
        assert!(nodes.iter().all(|n| n.placed == 3));
        assert_eq!(choose(&nodes), None);
    }

    #[test]
    fn a_stopped_sandbox_frees_a_running_place_but_keeps_its_volume_counted() {
        // a: 1 placed, stopped; b: 1 placed, running; capacity 1 each.
        let mut a = node("a", true, 1, 1);
        a.running = 0;
        let b = node("b", true, 1, 1);
        assert!(a.has_room() && !b.has_room());
        assert_eq!(choose(&[b.clone(), a.clone()]).unwrap().id, "a");
        // With room on both, the fewer volumes win.
        let mut c = node("c", true, 2, 0);
        c.running = 0;
        a.capacity = 2;
        assert_eq!(choose(&[a, c]).unwrap().id, "c");
    }
}
