//! Act: what the plan allows. A fix is made under the resource's lock in the ledger (with
//! the event's claim marked ACTING first, so a retry after a crash knows), by the reactor's
//! `remediate`, which re-reads, writes, waits and proves, part by part.

use tokio::time::Instant;

use super::facts::Facts;
use super::{HandlerError, Run, FINISH_RESERVE, FIX_MINIMUM};
use crate::decide::{Judged, Plan};
use crate::finding::{Action, ActionKind, KeySummary, Status};
use crate::keys::KeyInfo;
use crate::ledger::LockError;
use crate::reactor::{Fix, FixEffect, FixError, Fixed, Observed, Protection, Reactor};
use crate::verdict::Verdict;

/// What acting did: the finding's action, and for each judged protection what happened to it.
pub(super) struct Acted {
    pub action: Action,
    /// One per judged protection, in order.
    pub parts: Vec<Part>,
    /// The names of the parts a proven fix left without a problem.
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

impl Part {
    fn of(action: ActionKind) -> Self {
        Part {
            action,
            key_after: None,
        }
    }
}

fn failing(j: &Judged) -> bool {
    j.verdict.status() != Status::Compliant
}

/// Every part's action: `kind` for the parts named, `alerted` for the other failing ones,
/// `none` for the rest.
fn parts(judged: &[Judged], changed: &[usize], kind: ActionKind) -> Vec<Part> {
    (0..judged.len())
        .map(|i| {
            Part::of(match (changed.contains(&i), failing(&judged[i])) {
                (true, _) => kind,
                (false, true) => ActionKind::Alerted,
                (false, false) => ActionKind::None,
            })
        })
        .collect()
}

/// Nothing happened to any part.
fn untouched(judged: &[Judged]) -> Vec<Part> {
    vec![Part::of(ActionKind::None); judged.len()]
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

fn acted(action: Action, parts: Vec<Part>) -> Acted {
    Acted {
        action,
        parts,
        fixed: Vec::new(),
        locked: false,
    }
}

pub(super) async fn act<R: Reactor>(
    reactor: &R,
    run: &Run<'_>,
    facts: &Facts,
    observed: &Observed<R::State>,
    plan: Plan,
) -> Result<Acted, HandlerError> {
    let judged = &facts.judged;
    let failing_parts: Vec<usize> = (0..judged.len()).filter(|&i| failing(&judged[i])).collect();
    match plan {
        Plan::Nothing(detail) => Ok(acted(Action::none(detail), untouched(judged))),
        Plan::Alert { why_no_fix } => {
            let detail = why_no_fix.unwrap_or_else(|| default_alert(facts));
            let mut action = Action::new(ActionKind::Alerted, Some(detail));
            action.steps = steps(reactor, observed, &failing_parts);
            Ok(acted(action, parts(judged, &[], ActionKind::Alerted)))
        }
        Plan::Fix {
            fixes,
            manual,
            dry_run: true,
        } => {
            let fixes: Vec<Fix> = fixes
                .iter()
                .map(|(part, key)| Fix {
                    part: *part,
                    key,
                    settings: &facts.account_settings,
                    event_id: &run.call.event_id,
                })
                .collect();
            let mut detail = reactor.describe_fix(observed, &fixes);
            still_open(&mut detail, &manual);
            let rest: Vec<usize> = manual.iter().map(|(i, _)| *i).collect();
            let mut action = Action::new(ActionKind::WouldRemediate, Some(detail));
            action.steps = steps(reactor, observed, &rest);
            let changed: Vec<usize> = fixes.iter().map(|f| f.part).collect();
            // A fix that stops rather than keys leaves a person steps to take; nothing was
            // stopped, so the dry run gives them as they are now (stopping included).
            if R::FIX_EFFECT != FixEffect::Keys {
                action.steps = steps(reactor, observed, &failing_parts);
            }
            Ok(acted(
                action,
                parts(judged, &changed, ActionKind::WouldRemediate),
            ))
        }
        Plan::Fix {
            fixes,
            manual,
            dry_run: false,
        } => fix(reactor, run, facts, observed, &fixes, &manual).await,
        Plan::Retry(reason) => Err(run.give_back(None, reason).await),
    }
}

fn default_alert(facts: &Facts) -> String {
    if facts.settings_error().is_some() {
        "Fix the settings document first: until then nothing is remediated".to_owned()
    } else if facts
        .judged
        .iter()
        .any(|j| matches!(j.verdict, Verdict::Error { .. }))
    {
        "Check the function's permissions in that account, then re-run the check".to_owned()
    } else {
        "Follow the steps to fix it by hand".to_owned()
    }
}

/// A partial fix names what it leaves for a person, and why.
fn still_open(detail: &mut String, manual: &[(usize, String)]) {
    if !manual.is_empty() {
        let why: Vec<&str> = manual.iter().map(|(_, why)| why.as_str()).collect();
        detail.push_str(&format!(" Still needs a person: {}.", why.join("; ")));
    }
}

/// Takes the lock, lets the reactor fix and prove each part, and says what happened to each.
async fn fix<R: Reactor>(
    reactor: &R,
    run: &Run<'_>,
    facts: &Facts,
    observed: &Observed<R::State>,
    fixes: &[(usize, Box<KeyInfo>)],
    manual: &[(usize, String)],
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
    let planned: Vec<&str> = fixes.iter().map(|(_, key)| key.arn.as_str()).collect();
    let locked = take_lock(run, arn, &planned.join(",")).await?;
    let fix_deadline: Instant = run.deadline - FINISH_RESERVE;
    let requested: Vec<Fix> = fixes
        .iter()
        .map(|(part, key)| Fix {
            part: *part,
            key,
            settings: &facts.account_settings,
            event_id: &run.call.event_id,
        })
        .collect();
    let results = reactor
        .remediate(scope, observed, &requested, fix_deadline)
        .await;

    // Nothing written anywhere, and a reason that may pass: the whole event is retried.
    let written = results.iter().any(|r| {
        !matches!(
            r,
            Err(FixError::Retry(_) | FixError::Changed(_) | FixError::Refused(_))
        )
    });
    if !written {
        if let Some(Err(FixError::Retry(error))) = results
            .iter()
            .find(|r| matches!(r, Err(FixError::Retry(_))))
        {
            return Err(run
                .give_back(arn.filter(|_| locked), error.to_string())
                .await);
        }
    }
    Ok(outcome(
        reactor, facts, observed, &requested, results, manual, locked,
    ))
}

/// Each part's result as the finding tells it: proven fixes `remediated` (with the key the
/// read-back proved, when the fix puts one in place), failed fixes `failed`, the rest
/// `alerted` with the reason.
fn outcome<R: Reactor>(
    reactor: &R,
    facts: &Facts,
    observed: &Observed<R::State>,
    requested: &[Fix<'_>],
    results: Vec<Result<Fixed, FixError>>,
    manual: &[(usize, String)],
    locked: bool,
) -> Acted {
    let judged = &facts.judged;
    let mut parts = parts(judged, &[], ActionKind::Alerted);
    let mut fixed = Vec::new();
    // What a person still does for parts a fix stopped rather than keyed.
    let mut left_steps = Vec::new();
    // What was done; what a person must do (and why); what failed; what changed meanwhile.
    let (mut done, mut open, mut errors, mut changed) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (fix, result) in requested.iter().zip(results) {
        let name = &judged[fix.part].name;
        match result {
            Ok(Fixed { detail, steps }) => {
                let keyed = R::FIX_EFFECT == FixEffect::Keys;
                parts[fix.part] = Part {
                    action: ActionKind::Remediated,
                    key_after: keyed.then(|| KeySummary::from_info(&fix.key.arn, fix.key)),
                };
                // A part whose writer was stopped still holds what it wrote: still a problem.
                if R::FIX_EFFECT != FixEffect::Contains {
                    fixed.push(name.clone());
                }
                left_steps.extend(steps);
                done.push(detail);
            }
            Err(FixError::Failed { error }) => {
                parts[fix.part] = Part::of(ActionKind::Failed);
                open.push(format!("{name}: the automatic fix was not proven; fix it by hand"));
                errors.push(format!("{name}: {error}"));
            }
            // Nothing is told for a part that changed: the event of that change is checked.
            Err(FixError::Changed(why)) => {
                parts[fix.part] = Part::of(ActionKind::None);
                changed.push(format!("{name}: {why}"));
            }
            Err(FixError::Refused(why)) => open.push(format!("{name}: no automatic fix: {why}")),
            Err(FixError::Retry(error)) => open.push(format!(
                "{name}: not fixed this time ({error}); the next event about it, or a re-run, fixes it"
            )),
        }
    }
    open.extend(manual.iter().map(|(_, why)| why.clone()));
    if done.is_empty() && errors.is_empty() && open.is_empty() {
        // Every part changed since it was judged: nothing to tell; the newer events will.
        return Acted {
            action: Action::none(Some(format!(
                "Not fixed: {}. Nothing was written; the event of that change is checked on its own.",
                changed.join("; ")
            ))),
            parts: untouched(judged),
            fixed,
            locked,
        };
    }
    let kind = match (errors.is_empty(), done.is_empty()) {
        (false, _) => ActionKind::Failed,
        (true, false) => ActionKind::Remediated,
        (true, true) => ActionKind::Alerted,
    };
    let mut detail = done.join(" ");
    for (label, items) in [
        ("Still needs a person", &open),
        ("Changed meanwhile, not written", &changed),
    ] {
        if !items.is_empty() {
            if !detail.is_empty() {
                detail.push(' ');
            }
            detail.push_str(&format!("{label}: {}.", items.join("; ")));
        }
    }
    let mut action = Action::new(kind, Some(detail));
    if !errors.is_empty() {
        action.error = Some(errors.join("; "));
    }
    // Steps for the parts that still need a person: left open, or a fix failed on them.
    let needs: Vec<usize> = (0..judged.len())
        .filter(|&i| matches!(parts[i].action, ActionKind::Alerted | ActionKind::Failed))
        .collect();
    action.steps = steps(reactor, observed, &needs);
    action.steps.extend(left_steps);
    Acted {
        action,
        parts,
        fixed,
        locked,
    }
}

/// The resource's lock, with the claim marked ACTING, when there is a ledger; a lock held by
/// another run, or a ledger that cannot be written, sends the event back to be retried.
async fn take_lock(run: &Run<'_>, arn: Option<&str>, planned: &str) -> Result<bool, HandlerError> {
    let (Some(entry), Some(arn)) = (&run.entry, arn) else {
        return Ok(false);
    };
    match entry.begin_fix(arn, planned, run.claim_until()).await {
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
