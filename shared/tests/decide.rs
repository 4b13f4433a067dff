//! decide and publication as tables: what was read -> what to do and whether to tell. No I/O.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use bedrock_cmk_guard::aws::AwsError;
use bedrock_cmk_guard::decide::{
    decide, fingerprint, judge, publication, status_after_fix, summarize, Case, Judged, Plan,
    Publication,
};
use bedrock_cmk_guard::finding::{ActionKind, Severity, Status};
use bedrock_cmk_guard::keys::{KeyEvidence, KeyInfo, KeyManager, KeyRef};
use bedrock_cmk_guard::ledger::{FixRecord, Published, ResourceRecord};
use bedrock_cmk_guard::reactor::{Protection, Subject};
use bedrock_cmk_guard::settings::{AccountSettings, Mode, SettingsError};
use bedrock_cmk_guard::verdict::Location;

const ACCOUNT: &str = "111122223333";
const CMK_ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";

fn at() -> Location {
    Location {
        account: ACCOUNT.into(),
        region: "us-east-1".into(),
        partition: "aws".into(),
    }
}

fn info(spec: &str, usage: &str) -> KeyInfo {
    KeyInfo {
        arn: format!("arn:aws:kms:us-east-1:{ACCOUNT}:key/{CMK_ID}"),
        key_id: CMK_ID.into(),
        account: ACCOUNT.into(),
        region: "us-east-1".into(),
        manager: KeyManager::Customer,
        state: "Enabled".into(),
        deletion_date: None,
        spec: Some(spec.into()),
        usage: Some(usage.into()),
    }
}

fn good_key() -> KeyEvidence {
    KeyEvidence::Described {
        reference: KeyRef::parse(CMK_ID).unwrap(),
        info: info("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"),
    }
}

fn unverified(retryable: bool) -> KeyEvidence {
    KeyEvidence::Unverified {
        reference: KeyRef::parse(CMK_ID).unwrap(),
        error: "kms:DescribeKey failed: ThrottlingException: slow down".into(),
        retryable,
    }
}

/// A DRAFT and published versions, judged with the given evidence (`None`: AWS-owned).
fn judged(draft: Option<KeyEvidence>, versions: &[Option<KeyEvidence>]) -> Vec<Judged> {
    let mut protections = vec![Protection {
        name: "DRAFT".into(),
        noun: "the guardrail's DRAFT".into(),
        kind: "bedrock",
        resource: None,
        subject: Subject::Key(None),
        no_fix: None,
    }];
    let mut evidence = vec![Some(draft.unwrap_or(KeyEvidence::AwsOwned))];
    for (i, v) in versions.iter().enumerate() {
        protections.push(Protection {
            name: format!("version {}", i + 1),
            noun: format!("version {} of the guardrail", i + 1),
            kind: "bedrock",
            resource: None,
            subject: Subject::Key(None),
            no_fix: Some("a published version cannot be changed".into()),
        });
        evidence.push(Some(v.clone().unwrap_or(KeyEvidence::AwsOwned)));
    }
    judge(&protections, &evidence, &AccountSettings::default(), &at())
}

fn fixes(n: usize) -> Vec<FixRecord> {
    (0..n)
        .map(|i| FixRecord {
            at: 1_000 + i as u64,
            event_id: format!("e{i}"),
            actor: format!(
                "arn:aws:sts::{ACCOUNT}:assumed-role/terraform/run-{}",
                i % 2
            ),
        })
        .collect()
}

/// A logging configuration's destinations: a log group and a bucket, both unprotected.
fn destinations() -> Vec<Judged> {
    let part = |name: &str, kind: &'static str| Protection {
        name: name.into(),
        noun: format!("the {name}"),
        kind,
        resource: Some(name.into()),
        subject: Subject::Unprotected {
            problem: bedrock_cmk_guard::verdict::KeyProblem::AwsOwned,
            reason: format!("the {name} is not on a customer-managed key"),
        },
        no_fix: None,
    };
    let protections = [part("log group", "logs"), part("bucket", "s3")];
    judge(
        &protections,
        &[None, None],
        &AccountSettings::default(),
        &at(),
    )
}

struct Row {
    name: &'static str,
    judged: Vec<Judged>,
    mode: Mode,
    /// The remediation key for every kind (`None`: the settings name none).
    remediation: Option<KeyEvidence>,
    /// The remediation keys per kind, when they differ.
    per_kind: Vec<(&'static str, KeyEvidence)>,
    preflight: Vec<(usize, Result<(), String>)>,
    busy: Option<&'static str>,
    fixes: usize,
    settings_error: bool,
}

fn row(name: &'static str, judged: Vec<Judged>, mode: Mode) -> Row {
    Row {
        name,
        judged,
        mode,
        remediation: Some(good_key()),
        per_kind: Vec::new(),
        preflight: Vec::new(),
        busy: None,
        fixes: 0,
        settings_error: false,
    }
}

fn plan_of(r: &Row) -> Plan {
    let settings = AccountSettings::default();
    let error = SettingsError::Missing {
        parameter: "/cmk-guard/settings".into(),
    };
    let recent = fixes(r.fixes);
    let remediation: BTreeMap<&'static str, KeyEvidence> = if r.per_kind.is_empty() {
        r.remediation
            .iter()
            .flat_map(|e| ["bedrock", "logs", "s3"].map(|k| (k, e.clone())))
            .collect()
    } else {
        r.per_kind.iter().cloned().collect()
    };
    let preflight: BTreeMap<usize, Result<(), String>> = r.preflight.iter().cloned().collect();
    decide(&Case {
        judged: &r.judged,
        mode: r.mode,
        settings: &settings,
        settings_error: r.settings_error.then_some(&error),
        at: &at(),
        remediation: &remediation,
        preflight: &preflight,
        busy: r.busy,
        recent_fixes: &recent,
    })
}

#[test]
fn the_mode_and_the_evidence_decide_the_plan() {
    use Mode::*;
    // A fix of exactly these parts (with the good key), the others left to a person.
    let fix = |parts: Vec<usize>, dry_run: bool| {
        move |p: &Plan| match p {
            Plan::Fix {
                fixes, dry_run: d, ..
            } => {
                *d == dry_run
                    && fixes.iter().map(|(i, _)| *i).collect::<Vec<_>>() == parts
                    && fixes
                        .iter()
                        .all(|(_, k)| k.spec.as_deref() == Some("SYMMETRIC_DEFAULT"))
            }
            _ => false,
        }
    };
    let manual = |needle: &'static str| move |p: &Plan| matches!(p, Plan::Fix { manual, .. } if manual.iter().any(|(_, w)| w.contains(needle)));
    let alert = |needle: &'static str| move |p: &Plan| matches!(p, Plan::Alert { why_no_fix: Some(w) } if w.contains(needle));
    let retry =
        |needle: &'static str| move |p: &Plan| matches!(p, Plan::Retry(w) if w.contains(needle));
    type Check = Box<dyn Fn(&Plan) -> bool>;
    let rows: Vec<(Row, Check)> = vec![
        (
            row("compliant", judged(Some(good_key()), &[]), Remediate),
            Box::new(|p| *p == Plan::Nothing(None)),
        ),
        (
            row("off", judged(None, &[]), Off),
            Box::new(|p| matches!(p, Plan::Nothing(Some(d)) if d.contains("mode is off"))),
        ),
        (
            row("alert", judged(None, &[]), Alert),
            Box::new(|p| *p == Plan::Alert { why_no_fix: None }),
        ),
        (
            row("remediate the DRAFT", judged(None, &[]), Remediate),
            Box::new(fix(vec![0], false)),
        ),
        (
            row("dry-run the DRAFT", judged(None, &[]), DryRun),
            Box::new(fix(vec![0], true)),
        ),
        (
            row(
                "partial: only the DRAFT is fixable",
                judged(None, &[Some(good_key()), None]),
                Remediate,
            ),
            Box::new(fix(vec![0], false)),
        ),
        (
            row(
                "only a version fails",
                judged(Some(good_key()), &[None]),
                Remediate,
            ),
            Box::new(alert("version 1: a published version cannot be changed")),
        ),
        (
            Row {
                remediation: None,
                ..row("no remediation key", judged(None, &[]), Remediate)
            },
            Box::new(alert("no remediationKeys entry for us-east-1")),
        ),
        (
            Row {
                per_kind: vec![("logs", good_key())],
                ..row("a key for logs only", destinations(), Remediate)
            },
            Box::new(move |p| {
                fix(vec![0], false)(p)
                    && manual("bucket: the settings name no remediationKeys entry for us-east-1 (s3 parts)")(p)
            }),
        ),
        (
            Row {
                preflight: vec![(
                    1,
                    Err("the key policy does not let bedrock.amazonaws.com use it".into()),
                )],
                ..row(
                    "a key the bucket's service cannot use",
                    destinations(),
                    Remediate,
                )
            },
            Box::new(move |p| {
                fix(vec![0], false)(p) && manual("bucket: the key policy does not let")(p)
            }),
        ),
        (
            Row {
                preflight: vec![
                    (0, Err("no logs statement".into())),
                    (1, Err("no bedrock statement".into())),
                ],
                ..row("no service can use the key", destinations(), DryRun)
            },
            Box::new(alert(
                "log group: no logs statement; bucket: no bedrock statement",
            )),
        ),
        (
            Row {
                remediation: Some(KeyEvidence::Described {
                    reference: KeyRef::parse(CMK_ID).unwrap(),
                    info: info("RSA_2048", "SIGN_VERIFY"),
                }),
                ..row("asymmetric remediation key", judged(None, &[]), Remediate)
            },
            Box::new(alert("cannot encrypt data")),
        ),
        (
            Row {
                remediation: Some(unverified(true)),
                ..row("remediation key throttled", judged(None, &[]), Remediate)
            },
            Box::new(retry("remediation key could not be verified")),
        ),
        (
            Row {
                busy: Some("the guardrail is UPDATING"),
                ..row("busy", judged(None, &[]), Remediate)
            },
            Box::new(retry("UPDATING")),
        ),
        (
            Row {
                busy: Some("the guardrail is UPDATING"),
                ..row("busy, dry-run", judged(None, &[]), DryRun)
            },
            Box::new(fix(vec![0], true)),
        ),
        (
            Row {
                fixes: 3,
                ..row("fix budget spent", judged(None, &[]), Remediate)
            },
            Box::new(alert("3 times in the last 24 hours (maxFixesPerDay = 3)")),
        ),
        (
            Row {
                fixes: 2,
                ..row("fix budget not yet spent", judged(None, &[]), Remediate)
            },
            Box::new(fix(vec![0], false)),
        ),
        (
            row("key throttled", judged(Some(unverified(true)), &[]), Alert),
            Box::new(retry("ThrottlingException")),
        ),
        (
            row(
                "key unreadable for good",
                judged(Some(unverified(false)), &[]),
                Remediate,
            ),
            Box::new(alert("DRAFT: could not verify")),
        ),
        (
            Row {
                settings_error: true,
                ..row("broken settings", judged(None, &[]), Remediate)
            },
            Box::new(|p| *p == Plan::Alert { why_no_fix: None }),
        ),
        (
            Row {
                settings_error: true,
                ..row(
                    "broken settings, keys fine",
                    judged(Some(good_key()), &[]),
                    Alert,
                )
            },
            Box::new(|p| *p == Plan::Alert { why_no_fix: None }),
        ),
    ];
    for (r, check) in rows {
        let plan = plan_of(&r);
        assert!(check(&plan), "{}: got {plan:?}", r.name);
    }
}

#[test]
fn the_budget_alert_names_who_keeps_undoing_the_fix() {
    let r = Row {
        fixes: 3,
        ..row("budget", judged(None, &[]), Mode::Remediate)
    };
    let Plan::Alert {
        why_no_fix: Some(why),
    } = plan_of(&r)
    else {
        panic!("expected an alert")
    };
    assert!(
        why.contains(
            "assumed-role/terraform/run-0, arn:aws:sts::111122223333:assumed-role/terraform/run-1"
        ),
        "{why}"
    );
}

#[test]
fn an_unreadable_part_is_an_error_and_a_throttled_one_a_retry() {
    let protections = [Protection {
        name: "published versions".into(),
        noun: "the guardrail's published versions".into(),
        kind: "bedrock",
        resource: None,
        subject: Subject::Unreadable(AwsError::new(
            "bedrock:ListGuardrails",
            "AccessDeniedException: no",
            false,
        )),
        no_fix: None,
    }];
    let j = judge(&protections, &[None], &AccountSettings::default(), &at());
    assert_eq!(j[0].verdict.status(), Status::Error);
    assert!(!j[0].retryable);
    assert!(j[0]
        .verdict
        .reason()
        .contains("could not read the guardrail's published versions"));
    let throttled = [Protection {
        subject: Subject::Unreadable(AwsError::new(
            "bedrock:ListGuardrails",
            "ThrottlingException",
            true,
        )),
        ..protections[0].clone()
    }];
    assert!(judge(&throttled, &[None], &AccountSettings::default(), &at())[0].retryable);
}

#[test]
fn the_resource_is_as_bad_as_its_worst_part() {
    let (status, severity, reason) = summarize(&judged(Some(good_key()), &[]), "the guardrail");
    assert_eq!((status, severity), (Status::Compliant, Severity::Info));
    assert!(reason.contains("(Enabled, allowed)"), "{reason}");

    let (status, severity, reason) = summarize(
        &judged(Some(good_key()), &[Some(good_key()), None]),
        "the guardrail",
    );
    assert_eq!((status, severity), (Status::NonCompliant, Severity::Medium));
    assert!(
        reason.starts_with("1 of 3 parts fails: version 2 of the guardrail names no KMS key"),
        "{reason}"
    );

    // A proven problem outranks one that could not be verified.
    let (status, severity, reason) =
        summarize(&judged(Some(unverified(false)), &[None]), "the guardrail");
    assert_eq!((status, severity), (Status::NonCompliant, Severity::High));
    assert!(reason.starts_with("2 of 2 parts fail"), "{reason}");
}

#[test]
fn a_fix_leaves_the_state_of_what_it_did_not_fix() {
    let j = judged(None, &[None]);
    let none: Vec<String> = Vec::new();
    let draft = vec!["DRAFT".to_owned()];
    assert_eq!(status_after_fix(&j, &none), Status::NonCompliant);
    assert_eq!(status_after_fix(&j, &draft), Status::NonCompliant);
    assert_eq!(
        status_after_fix(&judged(None, &[]), &draft),
        Status::Compliant
    );
    let before = fingerprint(Status::NonCompliant, &j, &none);
    let after = fingerprint(Status::NonCompliant, &j, &draft);
    assert_ne!(before, after, "the fixed part left the state");
    assert!(
        after.contains("version 1") && !after.contains("\"DRAFT\""),
        "{after}"
    );
}

#[test]
fn a_problem_is_told_once_again_after_repeat_hours_and_its_end_is_told() {
    let state = "S1";
    let published = |status, fingerprint: &str, at| ResourceRecord {
        published: Some(Published {
            status,
            fingerprint: fingerprint.into(),
            at,
            event_id: "first".into(),
        }),
        ..ResourceRecord::default()
    };
    let now = 100_000;
    let hour = 3600;
    let same = published(Status::NonCompliant, state, now - hour);
    let old = published(Status::NonCompliant, state, now - 25 * hour);
    let other = published(Status::NonCompliant, "S0", now - hour);
    let fixed_before = published(Status::Compliant, "C", now - hour);
    let fresh = ResourceRecord::default();
    use ActionKind::*;
    use Publication::*;
    type Expect = Box<dyn Fn(&Publication) -> bool>;
    type Row<'a> = (
        &'a str,
        ActionKind,
        Status,
        Option<&'a ResourceRecord>,
        Mode,
        Expect,
    );
    let cases: Vec<Row> = vec![
        (
            "no ledger: an alert is told",
            Alerted,
            Status::NonCompliant,
            Option::None,
            Mode::Alert,
            Box::new(|p| *p == Tell),
        ),
        (
            "no ledger: nothing to say",
            None,
            Status::Compliant,
            Option::None,
            Mode::Alert,
            Box::new(|p| *p == Quiet(Option::None)),
        ),
        (
            "first report",
            Alerted,
            Status::NonCompliant,
            Some(&fresh),
            Mode::Alert,
            Box::new(|p| *p == Tell),
        ),
        (
            "same problem within the hours",
            Alerted,
            Status::NonCompliant,
            Some(&same),
            Mode::Alert,
            Box::new(
                |p| matches!(p, Quiet(Some(why)) if why.contains("reported 60 min ago (event first)") && why.contains("24 h")),
            ),
        ),
        (
            "same problem after the hours",
            Alerted,
            Status::NonCompliant,
            Some(&old),
            Mode::Alert,
            Box::new(|p| *p == Tell),
        ),
        (
            "a changed problem",
            Alerted,
            Status::NonCompliant,
            Some(&other),
            Mode::Alert,
            Box::new(|p| *p == Tell),
        ),
        (
            "dry-run repeats are quiet too",
            WouldRemediate,
            Status::NonCompliant,
            Some(&same),
            Mode::DryRun,
            Box::new(|p| matches!(p, Quiet(Some(_)))),
        ),
        (
            "a fix is always told",
            Remediated,
            Status::NonCompliant,
            Some(&same),
            Mode::Remediate,
            Box::new(|p| *p == Tell),
        ),
        (
            "a failed fix is always told",
            Failed,
            Status::NonCompliant,
            Some(&same),
            Mode::Remediate,
            Box::new(|p| *p == Tell),
        ),
        (
            "the end of a problem",
            None,
            Status::Compliant,
            Some(&same),
            Mode::Alert,
            Box::new(|p| matches!(p, Resolved(last) if last.event_id == "first")),
        ),
        (
            "compliant and told so before",
            None,
            Status::Compliant,
            Some(&fixed_before),
            Mode::Alert,
            Box::new(|p| *p == Quiet(Option::None)),
        ),
        (
            "mode off",
            Alerted,
            Status::NonCompliant,
            Some(&fresh),
            Mode::Off,
            Box::new(|p| *p == Quiet(Option::None)),
        ),
    ];
    for (name, action, status, record, mode, check) in cases {
        let p = publication(action, status, state, mode, record, 24.0, now);
        assert!(check(&p), "{name}: got {p:?}");
    }
}
