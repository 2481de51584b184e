//! Where a new learner's sandbox goes: the ready, active node with the most
//! free places (its capacity minus the sandboxes already placed on it,
//! stopped ones included, since their volumes stay there). Ties go to the
//! node listed first, so placement is deterministic.

/// One node as placement sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeLoad {
    pub id: String,
    /// Ready and active (not drained or paused).
    pub usable: bool,
    pub capacity: usize,
    /// Sandboxes of this pglab placed on it.
    pub placed: usize,
}

impl NodeLoad {
    pub fn free(&self) -> usize {
        self.capacity.saturating_sub(self.placed)
    }
}

/// The node for a new sandbox, or `None` when every usable node is full.
pub fn choose(nodes: &[NodeLoad]) -> Option<&NodeLoad> {
    let mut best: Option<&NodeLoad> = None;
    for n in nodes.iter().filter(|n| n.usable && n.free() > 0) {
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
            nodes.iter_mut().find(|n| n.id == id).unwrap().placed += 1;
        }
        assert!(nodes.iter().all(|n| n.placed == 3));
        assert_eq!(choose(&nodes), None);
    }
}
