//! DAG helpers on a validated [`Plan`]: lookups, readiness, topological levels and the critical path.
//!
//! Key decision: plans are small (at most `max_subtasks` steps), so the helpers scan the step list
//! instead of keeping an index in `Plan`; results are deterministic (plan order, or ascending step id
//! within a level). They never panic or loop on a hand-built invalid plan: dependencies that name no
//! step are ignored and steps on a cycle are left out of `levels` and `critical_path`.

use crate::{Plan, Step, StepId};
use std::collections::{BTreeMap, BTreeSet};

impl Plan {
    /// The step with this id.
    pub fn step(&self, id: StepId) -> Option<&Step> {
        self.steps.iter().find(|s| s.step_id == id)
    }

    /// Steps that list `id` in their `depends_on`, in plan order.
    pub fn dependents(&self, id: StepId) -> Vec<StepId> {
        self.steps
            .iter()
            .filter(|s| s.depends_on.contains(&id))
            .map(|s| s.step_id)
            .collect()
    }

    /// Steps nothing depends on (their results are the plan's outputs), in plan order.
    pub fn sinks(&self) -> Vec<StepId> {
        let needed: BTreeSet<StepId> = self
            .steps
            .iter()
            .flat_map(|s| s.depends_on.iter().copied())
            .collect();
        self.steps
            .iter()
            .map(|s| s.step_id)
            .filter(|id| !needed.contains(id))
            .collect()
    }

    /// Steps not in `done` whose dependencies are all in `done`, in plan order.
    pub fn ready(&self, done: &BTreeSet<StepId>) -> Vec<StepId> {
        self.steps
            .iter()
            .filter(|s| !done.contains(&s.step_id) && s.depends_on.iter().all(|d| done.contains(d)))
            .map(|s| s.step_id)
            .collect()
    }

    /// Topological levels: level 0 holds the steps without dependencies; every other step sits one
    /// level above its deepest dependency. Ids within a level are ascending.
    pub fn levels(&self) -> Vec<Vec<StepId>> {
        let mut out: Vec<Vec<StepId>> = Vec::new();
        for (id, level) in self.level_map() {
            if out.len() <= level {
                out.resize_with(level + 1, Vec::new);
            }
            if let Some(bucket) = out.get_mut(level) {
                bucket.push(id);
            }
        }
        out
    }

    /// Every step in a dependency-respecting order (level by level, ascending ids within a level).
    pub fn topological_order(&self) -> Vec<StepId> {
        self.levels().into_iter().flatten().collect()
    }

    /// The heaviest dependency chain under `weight` (e.g. expected seconds per step) and its total:
    /// the lower bound on the plan's wall time with unlimited parallelism. Ties keep the chain found
    /// first in topological order. An empty plan gives `(vec![], 0.0)`.
    pub fn critical_path(&self, weight: impl Fn(&Step) -> f64) -> (Vec<StepId>, f64) {
        // step → (heaviest chain weight ending at it, previous step on that chain)
        let mut best: BTreeMap<StepId, (f64, Option<StepId>)> = BTreeMap::new();
        let mut end: Option<(StepId, f64)> = None;
        for id in self.topological_order() {
            let Some(step) = self.step(id) else { continue };
            let mut from: Option<(StepId, f64)> = None;
            for dep in &step.depends_on {
                let Some(&(w, _)) = best.get(dep) else {
                    continue;
                };
                if from.is_none_or(|(_, fw)| w > fw) {
                    from = Some((*dep, w));
                }
            }
            let total = weight(step) + from.map_or(0.0, |(_, w)| w);
            best.insert(id, (total, from.map(|(d, _)| d)));
            if end.is_none_or(|(_, ew)| total > ew) {
                end = Some((id, total));
            }
        }
        let Some((last, total)) = end else {
            return (Vec::new(), 0.0);
        };
        let mut path = vec![last];
        let mut cursor = last;
        while let Some(&(_, Some(prev))) = best.get(&cursor) {
            path.push(prev);
            cursor = prev;
        }
        path.reverse();
        (path, total)
    }

    /// Level of every step that is not on (or behind) a cycle.
    fn level_map(&self) -> BTreeMap<StepId, usize> {
        let known: BTreeSet<StepId> = self.steps.iter().map(|s| s.step_id).collect();
        let mut level: BTreeMap<StepId, usize> = BTreeMap::new();
        loop {
            let mut progressed = false;
            for step in &self.steps {
                if level.contains_key(&step.step_id) {
                    continue;
                }
                let mut deepest: Option<usize> = None;
                let mut resolved = true;
                for dep in step.depends_on.iter().filter(|d| known.contains(d)) {
                    match level.get(dep) {
                        Some(&l) => deepest = Some(deepest.map_or(l, |m| m.max(l))),
                        None => resolved = false,
                    }
                }
                if resolved {
                    level.insert(step.step_id, deepest.map_or(0, |l| l + 1));
                    progressed = true;
                }
            }
            if !progressed {
                return level;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn step(id: u32, deps: &[u32]) -> Step {
        Step {
            step_id: StepId(id),
            tool_name: "t".into(),
            args: Map::new(),
            depends_on: deps.iter().map(|&d| StepId(d)).collect(),
        }
    }

    fn ids(v: &[u32]) -> Vec<StepId> {
        v.iter().map(|&i| StepId(i)).collect()
    }

    /// Five searches, three summaries over them, two final reports: 10 steps on 3 levels.
    fn ten_steps() -> Plan {
        Plan {
            task: "t".into(),
            steps: vec![
                step(10, &[6, 7, 8]),
                step(1, &[]),
                step(2, &[]),
                step(3, &[]),
                step(4, &[]),
                step(5, &[]),
                step(6, &[1, 2]),
                step(7, &[3]),
                step(8, &[4, 5]),
                step(9, &[6]),
            ],
        }
    }

    #[test]
    fn levels_of_a_three_level_plan() {
        let plan = ten_steps();
        assert_eq!(
            plan.levels(),
            vec![ids(&[1, 2, 3, 4, 5]), ids(&[6, 7, 8]), ids(&[9, 10])]
        );
        assert_eq!(
            plan.topological_order(),
            ids(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
        );
    }

    #[test]
    fn critical_path_is_the_heaviest_chain() {
        let plan = ten_steps();
        // Step 3 is slow, so 3 -> 7 -> 10 (5 + 1 + 1) beats any other chain (at most 3).
        let (path, total) = plan.critical_path(|s| if s.step_id == StepId(3) { 5.0 } else { 1.0 });
        assert_eq!(path, ids(&[3, 7, 10]));
        assert!((total - 7.0).abs() < 1e-9);
        // Unit weights: the longest chain has three steps; ties keep the first found.
        let (path, total) = plan.critical_path(|_| 1.0);
        assert_eq!(path, ids(&[1, 6, 9]));
        assert!((total - 3.0).abs() < 1e-9);
        let empty = Plan {
            task: String::new(),
            steps: vec![],
        };
        assert_eq!(empty.critical_path(|_| 1.0), (vec![], 0.0));
    }

    #[test]
    fn ready_sinks_and_dependents() {
        let plan = ten_steps();
        assert_eq!(plan.ready(&BTreeSet::new()), ids(&[1, 2, 3, 4, 5]));
        let done: BTreeSet<StepId> = ids(&[1, 2, 3, 4]).into_iter().collect();
        assert_eq!(plan.ready(&done), ids(&[5, 6, 7]));
        let done: BTreeSet<StepId> = ids(&[1, 2, 3, 4, 5, 6, 7, 8]).into_iter().collect();
        assert_eq!(plan.ready(&done), ids(&[10, 9]));
        assert_eq!(plan.sinks(), ids(&[10, 9]));
        assert_eq!(plan.dependents(StepId(6)), ids(&[10, 9]));
        assert_eq!(plan.dependents(StepId(9)), ids(&[]));
        assert_eq!(
            plan.step(StepId(7)).map(|s| s.depends_on.clone()),
            Some(ids(&[3]))
        );
        assert!(plan.step(StepId(11)).is_none());
    }

    #[test]
    fn invalid_hand_built_plans_do_not_hang() {
        let plan = Plan {
            task: String::new(),
            steps: vec![step(1, &[2]), step(2, &[1]), step(3, &[99])],
        };
        assert_eq!(plan.levels(), vec![ids(&[3])]);
        assert_eq!(plan.critical_path(|_| 1.0), (ids(&[3]), 1.0));
    }
}
