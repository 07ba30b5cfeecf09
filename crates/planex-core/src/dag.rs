//! DAG helpers over plan steps: structural checks (duplicate ids, unknown dependencies, cycles),
//! dependents, sinks, topological levels and the critical path.
//!
//! This module is the one place where the dependency graph is computed. It takes steps as any
//! iterator of [`Step`]s, so the same code serves a [`crate::Plan`]'s steps and the steps a store
//! keeps (which wrap a `Step` with their tier and stage).
//!
//! Key decision: plans are small (at most `max_subtasks` steps), so the helpers scan the step list
//! instead of keeping an index; results are deterministic (input order, or ascending step id
//! within a level). They never panic or loop on an invalid graph: dependencies that name no step
//! are ignored and steps on (or behind) a cycle are left out of [`levels`] and [`critical_path`].

use crate::plan::format_cycle;
use crate::{Step, StepId};
use std::collections::{BTreeMap, BTreeSet};

/// Why a set of steps is not a runnable DAG.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DagError {
    /// Two steps share an id.
    #[error("step {step_id} appears twice")]
    DuplicateStepId {
        /// The repeated id.
        step_id: StepId,
    },
    /// A dependency names no step.
    #[error("step {step_id} depends on unknown step {missing}")]
    UnknownDependency {
        /// The step with the bad dependency.
        step_id: StepId,
        /// The id it names.
        missing: StepId,
    },
    /// The dependencies form a cycle, so some steps would never become ready.
    #[error("the dependencies contain a cycle: {}", format_cycle(.cycle))]
    Cycle {
        /// The steps on the cycle, in order, first repeated at the end.
        cycle: Vec<StepId>,
    },
}

/// Checks that `steps` form a DAG every step of which can run: unique ids, every dependency names
/// a step, no cycle (checked in that order). An empty list passes.
///
/// # Errors
/// The first problem found, as a [`DagError`].
pub fn check<'a>(steps: impl IntoIterator<Item = &'a Step>) -> Result<(), DagError> {
    let steps: Vec<&Step> = steps.into_iter().collect();
    if let Some(step_id) = duplicate_id(steps.iter().copied()) {
        return Err(DagError::DuplicateStepId { step_id });
    }
    let known: BTreeSet<StepId> = steps.iter().map(|s| s.step_id).collect();
    for step in &steps {
        if let Some(missing) = missing_dependency(step, &known) {
            return Err(DagError::UnknownDependency {
                step_id: step.step_id,
                missing,
            });
        }
    }
    match find_cycle(steps) {
        Some(cycle) => Err(DagError::Cycle { cycle }),
        None => Ok(()),
    }
}

/// The first id (in input order) used by a second step.
pub fn duplicate_id<'a>(steps: impl IntoIterator<Item = &'a Step>) -> Option<StepId> {
    let mut seen = BTreeSet::new();
    steps
        .into_iter()
        .map(|s| s.step_id)
        .find(|&id| !seen.insert(id))
}

/// The first dependency of `step` that is not in `known`.
pub fn missing_dependency(step: &Step, known: &BTreeSet<StepId>) -> Option<StepId> {
    step.depends_on.iter().find(|d| !known.contains(d)).copied()
}

/// One dependency cycle, following `depends_on` edges, first step repeated at the end (a step
/// that depends on itself gives `[id, id]`). Dependencies that name no step are ignored.
pub fn find_cycle<'a>(steps: impl IntoIterator<Item = &'a Step>) -> Option<Vec<StepId>> {
    const WHITE: u8 = 0;
    const GREY: u8 = 1;
    const BLACK: u8 = 2;
    let steps: Vec<&Step> = steps.into_iter().collect();
    let deps: BTreeMap<StepId, &[StepId]> = steps
        .iter()
        .map(|s| (s.step_id, s.depends_on.as_slice()))
        .collect();
    let mut colour: BTreeMap<StepId, u8> = deps.keys().map(|&id| (id, WHITE)).collect();
    for root in steps.iter().map(|s| s.step_id) {
        if colour.get(&root) != Some(&WHITE) {
            continue;
        }
        colour.insert(root, GREY);
        let mut stack: Vec<(StepId, usize)> = vec![(root, 0)];
        while let Some((node, next)) = stack.last_mut() {
            let node = *node;
            let Some(&dep) = deps.get(&node).and_then(|d| d.get(*next)) else {
                colour.insert(node, BLACK);
                stack.pop();
                continue;
            };
            *next += 1;
            match colour.get(&dep) {
                Some(&GREY) => {
                    let start = stack.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                    let mut cycle: Vec<StepId> = stack
                        .get(start..)
                        .unwrap_or_default()
                        .iter()
                        .map(|(n, _)| *n)
                        .collect();
                    cycle.push(dep);
                    return Some(cycle);
                }
                Some(&WHITE) => {
                    colour.insert(dep, GREY);
                    stack.push((dep, 0));
                }
                _ => {}
            }
        }
    }
    None
}

/// For each id some step depends on: the steps that depend on it, in input order. Steps nothing
/// depends on have no entry.
pub fn dependents<'a>(steps: impl IntoIterator<Item = &'a Step>) -> BTreeMap<StepId, Vec<StepId>> {
    let mut out: BTreeMap<StepId, Vec<StepId>> = BTreeMap::new();
    for step in steps {
        for dep in &step.depends_on {
            out.entry(*dep).or_default().push(step.step_id);
        }
    }
    out
}

/// Steps nothing depends on (their results are the outputs), in input order.
pub fn sinks<'a>(steps: impl IntoIterator<Item = &'a Step>) -> Vec<StepId> {
    let steps: Vec<&Step> = steps.into_iter().collect();
    let needed: BTreeSet<StepId> = steps
        .iter()
        .flat_map(|s| s.depends_on.iter().copied())
        .collect();
    steps
        .iter()
        .map(|s| s.step_id)
        .filter(|id| !needed.contains(id))
        .collect()
}

/// Topological levels: level 0 holds the steps without dependencies; every other step sits one
/// level above its deepest dependency, so the steps of one level can run in parallel. Ids within a
/// level are ascending.
pub fn levels<'a>(steps: impl IntoIterator<Item = &'a Step>) -> Vec<Vec<StepId>> {
    let mut out: Vec<Vec<StepId>> = Vec::new();
    for (id, level) in level_map(&steps.into_iter().collect::<Vec<_>>()) {
        if out.len() <= level {
            out.resize_with(level + 1, Vec::new);
        }
        if let Some(bucket) = out.get_mut(level) {
            bucket.push(id);
        }
    }
    out
}

/// The heaviest dependency chain under `weight` (e.g. expected seconds per step) and its total:
/// the lower bound on the steps' wall time with unlimited parallelism. Ties keep the chain found
/// first in topological order (level by level, ascending ids). No steps give `(vec![], 0.0)`.
pub fn critical_path<'a>(
    steps: impl IntoIterator<Item = &'a Step>,
    weight: impl Fn(&Step) -> f64,
) -> (Vec<StepId>, f64) {
    let steps: Vec<&Step> = steps.into_iter().collect();
    let by_id: BTreeMap<StepId, &Step> = steps.iter().map(|s| (s.step_id, *s)).collect();
    // step → (heaviest chain weight ending at it, previous step on that chain)
    let mut best: BTreeMap<StepId, (f64, Option<StepId>)> = BTreeMap::new();
    let mut end: Option<(StepId, f64)> = None;
    for id in topological_order(&steps) {
        let Some(step) = by_id.get(&id) else { continue };
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

/// Every step not on (or behind) a cycle, in a dependency-respecting order: level by level,
/// ascending ids within a level.
fn topological_order(steps: &[&Step]) -> Vec<StepId> {
    levels(steps.iter().copied())
        .into_iter()
        .flatten()
        .collect()
}

/// Level of every step that is not on (or behind) a cycle.
fn level_map(steps: &[&Step]) -> BTreeMap<StepId, usize> {
    let known: BTreeSet<StepId> = steps.iter().map(|s| s.step_id).collect();
    let mut level: BTreeMap<StepId, usize> = BTreeMap::new();
    loop {
        let mut progressed = false;
        for step in steps {
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

#[cfg(test)]
#[path = "dag_tests.rs"]
mod tests;
