//! The workflow loader: any text, as TOML and as JSON. What loads is valid
//! by construction, so every question the engine answers about it must
//! answer without a panic, and it must write back to the JSON it came from.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ordertrack_domain::{FulfilmentKind, Role, Workflow};

/// Larger machines are asked fewer questions (the pairs grow quadratically).
const PAIRS_UP_TO: usize = 24;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for workflow in [Workflow::from_toml(text), Workflow::from_json(text)]
        .into_iter()
        .flatten()
    {
        ask_everything(&workflow);
        let json = serde_json::to_string(&workflow).expect("a workflow serialises");
        match Workflow::from_json(&json) {
            Ok(back) => assert_eq!(back, workflow, "the JSON it writes loads back as itself"),
            Err(error) => panic!("the JSON it writes does not load: {error}\n{json}"),
        }
    }
});

fn ask_everything(workflow: &Workflow) {
    let _ = (
        workflow.initial(),
        workflow.kitchen_states(),
        workflow.hand_off_state(),
    );
    let mut keys: Vec<&str> = workflow.states().iter().map(|s| s.key.as_str()).collect();
    keys.push("no-such-state");
    let pairs = keys.len() <= PAIRS_UP_TO;
    for fulfilment in [FulfilmentKind::Pickup, FulfilmentKind::Delivery] {
        let _ = workflow.expected_minutes_to_hand_off(fulfilment);
        for from in &keys {
            let _ = (
                workflow.is_terminal(from),
                workflow.is_done(from),
                workflow.is_cancelled(from),
                workflow.on_items_ready(from),
                workflow.expected_minutes_remaining(from, fulfilment),
            );
            for role in Role::ALL {
                let _ = workflow.next_states(role, from, fulfilment);
                if !pairs {
                    continue;
                }
                for to in &keys {
                    let _ = workflow.check(role, from, to, fulfilment);
                    let _ = workflow.path(role, from, to, fulfilment);
                    let _ = workflow.has_transition(from, to, fulfilment);
                }
            }
        }
    }
}
