//! Workflows are data: an order's state machine, loaded from TOML or JSON and
//! validated on load, so a store's process can change without a code change.
//!
//! A [`Workflow`] says which states an order can be in, who may move it
//! between them (per role and per fulfilment), which states count as done or
//! cancelled, and how long each state usually takes (for the ETA until a store
//! has its own data).

use std::collections::{HashSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::fulfilment::FulfilmentKind;
use crate::names::{StatusKey, WorkflowName};
use crate::role::Role;

/// Every fulfilment kind; validation walks the machine once per kind because
/// transitions may be restricted to one of them.
const FULFILMENTS: [FulfilmentKind; 2] = [FulfilmentKind::Pickup, FulfilmentKind::Delivery];

/// One state an order can be in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// Stable key stored on orders and used in APIs (`"ready"`).
    pub key: StatusKey,
    /// Human name shown to staff and customers (`"Ready"`).
    pub label: String,
    /// Short icon, usually one emoji.
    #[serde(default)]
    pub icon: String,
    /// How far along the order is, 0–100, for the customer's progress bar.
    pub progress: u8,
    /// What the tracking page tells the customer while the order is here.
    #[serde(default)]
    pub customer_message: String,
    /// How long an order usually stays here; the ETA falls back to this until
    /// the store has data of its own.
    #[serde(default)]
    pub expected_minutes: u32,
    /// New orders start here; exactly one state has it.
    #[serde(default)]
    pub initial: bool,
    /// Orders never leave this state.
    #[serde(default)]
    pub terminal: bool,
    /// An order may only enter this state once every item is ready.
    #[serde(default)]
    pub requires_items_ready: bool,
    /// An order may only enter this state once it is paid (e.g.
    /// `completed`, so nothing leaves the counter unpaid).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub requires_paid: bool,
    /// When the last item becomes ready while the order is here, it moves on
    /// to this state by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_items_ready: Option<StatusKey>,
}

/// Who may move an order from one state to another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionRule {
    /// Key of the state the order is in.
    pub from: StatusKey,
    /// Key of the state the order moves to.
    pub to: StatusKey,
    /// Roles that may make this move; an admin may do whatever an owner may.
    pub roles: Vec<Role>,
    /// When set, the rule only applies to orders with this fulfilment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fulfilment: Option<FulfilmentKind>,
}

impl TransitionRule {
    /// Whether this rule applies to orders with `fulfilment`.
    pub fn applies_to(&self, fulfilment: FulfilmentKind) -> bool {
        self.fulfilment.is_none_or(|only| only == fulfilment)
    }

    /// Whether `role` may use this rule. Admins act as owners so that platform
    /// staff can fix any store's orders without being listed in every file.
    pub fn allows(&self, role: Role) -> bool {
        self.roles.contains(&role) || (role == Role::Admin && self.roles.contains(&Role::Owner))
    }
}

/// Why a status change was refused; checked in the order of the variants.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionDenied {
    /// The status is not a state of this workflow.
    #[error("unknown status `{status}`")]
    UnknownStatus { status: StatusKey },
    /// The order is in a terminal state and can't change any more.
    #[error("the order is already `{from}`, which is final")]
    FromTerminal { from: StatusKey },
    /// The move exists (or the role has no say over the target at all) but
    /// this role may not make it.
    #[error("a {role} may not move an order from `{from}` to `{to}`")]
    RoleNotAllowed {
        role: Role,
        from: StatusKey,
        to: StatusKey,
    },
    /// The role could move orders to `to`, just not from `from` (or not with
    /// this order's fulfilment).
    #[error("an order can't move from `{from}` to `{to}`")]
    NotAllowedFromHere { from: StatusKey, to: StatusKey },
}

/// Why a workflow file was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkflowError {
    /// The text is not valid TOML/JSON or doesn't have the workflow's shape.
    #[error("invalid workflow file: {0}")]
    Parse(String),
    /// `name` is empty.
    #[error("the workflow has no name")]
    EmptyName,
    /// A state has an empty `key`.
    #[error("a state has an empty key")]
    EmptyStateKey,
    /// Two states share a key.
    #[error("state `{key}` is defined more than once")]
    DuplicateState { key: StatusKey },
    /// No state has `initial = true`.
    #[error("no state is marked `initial = true`")]
    NoInitialState,
    /// More than one state has `initial = true`.
    #[error("more than one initial state: `{first}` and `{second}`")]
    MultipleInitialStates { first: StatusKey, second: StatusKey },
    /// `progress` is above 100.
    #[error("state `{state}` has progress {progress}, but progress is a percentage (0–100)")]
    ProgressOutOfRange { state: StatusKey, progress: u8 },
    /// `cancelled` or `done` names a state that doesn't exist.
    #[error("`{list}` lists unknown state `{state}`")]
    UnknownListedState {
        list: &'static str,
        state: StatusKey,
    },
    /// A state is listed as both cancelled and done.
    #[error("state `{state}` is listed as both cancelled and done")]
    CancelledAndDone { state: StatusKey },
    /// A transition names a state that doesn't exist.
    #[error("transition `{from}` → `{to}` refers to unknown state `{state}`")]
    UnknownTransitionState {
        from: StatusKey,
        to: StatusKey,
        state: StatusKey,
    },
    /// A transition goes from a state to itself.
    #[error("transition `{state}` → `{state}` goes nowhere")]
    SelfTransition { state: StatusKey },
    /// A transition lists no roles, so nobody could ever use it.
    #[error("transition `{from}` → `{to}` lists no roles")]
    EmptyRoles { from: StatusKey, to: StatusKey },
    /// A transition names a role that doesn't exist.
    #[error(
        "transition `{from}` → `{to}` names unknown role `{role}` (known roles: admin, owner, manager, cashier, kitchen, driver, customer)"
    )]
    UnknownRole {
        role: String,
        from: StatusKey,
        to: StatusKey,
    },
    /// A transition's `fulfilment` is neither `pickup` nor `delivery`.
    #[error(
        "transition `{from}` → `{to}` has unknown fulfilment `{value}` (expected `pickup` or `delivery`)"
    )]
    UnknownFulfilment {
        value: String,
        from: StatusKey,
        to: StatusKey,
    },
    /// A terminal state has an outgoing transition.
    #[error("state `{state}` is terminal but has a transition to `{to}`")]
    TerminalHasExit { state: StatusKey, to: StatusKey },
    /// A non-terminal state has no outgoing transition.
    #[error("state `{state}` is not terminal but has no transition out of it")]
    NoWayOut { state: StatusKey },
    /// For one fulfilment, a reachable non-terminal state has no applicable
    /// outgoing transition, so such orders would get stuck there.
    #[error("{fulfilment} orders can reach state `{state}` but have no transition out of it")]
    DeadEnd {
        state: StatusKey,
        fulfilment: &'static str,
    },
    /// For one fulfilment, orders can reach a state from which no terminal
    /// state can be reached (they would loop forever).
    #[error("{fulfilment} orders that reach state `{state}` can never reach a terminal state")]
    NeverFinishes {
        state: StatusKey,
        fulfilment: &'static str,
    },
    /// A state can't be reached from the initial state.
    #[error("state `{state}` can't be reached from the initial state")]
    Unreachable { state: StatusKey },
    /// `on_items_ready` names a state that doesn't exist.
    #[error("state `{state}` has on_items_ready = `{target}`, which is not a state")]
    UnknownItemsReadyTarget { state: StatusKey, target: StatusKey },
    /// `on_items_ready` names a state that orders can't move to from here
    /// (for every fulfilment), so the automatic move would break the rules.
    #[error(
        "state `{state}` has on_items_ready = `{target}`, but there is no transition `{state}` → `{target}` for every fulfilment"
    )]
    ItemsReadyWithoutTransition { state: StatusKey, target: StatusKey },
    /// `requires_paid` on the initial state: every order starts unpaid there.
    #[error("state `{state}` is initial, so it cannot require payment: orders start unpaid")]
    PaidInitialState { state: StatusKey },
    /// `requires_paid` on a cancelled state: an unpaid order could never
    /// be cancelled.
    #[error("state `{state}` is a cancelled state, so it cannot require payment")]
    PaidCancelledState { state: StatusKey },
}

/// A validated order state machine. Build one with [`Workflow::from_toml`],
/// [`Workflow::from_json`] or [`Workflow::builtin`]; deserializing also
/// validates, and serializing gives back the file format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "WorkflowFile")]
#[schema(
    description = "A workflow: its states, its done and cancelled states, and who may move orders between states (the file format, as JSON)."
)]
pub struct Workflow {
    name: WorkflowName,
    label: String,
    cancelled: Vec<StatusKey>,
    done: Vec<StatusKey>,
    states: Vec<State>,
    transitions: Vec<TransitionRule>,
}

/// The file as written, before validation. Roles and fulfilments stay text
/// here so that a typo gets a clear message instead of serde's variant list.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkflowFile {
    name: WorkflowName,
    label: String,
    #[serde(default)]
    cancelled: Vec<StatusKey>,
    #[serde(default)]
    done: Vec<StatusKey>,
    states: Vec<State>,
    #[serde(default)]
    transitions: Vec<FileTransition>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTransition {
    from: StatusKey,
    to: StatusKey,
    roles: Vec<String>,
    #[serde(default)]
    fulfilment: Option<String>,
}

impl TryFrom<WorkflowFile> for Workflow {
    type Error = WorkflowError;

    fn try_from(file: WorkflowFile) -> Result<Self, Self::Error> {
        validate(file)
    }
}

impl Workflow {
    /// Names accepted by [`Workflow::builtin`].
    pub const BUILTIN_NAMES: [&'static str; 3] = ["restaurant", "kitchen", "retail"];

    /// Loads and validates a workflow written in TOML.
    pub fn from_toml(text: &str) -> Result<Workflow, WorkflowError> {
        let file: WorkflowFile =
            toml::from_str(text).map_err(|e| WorkflowError::Parse(e.to_string()))?;
        validate(file)
    }

    /// Loads and validates a workflow written in JSON (same structure as TOML).
    pub fn from_json(text: &str) -> Result<Workflow, WorkflowError> {
        let file: WorkflowFile =
            serde_json::from_str(text).map_err(|e| WorkflowError::Parse(e.to_string()))?;
        validate(file)
    }

    /// Loads a workflow written in JSON, or lists every problem it has,
    /// each with where it is (what an editor shows next to each field).
    pub fn check_json(text: &str) -> Result<Workflow, Vec<WorkflowProblem>> {
        let file: WorkflowFile = serde_json::from_str(text).map_err(|e| {
            vec![WorkflowProblem {
                path: String::new(),
                error: WorkflowError::Parse(e.to_string()),
            }]
        })?;
        validate_all(file)
    }

    /// One of the workflows shipped with the program (see
    /// [`Workflow::BUILTIN_NAMES`]), or `None` for any other name.
    pub fn builtin(name: &str) -> Option<Workflow> {
        let text = match name {
            "restaurant" => include_str!("../workflows/restaurant.toml"),
            "kitchen" => include_str!("../workflows/kitchen.toml"),
            "retail" => include_str!("../workflows/retail.toml"),
            _ => return None,
        };
        // The files are part of the program and covered by tests, so a
        // failure here is a bug to surface, not a condition to handle.
        Some(Workflow::from_toml(text).expect("built-in workflow is valid"))
    }

    /// Stable name (`"restaurant"`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Human name (`"Restaurant"`).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// All states, in file order.
    pub fn states(&self) -> &[State] {
        &self.states
    }

    /// All transition rules, in file order.
    pub fn transitions(&self) -> &[TransitionRule] {
        &self.transitions
    }

    /// The state new orders start in.
    pub fn initial(&self) -> &State {
        self.states
            .iter()
            .find(|s| s.initial)
            .expect("validation guarantees exactly one initial state")
    }

    /// The state with this key.
    pub fn state(&self, key: &str) -> Option<&State> {
        self.states.iter().find(|s| s.key == key)
    }

    /// Whether orders in this state count as cancelled.
    pub fn is_cancelled(&self, key: &str) -> bool {
        self.cancelled.iter().any(|k| k == key)
    }

    /// The states orders count as done in.
    pub fn done_states(&self) -> &[StatusKey] {
        &self.done
    }

    /// The states orders count as cancelled in.
    pub fn cancelled_states(&self) -> &[StatusKey] {
        &self.cancelled
    }

    /// Whether orders in this state count as done (successfully finished).
    pub fn is_done(&self, key: &str) -> bool {
        self.done.iter().any(|k| k == key)
    }

    /// Whether orders in this state can't change any more; `false` for
    /// unknown keys.
    pub fn is_terminal(&self, key: &str) -> bool {
        self.state(key).is_some_and(|s| s.terminal)
    }

    /// May `role` move an order (with this fulfilment) from `from` to `to`?
    /// Returns the target state, or why not (see [`TransitionDenied`] for the
    /// order in which reasons are checked).
    pub fn check(
        &self, role: Role, from: &str, to: &str, fulfilment: FulfilmentKind,
    ) -> Result<&State, TransitionDenied> {
        let target = self
            .state(to)
            .ok_or_else(|| TransitionDenied::UnknownStatus { status: to.into() })?;
        let source = self
            .state(from)
            .ok_or_else(|| TransitionDenied::UnknownStatus {
                status: from.into(),
            })?;
        if source.terminal {
            return Err(TransitionDenied::FromTerminal { from: from.into() });
        }
        let not_from_here = || TransitionDenied::NotAllowedFromHere {
            from: from.into(),
            to: to.into(),
        };
        let role_not_allowed = || TransitionDenied::RoleNotAllowed {
            role,
            from: from.into(),
            to: to.into(),
        };
        if from == to {
            return Err(not_from_here());
        }

        let mut applicable = self
            .rules_from(from, fulfilment)
            .filter(|rule| rule.to == to)
            .peekable();
        if applicable.peek().is_some() {
            return if applicable.any(|rule| rule.allows(role)) {
                Ok(target)
            } else {
                Err(role_not_allowed())
            };
        }
        // Someone who may move orders to `to` in general is better served by
        // "not from here" than by "not your job".
        if self
            .transitions
            .iter()
            .any(|rule| rule.to == to && rule.allows(role))
        {
            Err(not_from_here())
        } else {
            Err(role_not_allowed())
        }
    }

    /// The states `role` may move an order to from `from` (for one-click
    /// buttons), in the order of the transitions in the file, without
    /// duplicates. Empty for terminal or unknown states.
    pub fn next_states(&self, role: Role, from: &str, fulfilment: FulfilmentKind) -> Vec<&State> {
        if self.state(from).is_none_or(|s| s.terminal) {
            return Vec::new();
        }
        let mut next: Vec<&State> = Vec::new();
        for rule in self.rules_from(from, fulfilment) {
            if rule.allows(role)
                && let Some(state) = self.state(&rule.to)
                && !next.iter().any(|s| s.key == state.key)
            {
                next.push(state);
            }
        }
        next
    }

    /// The state an order moves to by itself when its last item becomes
    /// ready while it is in `from`, if any.
    pub fn on_items_ready(&self, from: &str) -> Option<&State> {
        let target = self.state(from)?.on_items_ready.as_deref()?;
        self.state(target)
    }

    /// Expected minutes until an order in `from` reaches a done state: the sum
    /// of `expected_minutes` of the states on the quickest path, counting
    /// `from` itself. The done state's own minutes don't count, since the
    /// customer's wait ends on arrival; so a non-terminal done state gives
    /// `Some(0)`. `None` if `from` is unknown or terminal, or no done state
    /// can be reached with this fulfilment.
    pub fn expected_minutes_remaining(
        &self, from: &str, fulfilment: FulfilmentKind,
    ) -> Option<u32> {
        if self.state(from)?.terminal {
            return None;
        }
        self.minutes_until(from, fulfilment, |state| self.is_done(&state.key))
    }

    /// The states in which an order is on the kitchen's screen: the
    /// non-terminal states the kitchen role can move an order out of, in
    /// file order — but not the initial state (an order not yet accepted;
    /// a kitchen that accepts orders does so on the dashboard) nor the
    /// hand-off state (the kitchen is done with it).
    pub fn kitchen_states(&self) -> Vec<&State> {
        let hand_off = self.hand_off_state().map(|state| &state.key);
        self.states
            .iter()
            .filter(|state| {
                !state.terminal
                    && !state.initial
                    && Some(&state.key) != hand_off
                    && self
                        .transitions
                        .iter()
                        .any(|rule| rule.from == state.key && rule.allows(Role::Kitchen))
            })
            .collect()
    }

    /// The states in which an order waits for or is in the kitchen (its
    /// queue): the initial state and the kitchen states. Empty for a
    /// workflow without a kitchen hand-off (it has no kitchen queue).
    pub fn queue_states(&self) -> Vec<&State> {
        if self.hand_off_state().is_none() {
            return Vec::new();
        }
        let mut states = vec![self.initial()];
        states.extend(self.kitchen_states());
        states
    }

    /// Expected minutes an order (with this fulfilment) spends in the
    /// kitchen: from entering the first kitchen state to the hand-off, on
    /// the quickest path. `None` without kitchen states or a hand-off.
    pub fn expected_minutes_in_kitchen(&self, fulfilment: FulfilmentKind) -> Option<u32> {
        let hand_off = self.hand_off_state()?;
        let first = self
            .kitchen_states()
            .first()
            .map(|state| state.key.clone())?;
        self.minutes_until(&first, fulfilment, |state| state.key == hand_off.key)
    }

    /// The state an order is handed off to when the kitchen is done with
    /// it: the (first) state that requires every item to be ready. `None`
    /// for a workflow without a kitchen hand-off.
    pub fn hand_off_state(&self) -> Option<&State> {
        self.states.iter().find(|state| state.requires_items_ready)
    }

    /// Whether an order (with this fulfilment) in `key` is done with the
    /// kitchen: in the hand-off state, or in a state after it (reachable
    /// from it) that is not a kitchen state. `false` for a workflow without
    /// a hand-off.
    pub fn is_past_kitchen(&self, key: &str, fulfilment: FulfilmentKind) -> bool {
        self.hand_off_state().is_some_and(|hand_off| {
            self.path_for_anyone(&hand_off.key, key, fulfilment)
                .is_some()
                && !self.kitchen_states().iter().any(|state| state.key == key)
        })
    }

    /// Expected minutes from placing an order to its hand-off: the sum of
    /// `expected_minutes` of the states on the quickest path from the
    /// initial state (the age at which a kitchen ticket is late). `None`
    /// without a hand-off state, or when orders with this fulfilment never
    /// reach it.
    pub fn expected_minutes_to_hand_off(&self, fulfilment: FulfilmentKind) -> Option<u32> {
        let hand_off = self.hand_off_state()?;
        self.minutes_until(&self.initial().key, fulfilment, |state| {
            state.key == hand_off.key
        })
    }

    /// The shortest way `role` may move an order (with this fulfilment)
    /// from `from` to `to`, never through a cancelled state: the states
    /// entered, in order, ending with `to`. Empty when `from` is `to`;
    /// `None` when the role has no such way. Ties go to the rule first in
    /// the file.
    pub fn path(
        &self, role: Role, from: &str, to: &str, fulfilment: FulfilmentKind,
    ) -> Option<Vec<&State>> {
        self.path_where(from, to, fulfilment, |rule| rule.allows(role))
    }

    /// Like [`Workflow::path`], for anyone: the shortest way the workflow
    /// has at all.
    pub(crate) fn path_for_anyone(
        &self, from: &str, to: &str, fulfilment: FulfilmentKind,
    ) -> Option<Vec<&State>> {
        self.path_where(from, to, fulfilment, |_| true)
    }

    /// Whether the workflow has a rule from `from` to `to` for orders with
    /// this fulfilment (whoever may use it).
    pub fn has_transition(&self, from: &str, to: &str, fulfilment: FulfilmentKind) -> bool {
        self.rules_from(from, fulfilment).any(|rule| rule.to == to)
    }

    /// Breadth-first search over the rules `usable` accepts.
    fn path_where(
        &self, from: &str, to: &str, fulfilment: FulfilmentKind,
        usable: impl Fn(&TransitionRule) -> bool,
    ) -> Option<Vec<&State>> {
        let start = self.index(from)?;
        let goal = self.index(to)?;
        let mut came_from: Vec<Option<usize>> = vec![None; self.states.len()];
        let mut seen = vec![false; self.states.len()];
        seen[start] = true;
        let mut queue = VecDeque::from([start]);
        while let Some(i) = queue.pop_front() {
            if i == goal {
                let mut path = Vec::new();
                let mut at = i;
                while let Some(previous) = came_from[at] {
                    path.push(&self.states[at]);
                    at = previous;
                }
                path.reverse();
                return Some(path);
            }
            for rule in self.rules_from(&self.states[i].key, fulfilment) {
                if let Some(j) = self.index(&rule.to)
                    && !seen[j]
                    && !self.is_cancelled(&rule.to)
                    && usable(rule)
                {
                    seen[j] = true;
                    came_from[j] = Some(i);
                    queue.push_back(j);
                }
            }
        }
        None
    }

    /// Dijkstra with the weight on the state being left: the fewest minutes
    /// from `from` until the first state `arrived` accepts (whose own
    /// minutes don't count); `None` if no such state can be reached.
    fn minutes_until(
        &self, from: &str, fulfilment: FulfilmentKind, arrived: impl Fn(&State) -> bool,
    ) -> Option<u32> {
        let start = self.index(from)?;
        // Workflows are a handful of states, so a linear scan for the
        // minimum is plenty.
        let n = self.states.len();
        let mut best: Vec<Option<u32>> = vec![None; n];
        let mut settled = vec![false; n];
        best[start] = Some(0);
        loop {
            let (i, minutes) = (0..n)
                .filter(|&i| !settled[i])
                .filter_map(|i| best[i].map(|m| (i, m)))
                .min_by_key(|&(_, m)| m)?;
            let state = &self.states[i];
            if arrived(state) {
                return Some(minutes);
            }
            settled[i] = true;
            let leaving = minutes.saturating_add(state.expected_minutes);
            for rule in self.rules_from(&state.key, fulfilment) {
                if let Some(j) = self.index(&rule.to)
                    && !settled[j]
                    && best[j].is_none_or(|m| leaving < m)
                {
                    best[j] = Some(leaving);
                }
            }
        }
    }

    fn index(&self, key: &str) -> Option<usize> {
        self.states.iter().position(|s| s.key == key)
    }

    fn rules_from<'a>(
        &'a self, from: &'a str, fulfilment: FulfilmentKind,
    ) -> impl Iterator<Item = &'a TransitionRule> + 'a {
        self.transitions
            .iter()
            .filter(move |rule| rule.from == from && rule.applies_to(fulfilment))
    }
}

/// Checks everything a running desk relies on, so that the rest of the code
/// can trust any `Workflow` it is given; the first problem found.
fn validate(file: WorkflowFile) -> Result<Workflow, WorkflowError> {
    validate_all(file).map_err(|mut problems| problems.swap_remove(0).error)
}

/// One problem of a workflow file and where it is (`states[2].progress`,
/// `transitions[0].roles[1]`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WorkflowProblem {
    pub path: String,
    #[serde(rename = "message", serialize_with = "as_message")]
    #[schema(value_type = String)]
    pub error: WorkflowError,
}

fn as_message<S: serde::Serializer>(error: &WorkflowError, out: S) -> Result<S::Ok, S::Error> {
    out.collect_str(error)
}

/// Every problem of `file`, in the order a reader meets them. A check that
/// needs what an earlier one refused (an initial state, a transition's
/// states) is skipped rather than reporting the same mistake twice.
fn validate_all(file: WorkflowFile) -> Result<Workflow, Vec<WorkflowProblem>> {
    let mut problems = Vec::new();
    let mut problem = |path: String, error: WorkflowError| {
        problems.push(WorkflowProblem { path, error });
    };
    if file.name.trim().is_empty() {
        problem("name".into(), WorkflowError::EmptyName);
    }

    let mut keys: HashSet<&str> = HashSet::new();
    for (i, state) in file.states.iter().enumerate() {
        if state.key.is_empty() {
            problem(format!("states[{i}].key"), WorkflowError::EmptyStateKey);
        } else if !keys.insert(&state.key) {
            problem(
                format!("states[{i}].key"),
                WorkflowError::DuplicateState {
                    key: state.key.clone(),
                },
            );
        }
        if state.progress > 100 {
            problem(
                format!("states[{i}].progress"),
                WorkflowError::ProgressOutOfRange {
                    state: state.key.clone(),
                    progress: state.progress,
                },
            );
        }
    }

    let initials: Vec<(usize, &State)> = file
        .states
        .iter()
        .enumerate()
        .filter(|(_, s)| s.initial)
        .collect();
    let initial = match initials.as_slice() {
        [] => {
            problem("states".into(), WorkflowError::NoInitialState);
            None
        }
        [(_, only)] => Some(*only),
        [(_, first), (i, second), ..] => {
            problem(
                format!("states[{i}].initial"),
                WorkflowError::MultipleInitialStates {
                    first: first.key.clone(),
                    second: second.key.clone(),
                },
            );
            None
        }
    };

    for (list, keys_in_list) in [("cancelled", &file.cancelled), ("done", &file.done)] {
        for (i, unknown) in keys_in_list.iter().enumerate() {
            if !keys.contains(unknown.as_str()) {
                problem(
                    format!("{list}[{i}]"),
                    WorkflowError::UnknownListedState {
                        list,
                        state: unknown.clone(),
                    },
                );
            }
        }
    }
    for (i, both) in file.cancelled.iter().enumerate() {
        if file.done.contains(both) {
            problem(
                format!("cancelled[{i}]"),
                WorkflowError::CancelledAndDone {
                    state: both.clone(),
                },
            );
        }
    }

    let mut transitions = Vec::with_capacity(file.transitions.len());
    for (i, raw) in file.transitions.iter().enumerate() {
        if let Some(rule) = parse_transition(raw, &keys, &format!("transitions[{i}]"), &mut problem)
        {
            transitions.push(rule);
        }
    }

    let state = |key: &str| file.states.iter().find(|s| s.key == key);
    for (i, raw) in file.transitions.iter().enumerate() {
        if state(&raw.from).is_some_and(|s| s.terminal) {
            problem(
                format!("transitions[{i}]"),
                WorkflowError::TerminalHasExit {
                    state: raw.from.clone(),
                    to: raw.to.clone(),
                },
            );
        }
    }
    for (i, s) in file.states.iter().enumerate().filter(|(_, s)| !s.terminal) {
        if !file.transitions.iter().any(|raw| raw.from == s.key) {
            problem(
                format!("states[{i}]"),
                WorkflowError::NoWayOut {
                    state: s.key.clone(),
                },
            );
        }
    }

    for (i, s) in file
        .states
        .iter()
        .enumerate()
        .filter(|(_, s)| s.requires_paid)
    {
        let path = format!("states[{i}].requires_paid");
        let state = s.key.clone();
        if s.initial {
            problem(path, WorkflowError::PaidInitialState { state });
        } else if file.cancelled.contains(&s.key) {
            problem(path, WorkflowError::PaidCancelledState { state });
        }
    }

    for (i, s) in file.states.iter().enumerate() {
        let Some(target) = &s.on_items_ready else {
            continue;
        };
        let path = format!("states[{i}].on_items_ready");
        if !keys.contains(target.as_str()) {
            problem(
                path,
                WorkflowError::UnknownItemsReadyTarget {
                    state: s.key.clone(),
                    target: target.clone(),
                },
            );
            continue;
        }
        // The automatic move has no fulfilment to hand, so it must be legal
        // for every order that can be in this state.
        let covered = FULFILMENTS.iter().all(|&f| {
            transitions
                .iter()
                .any(|rule| rule.from == s.key && &rule.to == target && rule.applies_to(f))
        });
        if !covered {
            problem(
                path,
                WorkflowError::ItemsReadyWithoutTransition {
                    state: s.key.clone(),
                    target: target.clone(),
                },
            );
        }
    }

    if let Some(initial) = initial {
        let reachable = reachable_from(&initial.key, &transitions, None);
        for (i, s) in file.states.iter().enumerate() {
            if !reachable.contains(s.key.as_str()) {
                problem(
                    format!("states[{i}]"),
                    WorkflowError::Unreachable {
                        state: s.key.clone(),
                    },
                );
            }
        }

        for fulfilment in FULFILMENTS {
            let reachable = reachable_from(&initial.key, &transitions, Some(fulfilment));
            let can_finish = can_reach_terminal(&file.states, &transitions, fulfilment);
            for (i, s) in file.states.iter().enumerate() {
                if s.terminal || !reachable.contains(s.key.as_str()) {
                    continue;
                }
                let has_exit = transitions
                    .iter()
                    .any(|rule| rule.from == s.key && rule.applies_to(fulfilment));
                // A state without any exit was reported as such above.
                let any_exit = file.transitions.iter().any(|raw| raw.from == s.key);
                if !has_exit && any_exit {
                    problem(
                        format!("states[{i}]"),
                        WorkflowError::DeadEnd {
                            state: s.key.clone(),
                            fulfilment: fulfilment.as_str(),
                        },
                    );
                } else if has_exit && !can_finish.contains(s.key.as_str()) {
                    problem(
                        format!("states[{i}]"),
                        WorkflowError::NeverFinishes {
                            state: s.key.clone(),
                            fulfilment: fulfilment.as_str(),
                        },
                    );
                }
            }
        }
    }

    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Workflow {
        name: file.name,
        label: file.label,
        cancelled: file.cancelled,
        done: file.done,
        states: file.states,
        transitions,
    })
}

/// A transition as written, checked: `None` when it names unknown states
/// (later checks leave it out); unknown roles and fulfilments are reported
/// and left out of the rule.
fn parse_transition(
    raw: &FileTransition, keys: &HashSet<&str>, path: &str,
    problem: &mut impl FnMut(String, WorkflowError),
) -> Option<TransitionRule> {
    let mut known_states = true;
    for (field, key) in [("from", &raw.from), ("to", &raw.to)] {
        if !keys.contains(key.as_str()) {
            problem(
                format!("{path}.{field}"),
                WorkflowError::UnknownTransitionState {
                    from: raw.from.clone(),
                    to: raw.to.clone(),
                    state: key.clone(),
                },
            );
            known_states = false;
        }
    }
    if raw.from == raw.to {
        problem(
            format!("{path}.to"),
            WorkflowError::SelfTransition {
                state: raw.from.clone(),
            },
        );
    }
    if raw.roles.is_empty() {
        problem(
            format!("{path}.roles"),
            WorkflowError::EmptyRoles {
                from: raw.from.clone(),
                to: raw.to.clone(),
            },
        );
    }
    let mut roles = Vec::with_capacity(raw.roles.len());
    for (i, name) in raw.roles.iter().enumerate() {
        match name.parse::<Role>() {
            Ok(role) => roles.push(role),
            Err(_) => problem(
                format!("{path}.roles[{i}]"),
                WorkflowError::UnknownRole {
                    role: name.clone(),
                    from: raw.from.clone(),
                    to: raw.to.clone(),
                },
            ),
        }
    }
    let fulfilment = match raw.fulfilment.as_deref() {
        None => None,
        Some(value) => {
            let parsed = FulfilmentKind::parse(value);
            if parsed.is_none() {
                problem(
                    format!("{path}.fulfilment"),
                    WorkflowError::UnknownFulfilment {
                        value: value.to_owned(),
                        from: raw.from.clone(),
                        to: raw.to.clone(),
                    },
                );
            }
            parsed
        }
    };
    (known_states && raw.from != raw.to).then(|| TransitionRule {
        from: raw.from.clone(),
        to: raw.to.clone(),
        roles,
        fulfilment,
    })
}

/// States reachable from `start`, following rules for `fulfilment` (or all
/// rules when `None`).
fn reachable_from<'a>(
    start: &'a str, transitions: &'a [TransitionRule], fulfilment: Option<FulfilmentKind>,
) -> HashSet<&'a str> {
    let mut seen = HashSet::from([start]);
    let mut queue = VecDeque::from([start]);
    while let Some(current) = queue.pop_front() {
        for rule in transitions {
            if rule.from == current
                && fulfilment.is_none_or(|f| rule.applies_to(f))
                && seen.insert(rule.to.as_str())
            {
                queue.push_back(&rule.to);
            }
        }
    }
    seen
}

/// States from which some terminal state can be reached with `fulfilment`
/// (searching backwards from the terminal states).
fn can_reach_terminal<'a>(
    states: &'a [State], transitions: &'a [TransitionRule], fulfilment: FulfilmentKind,
) -> HashSet<&'a str> {
    let mut seen: HashSet<&str> = states
        .iter()
        .filter(|s| s.terminal)
        .map(|s| s.key.as_str())
        .collect();
    let mut queue: VecDeque<&str> = seen.iter().copied().collect();
    while let Some(current) = queue.pop_front() {
        for rule in transitions {
            if rule.to == current && rule.applies_to(fulfilment) && seen.insert(rule.from.as_str())
            {
                queue.push_back(&rule.from);
            }
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;
    use FulfilmentKind::{Delivery, Pickup};

    fn restaurant() -> Workflow {
        Workflow::builtin("restaurant").unwrap()
    }

    /// A small valid workflow that the error tests break one piece at a time.
    const MINI: &str = r#"
name = "mini"
label = "Mini"
cancelled = ["cancelled"]
done = ["done"]

[[states]]
key = "new"
label = "New"
progress = 0
expected_minutes = 4
initial = true

[[states]]
key = "done"
label = "Done"
progress = 100
terminal = true

[[states]]
key = "cancelled"
label = "Cancelled"
progress = 0
terminal = true

[[transitions]]
from = "new"
to = "done"
roles = ["cashier"]

[[transitions]]
from = "new"
to = "cancelled"
roles = ["customer", "cashier"]
"#;

    fn mini_with(extra: &str) -> Result<Workflow, WorkflowError> {
        Workflow::from_toml(&format!("{MINI}\n{extra}"))
    }

    /// The mini workflow with one more state, `key`, and one owner's
    /// transition `from` → `to`.
    fn mini_with_state(key: &str, from: &str, to: &str) -> Result<Workflow, WorkflowError> {
        mini_with(&format!(
            "[[states]]\nkey = \"{key}\"\nlabel = \"{key}\"\nprogress = 50\n\
             [[transitions]]\nfrom = \"{from}\"\nto = \"{to}\"\nroles = [\"owner\"]"
        ))
    }

    #[test]
    fn every_problem_is_listed_with_where_it_is() {
        let mut file: serde_json::Value =
            serde_json::to_value(Workflow::builtin("kitchen").unwrap()).unwrap();
        // A state nothing leads to, a terminal state with a way out and a
        // role nobody has, in one upload.
        file["states"].as_array_mut().unwrap().insert(
            1,
            serde_json::json!({"key": "limbo", "label": "Limbo", "progress": 10}),
        );
        let transitions = file["transitions"].as_array_mut().unwrap();
        transitions
            .push(serde_json::json!({"from": "limbo", "to": "completed", "roles": ["owner"]}));
        transitions
            .push(serde_json::json!({"from": "completed", "to": "pending", "roles": ["owner"]}));
        transitions[0]["roles"] = serde_json::json!(["kitchen", "chef"]);
        let problems = Workflow::check_json(&file.to_string()).unwrap_err();
        let found: Vec<(&str, String)> = problems
            .iter()
            .map(|p| (p.path.as_str(), p.error.to_string()))
            .collect();
        let paths: Vec<&str> = found.iter().map(|(path, _)| *path).collect();
        let last = transitions_len(&file) - 1;
        assert_eq!(
            paths,
            [
                "transitions[0].roles[1]".to_owned(),
                format!("transitions[{last}]"),
                "states[1]".to_owned(),
            ],
            "{found:?}"
        );
        assert!(matches!(
            problems[0].error,
            WorkflowError::UnknownRole { .. }
        ));
        assert!(matches!(
            problems[1].error,
            WorkflowError::TerminalHasExit { .. }
        ));
        assert!(matches!(
            problems[2].error,
            WorkflowError::Unreachable { .. }
        ));

        // Without an initial state, that is said (and reachability is not
        // guessed at); an unknown role still is.
        let mut file: serde_json::Value =
            serde_json::to_value(Workflow::builtin("kitchen").unwrap()).unwrap();
        file["states"][0]["initial"] = serde_json::json!(false);
        file["transitions"][1]["roles"] = serde_json::json!(["sous_chef"]);
        let problems = Workflow::check_json(&file.to_string()).unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["states", "transitions[1].roles[0]"], "{problems:?}");
        assert_eq!(problems[0].error, WorkflowError::NoInitialState);
        // Serialised for clients: path and message.
        assert_eq!(
            serde_json::to_value(&problems[0]).unwrap(),
            serde_json::json!({"path": "states", "message": "no state is marked `initial = true`"})
        );
    }

    fn transitions_len(file: &serde_json::Value) -> usize {
        file["transitions"].as_array().map_or(0, Vec::len)
    }

    fn mini_replacing(from: &str, to: &str) -> Result<Workflow, WorkflowError> {
        assert!(MINI.contains(from), "test fixture lacks {from:?}");
        Workflow::from_toml(&MINI.replacen(from, to, 1))
    }

    #[test]
    fn every_builtin_loads_and_validates() {
        for name in Workflow::BUILTIN_NAMES {
            let workflow = Workflow::builtin(name).unwrap();
            assert_eq!(workflow.name(), name);
            assert!(!workflow.label().is_empty());
            assert!(workflow.initial().initial);
            assert_eq!(workflow.initial().key, "pending");
            assert!(workflow.is_cancelled("cancelled"));
            assert!(workflow.is_terminal("cancelled"));
            assert_eq!(workflow.state("cancelled").unwrap().progress, 0);
            for state in workflow.states() {
                assert!(!state.icon.is_empty(), "{name}/{} has no icon", state.key);
                assert!(!state.customer_message.is_empty(), "{name}/{}", state.key);
            }
        }
        assert!(Workflow::builtin("bakery").is_none());
    }

    #[test]
    fn builtin_progress_increases_along_the_main_path() {
        let paths = [
            (
                "restaurant",
                "pending confirmed preparing cooking ready out_for_delivery delivered completed",
            ),
            (
                "restaurant",
                "pending confirmed preparing cooking ready completed",
            ),
            ("kitchen", "pending confirmed preparing ready completed"),
            ("retail", "pending confirmed processing shipped delivered"),
        ];
        for (name, path) in paths {
            let path: Vec<&str> = path.split_whitespace().collect();
            let workflow = Workflow::builtin(name).unwrap();
            let fulfilment = if path.contains(&"out_for_delivery") || name == "retail" {
                Delivery
            } else {
                Pickup
            };
            for pair in path.windows(2) {
                let from = workflow.state(pair[0]).unwrap();
                let to = workflow
                    .check(Role::Owner, pair[0], pair[1], fulfilment)
                    .unwrap();
                assert!(to.progress > from.progress, "{name}: {pair:?}");
            }
            let last = path.last().unwrap();
            assert!(
                workflow.is_terminal(last) && workflow.is_done(last),
                "{name}"
            );
        }
    }

    #[test]
    fn restaurant_flags_match_the_design() {
        let workflow = restaurant();
        assert!(workflow.state("ready").unwrap().requires_items_ready);
        assert_eq!(workflow.on_items_ready("cooking").unwrap().key, "ready");
        assert_eq!(workflow.on_items_ready("preparing").unwrap().key, "ready");
        assert!(workflow.on_items_ready("pending").is_none());
        assert!(workflow.on_items_ready("nowhere").is_none());
        assert!(workflow.is_done("delivered") && workflow.is_done("completed"));
        assert!(!workflow.is_done("ready"));
        assert!(!workflow.is_terminal("delivered"));
        assert!(!workflow.is_terminal("nowhere"));

        let kitchen = Workflow::builtin("kitchen").unwrap();
        assert!(kitchen.state("ready").unwrap().requires_items_ready);
        assert_eq!(kitchen.on_items_ready("preparing").unwrap().key, "ready");
    }

    #[test]
    fn check_precedence() {
        let workflow = restaurant();
        assert_eq!(
            workflow.check(Role::Customer, "pending", "confirmed", Pickup),
            Err(TransitionDenied::RoleNotAllowed {
                role: Role::Customer,
                from: "pending".into(),
                to: "confirmed".into()
            })
        );
        assert_eq!(
            workflow.check(Role::Kitchen, "pending", "ready", Pickup),
            Err(TransitionDenied::NotAllowedFromHere {
                from: "pending".into(),
                to: "ready".into()
            })
        );
        assert_eq!(
            workflow.check(Role::Owner, "completed", "pending", Pickup),
            Err(TransitionDenied::FromTerminal {
                from: "completed".into()
            })
        );
        assert_eq!(
            workflow.check(Role::Owner, "pending", "teleported", Pickup),
            Err(TransitionDenied::UnknownStatus {
                status: "teleported".into()
            })
        );
        assert_eq!(
            workflow.check(Role::Owner, "teleported", "pending", Pickup),
            Err(TransitionDenied::UnknownStatus {
                status: "teleported".into()
            })
        );
        // Unknown beats terminal.
        assert!(matches!(
            workflow.check(Role::Owner, "completed", "teleported", Pickup),
            Err(TransitionDenied::UnknownStatus { .. })
        ));
        assert_eq!(
            workflow
                .check(Role::Driver, "ready", "out_for_delivery", Delivery)
                .map(|s| &s.key[..]),
            Ok("out_for_delivery")
        );
        assert_eq!(
            workflow.check(Role::Driver, "ready", "out_for_delivery", Pickup),
            Err(TransitionDenied::NotAllowedFromHere {
                from: "ready".into(),
                to: "out_for_delivery".into()
            })
        );
        // The driver never moves anything to `cooking`.
        assert!(matches!(
            workflow.check(Role::Driver, "ready", "cooking", Delivery),
            Err(TransitionDenied::RoleNotAllowed { .. })
        ));
        assert!(matches!(
            workflow.check(Role::Owner, "ready", "ready", Delivery),
            Err(TransitionDenied::NotAllowedFromHere { .. })
        ));
        assert!(
            workflow
                .check(Role::Customer, "pending", "cancelled", Delivery)
                .is_ok()
        );
        // The rule confirmed → cancelled exists, just not for customers.
        assert!(matches!(
            workflow.check(Role::Customer, "confirmed", "cancelled", Delivery),
            Err(TransitionDenied::RoleNotAllowed { .. })
        ));
    }

    #[test]
    fn admin_may_do_what_an_owner_may() {
        let workflow = restaurant();
        assert!(
            workflow
                .check(Role::Admin, "pending", "confirmed", Pickup)
                .is_ok()
        );
        assert!(
            workflow
                .check(Role::Admin, "ready", "completed", Pickup)
                .is_ok()
        );
        assert_eq!(
            workflow.next_states(Role::Admin, "ready", Delivery),
            workflow.next_states(Role::Owner, "ready", Delivery)
        );
    }

    #[test]
    fn next_states_follow_role_and_fulfilment() {
        let workflow = restaurant();
        let keys = |role, from, fulfilment| -> Vec<StatusKey> {
            workflow
                .next_states(role, from, fulfilment)
                .into_iter()
                .map(|s| s.key.clone())
                .collect()
        };
        assert_eq!(
            keys(Role::Cashier, "ready", Delivery),
            ["out_for_delivery", "cancelled"]
        );
        assert_eq!(
            keys(Role::Cashier, "ready", Pickup),
            ["completed", "cancelled"]
        );
        assert_eq!(
            keys(Role::Kitchen, "preparing", Pickup),
            ["cooking", "ready"]
        );
        assert_eq!(keys(Role::Customer, "pending", Pickup), ["cancelled"]);
        assert!(keys(Role::Driver, "ready", Pickup).is_empty());
        assert!(keys(Role::Owner, "completed", Pickup).is_empty());
        assert!(keys(Role::Owner, "teleported", Pickup).is_empty());
    }

    #[test]
    fn the_kitchen_sees_the_states_it_can_move_orders_out_of() {
        let keys = |workflow: &Workflow| -> Vec<StatusKey> {
            workflow
                .kitchen_states()
                .into_iter()
                .map(|s| s.key.clone())
                .collect()
        };
        assert_eq!(keys(&restaurant()), ["confirmed", "preparing", "cooking"]);
        let kitchen = Workflow::builtin("kitchen").unwrap();
        assert_eq!(keys(&kitchen), ["confirmed", "preparing"]);
        let retail = Workflow::builtin("retail").unwrap();
        assert!(keys(&retail).is_empty());
    }

    #[test]
    fn the_hand_off_is_the_state_that_needs_every_item_ready() {
        assert_eq!(
            restaurant().hand_off_state().map(|s| &s.key[..]),
            Some("ready")
        );
        let kitchen = Workflow::builtin("kitchen").unwrap();
        assert_eq!(kitchen.hand_off_state().map(|s| &s.key[..]), Some("ready"));
        assert!(
            Workflow::builtin("retail")
                .unwrap()
                .hand_off_state()
                .is_none()
        );
    }

    #[test]
    fn the_kitchen_is_done_with_an_order_from_its_hand_off_on() {
        let restaurant = restaurant();
        for (status, done) in [
            ("pending", false),
            ("confirmed", false),
            ("preparing", false),
            ("cooking", false),
            ("ready", true),
            ("out_for_delivery", true),
            ("delivered", true),
        ] {
            assert_eq!(
                restaurant.is_past_kitchen(status, Delivery),
                done,
                "{status}"
            );
        }
        assert!(
            !Workflow::builtin("retail")
                .unwrap()
                .is_past_kitchen("shipped", Delivery)
        );
    }

    #[test]
    fn expected_minutes_to_hand_off_follow_the_quickest_path_from_placing() {
        // pending 3 + confirmed 5 + preparing 8 (skipping cooking).
        assert_eq!(restaurant().expected_minutes_to_hand_off(Pickup), Some(16));
        assert_eq!(
            restaurant().expected_minutes_to_hand_off(Delivery),
            Some(16)
        );
        let kitchen = Workflow::builtin("kitchen").unwrap();
        assert_eq!(kitchen.expected_minutes_to_hand_off(Pickup), Some(20));
        let retail = Workflow::builtin("retail").unwrap();
        assert_eq!(retail.expected_minutes_to_hand_off(Pickup), None);
    }

    #[test]
    fn paths_take_the_fewest_steps_the_role_may_take_and_never_cancel() {
        let workflow = restaurant();
        let keys = |role, from, to| -> Option<Vec<String>> {
            workflow
                .path(role, from, to, Pickup)
                .map(|path| path.into_iter().map(|s| s.key.to_string()).collect())
        };
        assert_eq!(
            keys(Role::Kitchen, "confirmed", "ready"),
            Some(vec!["preparing".to_owned(), "ready".to_owned()])
        );
        assert_eq!(
            keys(Role::Cashier, "pending", "ready"),
            Some(vec![
                "confirmed".to_owned(),
                "preparing".to_owned(),
                "ready".to_owned()
            ])
        );
        assert_eq!(keys(Role::Kitchen, "ready", "ready"), Some(Vec::new()));
        assert_eq!(keys(Role::Kitchen, "pending", "ready"), None);
        assert_eq!(keys(Role::Driver, "confirmed", "ready"), None);
        assert_eq!(keys(Role::Owner, "ready", "cancelled"), None);
        assert_eq!(keys(Role::Owner, "ready", "teleported"), None);
        assert!(workflow.has_transition("ready", "completed", Pickup));
        assert!(!workflow.has_transition("ready", "completed", Delivery));
        assert!(!workflow.has_transition("ready", "preparing", Pickup));
    }

    #[test]
    fn expected_minutes_follow_the_quickest_path_for_the_fulfilment() {
        let workflow = restaurant();
        for (status, fulfilment, minutes) in [
            // pending 3 + confirmed 5 + preparing 8 + ready 5 (skipping cooking).
            ("pending", Pickup, Some(21)),
            // ... + out_for_delivery 20, arriving at `delivered` (done).
            ("pending", Delivery, Some(41)),
            ("cooking", Pickup, Some(17)),
            ("delivered", Delivery, Some(0)),
            ("completed", Pickup, None),
            ("cancelled", Pickup, None),
            ("teleported", Pickup, None),
        ] {
            assert_eq!(
                workflow.expected_minutes_remaining(status, fulfilment),
                minutes,
                "{status}, {fulfilment:?}"
            );
        }

        let no_done = mini_replacing(r#"done = ["done"]"#, "done = []").unwrap();
        assert_eq!(no_done.expected_minutes_remaining("new", Pickup), None);
        let mini = mini_with("").unwrap();
        assert_eq!(mini.expected_minutes_remaining("new", Pickup), Some(4));
    }

    #[test]
    fn json_loads_the_same_structure() {
        let json = r#"{
            "name": "mini",
            "label": "Mini",
            "cancelled": ["cancelled"],
            "done": ["done"],
            "states": [
                {"key": "new", "label": "New", "icon": "🆕", "progress": 0, "initial": true},
                {"key": "done", "label": "Done", "progress": 100, "terminal": true},
                {"key": "cancelled", "label": "Cancelled", "progress": 0, "terminal": true}
            ],
            "transitions": [
                {"from": "new", "to": "done", "roles": ["cashier"], "fulfilment": "pickup"},
                {"from": "new", "to": "done", "roles": ["driver"], "fulfilment": "delivery"},
                {"from": "new", "to": "cancelled", "roles": ["customer"]}
            ]
        }"#;
        let workflow = Workflow::from_json(json).unwrap();
        assert_eq!(workflow.name(), "mini");
        assert_eq!(workflow.initial().icon, "🆕");
        assert_eq!(workflow.transitions()[1].fulfilment, Some(Delivery));
        assert!(
            workflow
                .check(Role::Driver, "new", "done", Delivery)
                .is_ok()
        );
        assert!(workflow.check(Role::Driver, "new", "done", Pickup).is_err());

        assert!(matches!(
            Workflow::from_json("{"),
            Err(WorkflowError::Parse(_))
        ));
        assert!(matches!(
            Workflow::from_json(
                &json.replace("\"initial\": true", "\"initial\": true, \"colour\": 1")
            ),
            Err(WorkflowError::Parse(_))
        ));
    }

    #[test]
    fn serializing_round_trips_and_deserializing_validates() {
        for name in Workflow::BUILTIN_NAMES {
            let workflow = Workflow::builtin(name).unwrap();
            let json = serde_json::to_string(&workflow).unwrap();
            assert_eq!(Workflow::from_json(&json).unwrap(), workflow);
            assert_eq!(serde_json::from_str::<Workflow>(&json).unwrap(), workflow);
            let toml_text = toml::to_string(&workflow).unwrap();
            assert_eq!(Workflow::from_toml(&toml_text).unwrap(), workflow);
        }
        let broken = serde_json::json!({"name": "", "label": "x", "states": []});
        assert!(serde_json::from_value::<Workflow>(broken).is_err());
    }

    #[test]
    fn syntax_and_shape_errors_are_parse_errors() {
        assert!(matches!(
            Workflow::from_toml("name = "),
            Err(WorkflowError::Parse(_))
        ));
        assert!(matches!(
            Workflow::from_toml(""),
            Err(WorkflowError::Parse(_))
        ));
        assert!(matches!(
            mini_with("colour = \"red\""),
            Err(WorkflowError::Parse(_))
        ));
        assert!(matches!(
            mini_replacing(
                "expected_minutes = 4",
                "expected_minutes = 4\nsmell = \"good\""
            ),
            Err(WorkflowError::Parse(_))
        ));
        // Too large for a u8 is a shape error; 101..=255 is a validation error.
        assert!(matches!(
            mini_replacing("progress = 0", "progress = 300"),
            Err(WorkflowError::Parse(_))
        ));
    }

    #[test]
    fn validation_errors() {
        use WorkflowError as E;

        assert_eq!(
            mini_replacing(r#"name = "mini""#, r#"name = " ""#),
            Err(E::EmptyName)
        );
        assert_eq!(
            mini_replacing(r#"key = "new""#, r#"key = """#),
            Err(E::EmptyStateKey)
        );
        assert_eq!(
            mini_replacing(r#"key = "cancelled""#, r#"key = "done""#),
            Err(E::DuplicateState { key: "done".into() })
        );
        assert_eq!(mini_replacing("initial = true", ""), Err(E::NoInitialState));
        assert_eq!(
            mini_replacing("progress = 100", "progress = 100\ninitial = true"),
            Err(E::MultipleInitialStates {
                first: "new".into(),
                second: "done".into()
            })
        );
        assert_eq!(
            mini_replacing("progress = 100", "progress = 101"),
            Err(E::ProgressOutOfRange {
                state: "done".into(),
                progress: 101
            })
        );
        assert_eq!(
            mini_replacing(r#"cancelled = ["cancelled"]"#, r#"cancelled = ["voided"]"#),
            Err(E::UnknownListedState {
                list: "cancelled",
                state: "voided".into()
            })
        );
        assert_eq!(
            mini_replacing(r#"done = ["done"]"#, r#"done = ["finished"]"#),
            Err(E::UnknownListedState {
                list: "done",
                state: "finished".into()
            })
        );
        assert_eq!(
            mini_replacing(r#"done = ["done"]"#, r#"done = ["cancelled"]"#),
            Err(E::CancelledAndDone {
                state: "cancelled".into()
            })
        );
        assert_eq!(
            mini_with("[[transitions]]\nfrom = \"new\"\nto = \"limbo\"\nroles = [\"owner\"]"),
            Err(E::UnknownTransitionState {
                from: "new".into(),
                to: "limbo".into(),
                state: "limbo".into()
            })
        );
        assert_eq!(
            mini_with("[[transitions]]\nfrom = \"new\"\nto = \"new\"\nroles = [\"owner\"]"),
            Err(E::SelfTransition {
                state: "new".into()
            })
        );
        assert_eq!(
            mini_replacing(r#"roles = ["cashier"]"#, "roles = []"),
            Err(E::EmptyRoles {
                from: "new".into(),
                to: "done".into()
            })
        );
        let unknown_role = mini_replacing(r#"roles = ["cashier"]"#, r#"roles = ["chef"]"#);
        assert_eq!(
            unknown_role,
            Err(E::UnknownRole {
                role: "chef".into(),
                from: "new".into(),
                to: "done".into()
            })
        );
        assert!(unknown_role.unwrap_err().to_string().contains("`chef`"));
        assert_eq!(
            mini_replacing(
                r#"roles = ["cashier"]"#,
                "roles = [\"cashier\"]\nfulfilment = \"drone\""
            ),
            Err(E::UnknownFulfilment {
                value: "drone".into(),
                from: "new".into(),
                to: "done".into()
            })
        );
        assert_eq!(
            mini_with("[[transitions]]\nfrom = \"done\"\nto = \"new\"\nroles = [\"owner\"]"),
            Err(E::TerminalHasExit {
                state: "done".into(),
                to: "new".into()
            })
        );
        assert_eq!(
            mini_with_state("stuck", "new", "stuck"),
            Err(E::NoWayOut {
                state: "stuck".into()
            })
        );
        assert_eq!(
            mini_with_state("lost", "lost", "done"),
            Err(E::Unreachable {
                state: "lost".into()
            })
        );
        assert_eq!(
            mini_replacing("expected_minutes = 4", "on_items_ready = \"served\""),
            Err(E::UnknownItemsReadyTarget {
                state: "new".into(),
                target: "served".into()
            })
        );
        // A state that exists but can't be moved to from here.
        assert_eq!(
            mini_with(
                "[[states]]\nkey = \"side\"\nlabel = \"Side\"\nprogress = 50\non_items_ready = \"new\"\n\
                 [[transitions]]\nfrom = \"new\"\nto = \"side\"\nroles = [\"owner\"]\n\
                 [[transitions]]\nfrom = \"side\"\nto = \"done\"\nroles = [\"owner\"]"
            ),
            Err(E::ItemsReadyWithoutTransition {
                state: "side".into(),
                target: "new".into()
            })
        );
        // A transition that exists, but only for one fulfilment.
        let pickup_only = MINI
            .replacen("expected_minutes = 4", "on_items_ready = \"done\"", 1)
            .replacen(
                r#"roles = ["cashier"]"#,
                "roles = [\"cashier\"]\nfulfilment = \"pickup\"",
                1,
            );
        assert_eq!(
            Workflow::from_toml(&pickup_only),
            Err(E::ItemsReadyWithoutTransition {
                state: "new".into(),
                target: "done".into()
            })
        );
        // `waiting` has an exit, but not one delivery orders may take.
        assert_eq!(
            mini_with(
                "[[states]]\nkey = \"waiting\"\nlabel = \"Waiting\"\nprogress = 50\n\
                 [[transitions]]\nfrom = \"new\"\nto = \"waiting\"\nroles = [\"owner\"]\n\
                 [[transitions]]\nfrom = \"waiting\"\nto = \"done\"\nroles = [\"owner\"]\nfulfilment = \"pickup\""
            ),
            Err(E::DeadEnd {
                state: "waiting".into(),
                fulfilment: "delivery"
            })
        );
        assert_eq!(
            mini_with(
                "[[states]]\nkey = \"ping\"\nlabel = \"Ping\"\nprogress = 50\n\
                 [[states]]\nkey = \"pong\"\nlabel = \"Pong\"\nprogress = 50\n\
                 [[transitions]]\nfrom = \"new\"\nto = \"ping\"\nroles = [\"owner\"]\n\
                 [[transitions]]\nfrom = \"ping\"\nto = \"pong\"\nroles = [\"owner\"]\n\
                 [[transitions]]\nfrom = \"pong\"\nto = \"ping\"\nroles = [\"owner\"]"
            ),
            Err(E::NeverFinishes {
                state: "ping".into(),
                fulfilment: "pickup"
            })
        );
    }

    #[test]
    fn errors_read_well() {
        let denied = TransitionDenied::RoleNotAllowed {
            role: Role::Driver,
            from: "ready".into(),
            to: "completed".into(),
        };
        assert_eq!(
            denied.to_string(),
            "a driver may not move an order from `ready` to `completed`"
        );
        let error = WorkflowError::Unreachable {
            state: "lost".into(),
        };
        assert_eq!(
            error.to_string(),
            "state `lost` can't be reached from the initial state"
        );
    }
}
