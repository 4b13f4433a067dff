//! Act: what the plan allows. A fix is made under the resource's lock in the ledger (with
//! the event's claim marked ACTING first, so a retry after a crash knows), by the reactor's
//! `remediate`, which re-reads, writes, waits and proves.

use tokio::time::Instant;

use super::facts::Facts;
use super::{HandlerError, Run, FINISH_RESERVE, FIX_MINIMUM};
use crate::decide::{Judged, Plan};
use crate::finding::{Action, ActionKind, KeySummary, Status};
use crate::keys::KeyInfo;
use crate::ledger::LockError;
use crate::reactor::{FixError, Fixed, Observed, Protection, Reactor};
use crate::verdict::Verdict;

/// What acting did: the finding's action, and for each judged protection what happened to it.
pub(super) struct Acted {
    pub action: Action,
    /// One per judged protection, in order.
    pub parts: Vec<Part>,
    /// The names of the parts a proven fix changed.
    pub fixed: Vec<String>,
    /// This run holds the resource's lock (to release when recording the outcome).
    pub locked: bool,
}

/// What happened to one part.
#[derive(Clone)]
pub(super) struct Part {
    pub action: ActionKind,
    /// After a fix: the key the read-back proved.
    pub key_after: Option<KeySummary>,
}

fn failing(j: &Judged) -> bool {
    j.verdict.status() != Status::Compliant
}

/// Every part's action: `changed` for the parts named, `alerted` for the other failing
/// ones, `none` for the rest.
fn parts(judged: &[Judged], changed: &[usize], kind: ActionKind) -> Vec<Part> {
    (0..judged.len())
        .map(|i| Part {
            action: match (changed.contains(&i), failing(&judged[i])) {
                (true, _) => kind,
                (false, true) => ActionKind::Alerted,
                (false, false) => ActionKind::None,
            },
            key_after: None,
        })
        .collect()
}

/// Nothing happened to any part.
fn untouched(judged: &[Judged]) -> Vec<Part> {
    vec![
        Part {
            action: ActionKind::None,
            key_after: None,
        };
        judged.len()
    ]
}

/// The manual steps for the parts named (none when there are none).
fn steps<R: Reactor>(reactor: &R, observed: &Observed<R::State>, indexes: &[usize]) -> Vec<String> {
    let parts: Vec<&Protection> = indexes.iter().map(|&i| &observed.protections[i]).collect();
    if parts.is_empty() {
        Vec::new()
    } else {
        reactor.manual_steps(observed, &parts)
    }
}

pub(super) async fn act<R: Reactor>(
    reactor: &R,
    run: &Run<'_>,
    facts: &Facts,
    observed: &Observed<R::State>,
    judged: &[Judged],
    plan: Plan,
) -> Result<Acted, HandlerError> {
    let failing_parts: Vec<usize> = (0..judged.len()).filter(|&i| failing(&judged[i])).collect();
    let acted = |action: Action, parts: Vec<Part>| Acted {
        action,
        parts,
        fixed: Vec::new(),
        locked: false,
    };
    match plan {
        Plan::Nothing(detail) => Ok(acted(Action::none(detail), untouched(judged))),
        Plan::Alert { why_no_fix } => {
            let detail = why_no_fix.unwrap_or_else(|| default_alert(facts, judged));
            let mut action = Action::new(ActionKind::Alerted, Some(detail));
            action.steps = steps(reactor, observed, &failing_parts);
            Ok(acted(action, parts(judged, &[], ActionKind::Alerted)))
        }
        Plan::Fix {
            key,
            parts: fixable,
            dry_run: true,
        } => {
            let rest = others(&failing_parts, &fixable);
            let mut detail = reactor.describe_fix(observed, &key);
            still_open(&mut detail, judged, &rest);
            let mut action = Action::new(ActionKind::WouldRemediate, Some(detail));
            action.steps = steps(reactor, observed, &rest);
            Ok(acted(
                action,
                parts(judged, &fixable, ActionKind::WouldRemediate),
            ))
        }
        Plan::Fix {
            key,
            parts: fixable,
            dry_run: false,
        } => fix(reactor, run, facts, observed, judged, &key, &fixable).await,
        Plan::Retry(reason) => Err(run.give_back(None, reason).await),
    }
}

fn default_alert(facts: &Facts, judged: &[Judged]) -> String {
    if facts.settings_error().is_some() {
        "Fix the settings document first: until then nothing is remediated".to_owned()
    } else if judged
        .iter()
        .any(|j| matches!(j.verdict, Verdict::Error { .. }))
    {
        "Check the function's permissions in that account, then re-run the check".to_owned()
    } else {
        "Follow the steps to fix it by hand".to_owned()
    }
}

fn others(all: &[usize], but: &[usize]) -> Vec<usize> {
    all.iter().copied().filter(|i| !but.contains(i)).collect()
}

/// A partial fix names what it leaves for a person.
fn still_open(detail: &mut String, judged: &[Judged], rest: &[usize]) {
    if !rest.is_empty() {
        let names: Vec<&str> = rest.iter().map(|&i| judged[i].name.as_str()).collect();
        detail.push_str(&format!(" Still needs a person: {}.", names.join(", ")));
    }
}

/// Takes the lock, lets the reactor fix and prove, and says what happened to each part.
async fn fix<R: Reactor>(
    reactor: &R,
    run: &Run<'_>,
    facts: &Facts,
    observed: &Observed<R::State>,
    judged: &[Judged],
    key: &KeyInfo,
    fixable: &[usize],
) -> Result<Acted, HandlerError> {
    let Ok(scope) = &facts.scope else {
        let reason = "no credentials for the resource's account".to_owned();
        return Err(run.give_back(None, reason).await);
    };
    if run.left() < FIX_MINIMUM + FINISH_RESERVE {
        let reason = format!(
            "only {:.1} s left before the deadline: not enough to fix and prove it",
            run.left().as_secs_f64()
        );
        return Err(run.give_back(None, reason).await);
    }
    let arn = observed.resource.arn.as_deref();
    let locked = take_lock(run, arn, key).await?;
    let fix_deadline: Instant = run.deadline - FINISH_RESERVE;
    let result = reactor.remediate(scope, observed, key, fix_deadline).await;

    let failing_parts: Vec<usize> = (0..judged.len()).filter(|&i| failing(&judged[i])).collect();
    let rest = others(&failing_parts, fixable);
    let acted = |action: Action, kind: ActionKind| Acted {
        action,
        parts: parts(judged, fixable, kind),
        fixed: Vec::new(),
        locked,
    };
    let with_steps = |mut action: Action, indexes: &[usize]| {
        action.steps = steps(reactor, observed, indexes);
        action
    };
    Ok(match result {
        Ok(Fixed {
            mut detail,
            parts: fixed,
        }) => {
            still_open(&mut detail, judged, &rest);
            let after = KeySummary::from_info(&key.arn, key);
            let parts = judged
                .iter()
                .map(|j| match (fixed.contains(&j.name), failing(j)) {
                    (true, _) => Part {
                        action: ActionKind::Remediated,
                        key_after: Some(after.clone()),
                    },
                    (false, failing) => Part {
                        action: if failing {
                            ActionKind::Alerted
                        } else {
                            ActionKind::None
                        },
                        key_after: None,
                    },
                })
                .collect();
            let action = with_steps(Action::new(ActionKind::Remediated, Some(detail)), &rest);
            Acted {
                action,
                parts,
                fixed,
                locked,
            }
        }
        Err(FixError::Retry(error)) => {
            return Err(run.give_back(arn.filter(|_| locked), error.to_string()).await)
        }
        // Nothing is told either: the event of that change is.
        Err(FixError::Changed(why)) => Acted {
            action: Action::none(Some(format!(
                "Not fixed: {why}. Nothing was written; the event of that change is checked on its own."
            ))),
            parts: untouched(judged),
            fixed: Vec::new(),
            locked,
        },
        Err(FixError::Refused(why)) => acted(
            with_steps(
                Action::new(ActionKind::Alerted, Some(format!("No automatic fix: {why}"))),
                &failing_parts,
            ),
            ActionKind::Alerted,
        ),
        Err(FixError::Failed { error }) => {
            let mut action = with_steps(
                Action::new(
                    ActionKind::Failed,
                    Some("The automatic fix was not proven; fix it by hand".to_owned()),
                ),
                &failing_parts,
            );
            action.error = Some(error);
            acted(action, ActionKind::Failed)
        }
    })
}

/// The resource's lock, with the claim marked ACTING, when there is a ledger; a lock held by
/// another run, or a ledger that cannot be written, sends the event back to be retried.
async fn take_lock(run: &Run<'_>, arn: Option<&str>, key: &KeyInfo) -> Result<bool, HandlerError> {
    let (Some(entry), Some(arn)) = (&run.entry, arn) else {
        return Ok(false);
    };
    match entry.begin_fix(arn, &key.arn, run.claim_until()).await {
        Ok(()) => Ok(true),
        Err(LockError::Held) => {
            let reason = "another invocation is fixing this resource".to_owned();
            Err(run.give_back(None, reason).await)
        }
        Err(e) => {
            let reason = format!("could not take the resource's lock: {e}");
            Err(run.give_back(None, reason).await)
        }
    }
}
