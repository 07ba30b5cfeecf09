#![allow(clippy::unwrap_used)]
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
fn ten_steps() -> Vec<Step> {
    vec![
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
    ]
}

#[test]
fn levels_of_a_three_level_plan() {
    let steps = ten_steps();
    assert_eq!(
        levels(&steps),
        vec![ids(&[1, 2, 3, 4, 5]), ids(&[6, 7, 8]), ids(&[9, 10])]
    );
    let refs: Vec<&Step> = steps.iter().collect();
    assert_eq!(
        topological_order(&refs),
        ids(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    );
}

#[test]
fn levels_take_any_iterator_of_steps() {
    // A store keeps steps inside its own records, keyed by id.
    let by_id: BTreeMap<StepId, Step> = ten_steps().into_iter().map(|s| (s.step_id, s)).collect();
    assert_eq!(levels(by_id.values()), levels(&ten_steps()));
    assert!(levels(&[]).is_empty());
}

#[test]
fn critical_path_is_the_heaviest_chain() {
    let steps = ten_steps();
    // Step 3 is slow, so 3 -> 7 -> 10 (5 + 1 + 1) beats any other chain (at most 3).
    let (path, total) = critical_path(&steps, |s| if s.step_id == StepId(3) { 5.0 } else { 1.0 });
    assert_eq!(path, ids(&[3, 7, 10]));
    assert!((total - 7.0).abs() < 1e-9);
    // Unit weights: the longest chain has three steps; ties keep the first found.
    let (path, total) = critical_path(&steps, |_| 1.0);
    assert_eq!(path, ids(&[1, 6, 9]));
    assert!((total - 3.0).abs() < 1e-9);
    assert_eq!(critical_path(&[], |_| 1.0), (vec![], 0.0));
}

#[test]
fn sinks_and_dependents() {
    let steps = ten_steps();
    assert_eq!(sinks(&steps), ids(&[10, 9]));
    let dependents = dependents(&steps);
    assert_eq!(dependents.get(&StepId(6)), Some(&ids(&[10, 9])));
    assert_eq!(dependents.get(&StepId(1)), Some(&ids(&[6])));
    assert_eq!(dependents.get(&StepId(9)), None);
    assert_eq!(
        dependents.len(),
        8,
        "every step but the two sinks has dependents"
    );
}

#[test]
fn invalid_hand_built_plans_do_not_hang() {
    let steps = vec![step(1, &[2]), step(2, &[1]), step(3, &[99])];
    assert_eq!(levels(&steps), vec![ids(&[3])]);
    assert_eq!(critical_path(&steps, |_| 1.0), (ids(&[3]), 1.0));
}

#[test]
fn check_accepts_a_dag_and_an_empty_list() {
    assert_eq!(check(&ten_steps()), Ok(()));
    assert_eq!(check(&[]), Ok(()));
}

#[test]
fn check_reports_duplicates_then_unknown_dependencies_then_cycles() {
    let duplicate_and_dangling = vec![step(1, &[9]), step(2, &[]), step(1, &[])];
    assert_eq!(
        check(&duplicate_and_dangling),
        Err(DagError::DuplicateStepId { step_id: StepId(1) })
    );
    let dangling_and_cyclic = vec![step(1, &[2]), step(2, &[1]), step(3, &[9])];
    let err = check(&dangling_and_cyclic).unwrap_err();
    assert_eq!(
        err,
        DagError::UnknownDependency {
            step_id: StepId(3),
            missing: StepId(9)
        }
    );
    assert_eq!(err.to_string(), "step 3 depends on unknown step 9");
    let cyclic = vec![step(1, &[]), step(2, &[1, 4]), step(3, &[2]), step(4, &[3])];
    let err = check(&cyclic).unwrap_err();
    assert_eq!(
        err,
        DagError::Cycle {
            cycle: ids(&[2, 4, 3, 2])
        }
    );
    assert_eq!(
        err.to_string(),
        "the dependencies contain a cycle: step 2 -> step 4 -> step 3 -> step 2"
    );
}

#[test]
fn find_cycle_sees_self_dependencies_and_ignores_unknown_ids() {
    assert_eq!(find_cycle(&[step(1, &[1])]), Some(ids(&[1, 1])));
    assert_eq!(find_cycle(&[step(1, &[7]), step(2, &[1])]), None);
    assert_eq!(find_cycle(&ten_steps()), None);
}

#[test]
fn duplicate_and_missing_ids() {
    assert_eq!(duplicate_id(&ten_steps()), None);
    assert_eq!(
        duplicate_id(&[step(2, &[]), step(3, &[]), step(2, &[]), step(3, &[])]),
        Some(StepId(2))
    );
    let known: BTreeSet<StepId> = ids(&[1, 2]).into_iter().collect();
    assert_eq!(missing_dependency(&step(3, &[1, 2]), &known), None);
    assert_eq!(
        missing_dependency(&step(3, &[1, 5, 6]), &known),
        Some(StepId(5))
    );
}
