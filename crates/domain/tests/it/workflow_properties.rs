//! Properties every built-in workflow must keep, whatever order staff and
//! customers press the buttons in: the buttons offered (`next_states`) and the
//! server's verdict (`check`) never disagree, and finished orders stay put.

use ordertrack_domain::StatusKey;
use ordertrack_domain::fulfilment::FulfilmentKind;
use ordertrack_domain::role::Role;
use ordertrack_domain::workflow::Workflow;
use proptest::prelude::*;
use proptest::sample::{Index, select};

/// Longer than any path in a built-in; reaching it would mean a loop.
const MAX_STEPS: usize = 32;

fn builtins() -> Vec<Workflow> {
    Workflow::BUILTIN_NAMES
        .iter()
        .map(|name| Workflow::builtin(name).expect("built-in exists"))
        .collect()
}

fn any_workflow() -> impl Strategy<Value = Workflow> {
    select(builtins())
}

fn any_role() -> impl Strategy<Value = Role> {
    select(Role::ALL.to_vec())
}

fn any_fulfilment() -> impl Strategy<Value = FulfilmentKind> {
    select(vec![FulfilmentKind::Pickup, FulfilmentKind::Delivery])
}

/// Every state key plus a few that look plausible but aren't states, so that
/// the unknown-status paths are exercised too.
fn keys_with_strangers(workflow: &Workflow) -> Vec<String> {
    workflow
        .states()
        .iter()
        .map(|s| s.key.clone())
        .map(|key| key.to_string())
        .chain(["teleported", "", "PENDING", "pending "].map(String::from))
        .collect()
}

/// Keys of the states an order with `fulfilment` can reach from the initial
/// state, pressing any button anyone has.
fn reachable(workflow: &Workflow, fulfilment: FulfilmentKind) -> Vec<StatusKey> {
    let mut seen = vec![workflow.initial().key.clone()];
    let mut i = 0;
    while i < seen.len() {
        for role in Role::ALL {
            for next in workflow.next_states(role, &seen[i], fulfilment) {
                if !seen.contains(&next.key) {
                    seen.push(next.key.clone());
                }
            }
        }
        i += 1;
    }
    seen
}

proptest! {
    #[test]
    fn random_walks_follow_the_rules(
        workflow in any_workflow(),
        fulfilment in any_fulfilment(),
        picks in proptest::collection::vec((any::<Index>(), any::<Index>()), MAX_STEPS),
    ) {
        let mut current = workflow.initial().key.clone();
        let mut path = vec![current.clone()];
        let mut finished = false;
        for (role_pick, target_pick) in picks {
            prop_assert!(workflow.state(&current).is_some(), "path {:?}", path);
            // Picking among roles that can move keeps the walk going; a role
            // with no buttons here would just be a wasted step.
            let movers: Vec<_> = Role::ALL
                .into_iter()
                .map(|role| (role, workflow.next_states(role, &current, fulfilment)))
                .filter(|(_, next)| !next.is_empty())
                .collect();
            if movers.is_empty() {
                prop_assert!(workflow.is_terminal(&current), "stuck in {} via {:?}", current, path);
                finished = true;
                break;
            }
            prop_assert!(!workflow.is_terminal(&current), "terminal {} has exits", current);
            let (role, next) = role_pick.get(&movers);
            let target = target_pick.get(next);
            let checked = workflow.check(*role, &current, &target.key, fulfilment);
            prop_assert_eq!(checked.map(|s| s.key.as_str()), Ok(target.key.as_str()));
            current = target.key.clone();
            path.push(current.clone());
        }
        prop_assert!(finished, "no terminal state within {} steps: {:?}", MAX_STEPS, path);
    }

    #[test]
    fn terminal_states_never_move(
        workflow in any_workflow(),
        role in any_role(),
        fulfilment in any_fulfilment(),
        to in any::<Index>(),
    ) {
        let keys = keys_with_strangers(&workflow);
        let to = to.get(&keys);
        for state in workflow.states().iter().filter(|s| s.terminal) {
            prop_assert!(workflow.check(role, &state.key, to, fulfilment).is_err());
            prop_assert!(workflow.next_states(role, &state.key, fulfilment).is_empty());
            prop_assert!(workflow.expected_minutes_remaining(&state.key, fulfilment).is_none());
        }
    }

    #[test]
    fn check_agrees_with_next_states(
        workflow in any_workflow(),
        role in any_role(),
        fulfilment in any_fulfilment(),
        from in any::<Index>(),
        to in any::<Index>(),
    ) {
        let keys = keys_with_strangers(&workflow);
        let (from, to) = (from.get(&keys), to.get(&keys));
        let checked = workflow.check(role, from, to, fulfilment);
        let offered = workflow
            .next_states(role, from, fulfilment)
            .iter()
            .any(|s| &s.key == to);
        prop_assert_eq!(checked.is_ok(), offered, "{:?}", checked);
        if let Ok(target) = checked {
            prop_assert_eq!(&target.key, to);
        }
        // An admin may always do what an owner may.
        if workflow.check(Role::Owner, from, to, fulfilment).is_ok() {
            prop_assert!(workflow.check(Role::Admin, from, to, fulfilment).is_ok());
        }
    }

    #[test]
    fn eta_is_the_quickest_next_step(
        workflow in any_workflow(),
        fulfilment in any_fulfilment(),
        from in any::<Index>(),
    ) {
        let reachable = reachable(&workflow, fulfilment);
        let state = from.get(&reachable);
        let eta = workflow.expected_minutes_remaining(state, fulfilment);
        if workflow.is_terminal(state) {
            prop_assert!(eta.is_none());
        } else if workflow.is_done(state) {
            prop_assert_eq!(eta, Some(0));
        } else {
            // Built-ins always lead to a done state, so every live order has
            // an ETA, and it is this state's minutes plus the best next one.
            let here = workflow.state(state).unwrap().expected_minutes;
            let best_next = Role::ALL
                .into_iter()
                .flat_map(|role| workflow.next_states(role, state, fulfilment))
                .filter_map(|next| {
                    if workflow.is_done(&next.key) {
                        Some(0)
                    } else {
                        workflow.expected_minutes_remaining(&next.key, fulfilment)
                    }
                })
                .min();
            prop_assert!(eta.is_some(), "{} has no ETA", state);
            prop_assert_eq!(eta, best_next.map(|m| m + here));
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        let _ = Workflow::from_toml(&text);
        let _ = Workflow::from_json(&text);
    }
}
