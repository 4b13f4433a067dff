//! What lets a team leave the guard in remediate mode at night, one test per way it could
//! mislead or lose work: fixes that never undo someone's edit and are proven whole, fixes
//! that are always reported, retries that are never blocked, "fixed" that never claims too
//! much, one alert per problem and one when it is over, keys that cannot work, settings
//! anomalies, members the SDK does not know, transient errors, and the smaller holes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use aws_sdk_bedrock::types::*;
use bedrock_cmk_guard::finding::{ActionKind, Status};
use bedrock_cmk_guard::pipeline::{handle, HandlerError, Options};
use bedrock_cmk_guard::raw::differences;
use cmk_guard_tests::{again, by, event, remediate_with, Account, World, REGION, SETTINGS};
use serde_json::json;
use tokio::time::Instant;

const TERRAFORM: &str = "arn:aws:sts::111122223333:assumed-role/terraform-apply/pipeline";

/// Someone's UpdateGuardrail: the whole DRAFT as they send it, without a key.
async fn update_without_key(a: &Account, id: &str, with_topic: bool) {
    let mut update = a
        .bedrock
        .update_guardrail()
        .guardrail_identifier(id)
        .name(a.draft(id).await.name())
        .blocked_input_messaging("blocked")
        .blocked_outputs_messaging("blocked");
    if with_topic {
        update = update.topic_policy_config(
            GuardrailTopicPolicyConfig::builder()
                .topics_config(
                    GuardrailTopicConfig::builder()
                        .name("legal-advice")
                        .definition("Telling users what the law says about their case.")
                        .r#type(GuardrailTopicType::Deny)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        );
    }
    update.send().await.unwrap();
}

async fn set_key(a: &Account, id: &str, key: &str) {
    let d = a.draft(id).await;
    a.bedrock
        .update_guardrail()
        .guardrail_identifier(id)
        .name(d.name())
        .blocked_input_messaging(d.blocked_input_messaging())
        .blocked_outputs_messaging(d.blocked_outputs_messaging())
        .kms_key_id(key)
        .send()
        .await
        .unwrap();
}

/// The event went back to the Lambda error path (to be retried), saying why.
async fn expect_retry(w: &World, e: &serde_json::Value, why: &str) {
    match w.try_run(e).await {
        Err(HandlerError::Retry { reason, .. }) => assert!(reason.contains(why), "{reason}"),
        other => panic!("expected a retry ({why}), got {other:?}"),
    }
}

fn count(calls: &[String], suffix: &str) -> usize {
    calls.iter().filter(|c| c.ends_with(suffix)).count()
}

// ------------------------------------------------------------------- 1. a fix undoing an edit

/// Two events about one guardrail: CreateGuardrail is judged, then (while its fix is on its
/// way) someone's UpdateGuardrail adds a denied topic. The older snapshot must not land last.
#[tokio::test]
async fn a_fix_never_writes_back_a_snapshot_older_than_the_guardrail() {
    let a = Account::new("older-snapshot").await;
    let key = a.cmk(None).await;
    let w = World::new_in(a, Some(remediate_with(&key))).await;
    let a = &w.account;
    let (id, arn) = a.guardrail("racing", None).await;
    let create = event("CreateGuardrail.json", &a.id, &arn);
    // The create event's run is slow to describe the remediation key: the edit lands between
    // its read and its write.
    a.emulate(
        json!({"faults": [{"operation": "kms:DescribeKey", "delaySeconds": 1.0, "count": 1}]}),
    );
    let (first, ()) = tokio::join!(w.run(&create), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        update_without_key(a, &id, true).await;
    });
    assert_eq!(first.action.kind, ActionKind::None, "{:?}", first.action);
    let detail = first.action.detail.clone().unwrap();
    assert!(
        detail.contains("changed after it was judged") && detail.contains("topicPolicy"),
        "{detail}"
    );
    assert_eq!(
        count(&a.calls(), "UpdateGuardrail"),
        1,
        "only the edit was written"
    );

    // The edit's own event is judged on the newest DRAFT and fixed, topic and all.
    let update = event("UpdateGuardrail.json", &a.id, &arn);
    let second = w.run(&update).await;
    assert_eq!(
        second.action.kind,
        ActionKind::Remediated,
        "{:?}",
        second.action
    );
    let draft = a.draft(&id).await;
    assert_eq!(draft.kms_key_arn(), Some(key.as_str()));
    assert_eq!(
        draft.topic_policy().unwrap().topics()[0].name(),
        "legal-advice",
        "the edit survived"
    );
    let messages = w.messages().await;
    assert_eq!(messages.len(), 1, "one message: the fix");
    assert_eq!(messages[0].action.kind, ActionKind::Remediated);
}

/// The read-back proves the whole guardrail, not only the key: built from the botocore model
/// with every member set, the raw GetGuardrail JSON before and after differs only in the key,
/// updatedAt and status.
#[tokio::test]
async fn a_fix_changes_nothing_but_the_key_member_for_member() {
    let a = Account::new("every-member").await;
    let key = a.cmk(None).await;
    let w = World::new_in(a, Some(remediate_with(&key))).await;
    let a = &w.account;
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/guardrails/every-member.json"),
    )
    .unwrap()
    .replace("ACCOUNT", &a.id);
    let (id, arn) = a.raw_guardrail(&serde_json::from_str(&text).unwrap());
    let tags = a.tags(&arn).await;
    let before = a.raw_draft(&id);
    // The fix waits until the update settles.
    a.emulate(json!({"guardrailTransitionSeconds": 0.3}));

    let f = w.run(&event("CreateGuardrail.json", &a.id, &arn)).await;
    assert_eq!(f.action.kind, ActionKind::Remediated, "{:?}", f.action);
    let after = a.raw_draft(&id);
    assert_eq!(after["status"], "READY");
    assert_eq!(after["kmsKeyArn"], json!(key));
    assert_eq!(
        differences(&before, &after, &[]),
        ["kmsKeyArn (added)", "updatedAt"],
        "before: {before:#}\nafter: {after:#}"
    );
    assert_eq!(a.tags(&arn).await, tags);
    assert!(f
        .action
        .detail
        .unwrap()
        .contains("every other member as it was"));
}

// ---------------------------------------------------------------- 2. a fix that goes unreported

#[tokio::test]
async fn a_fix_whose_report_failed_is_reported_by_the_retry() {
    let a = Account::new("publish-fails").await;
    let key = a.cmk(None).await;
    let table = a.state_table().await;
    let mut w = World::new_in(a, Some(remediate_with(&key))).await;
    w.env.state_table = Some(table);
    let a = &w.account;
    let (id, arn) = a.guardrail("unreported", None).await;
    let e = event("CreateGuardrail.json", &a.id, &arn);
    a.emulate(json!({"faults": [{"operation": "sns:Publish", "code": "InternalError", "status": 500, "count": 1}]}));

    match w.try_run(&e).await {
        Err(HandlerError::Publish { finding, .. }) => assert!(finding.contains("remediated")),
        other => panic!("expected a publish failure, got {other:?}"),
    }
    assert_eq!(
        a.draft(&id).await.kms_key_arn(),
        Some(key.as_str()),
        "the fix happened"
    );

    // Lambda retries the event: the stored finding is told, nothing is fixed or judged twice.
    let retried = w.run(&e).await;
    assert_eq!(retried.action.kind, ActionKind::Remediated);
    assert_eq!(
        retried.status,
        Status::NonCompliant,
        "what was found, as first reported"
    );
    let messages = w.messages().await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0], retried);
    assert_eq!(count(&a.calls(), "UpdateGuardrail"), 1);

    // A third delivery is a duplicate; the fix's own event stays silent.
    assert_eq!(w.run(&e).await.action.kind, ActionKind::None);
    let own = by(
        event("UpdateGuardrail.json", &a.id, &arn),
        "arn:aws:sts::1:assumed-role/bedrock-cmk-guard/guardrails",
    );
    assert_eq!(w.run(&own).await.status, Status::Compliant);
    assert!(w.messages().await.is_empty());
}

// ---------------------------------------------------------- 3. a crashed run and its retry

#[tokio::test]
async fn a_run_that_dies_mid_fix_does_not_block_its_retry_which_reports_the_fix() {
    let (w, key) = World::remediating("crash").await;
    let a = &w.account;
    let (id, arn) = a.guardrail("crashing", None).await;
    // Updates take 2 s to settle: the run dies while it waits for READY.
    a.emulate(json!({"guardrailTransitionSeconds": 2.0}));
    let e = event("CreateGuardrail.json", &a.id, &arn);
    // Time enough to begin a fix even on a busy machine (a fix needs 7 s left; the whole
    // suite runs at once, and reading the resource and the ledger can take seconds then).
    let deadline = Instant::now() + Duration::from_secs(20);
    let options = Options {
        deadline: Some(deadline),
        ..Options::default()
    };
    let ctx = a.context(w.env.clone());
    let mut run = Box::pin(handle(&w.reactor, &ctx, &e, &options));
    // The run dies right after its write, while it waits for the guardrail to settle.
    loop {
        tokio::select! {
            finished = &mut run => panic!("the run should still be waiting: {finished:?}"),
            () = tokio::time::sleep(Duration::from_millis(20)) => {
                if count(&a.calls(), "UpdateGuardrail") == 1 {
                    break;
                }
            }
        }
    }
    drop(run);
    assert_eq!(
        a.draft(&id).await.kms_key_arn(),
        Some(key.as_str()),
        "it had written"
    );

    // A retry while the dead run's time could still be running is turned back ...
    match w.try_run(&e).await {
        Err(HandlerError::InProgress(_)) => {}
        other => panic!("expected InProgress, got {other:?}"),
    }
    // ... and one after its deadline is handled, and tells what the dead run did.
    // The claim lapses 3 s after the deadline (the ledger counts whole seconds).
    tokio::time::sleep_until(deadline + Duration::from_millis(4500)).await;
    let f = w.run(&e).await;
    assert_eq!(f.status, Status::Compliant, "{}", f.reason);
    assert_eq!(f.action.kind, ActionKind::Remediated, "{:?}", f.action);
    assert!(
        f.action
            .detail
            .as_deref()
            .unwrap()
            .contains("interrupted while fixing"),
        "{:?}",
        f.action.detail
    );
    let messages = w.messages().await;
    assert_eq!(messages.len(), 1, "the fix is reported exactly once");
    assert_eq!(count(&a.calls(), "UpdateGuardrail"), 1);
    // ... and counts for the fix budget like any other.
    let record = a
        .dynamodb
        .get_item()
        .table_name(w.env.state_table.as_deref().unwrap())
        .key(
            "id",
            aws_sdk_dynamodb::types::AttributeValue::S(format!(
                "resource#bedrock-guardrail-cmk#{arn}"
            )),
        )
        .send()
        .await
        .unwrap();
    let fixes = record.item().unwrap()["fixes"].as_s().unwrap().clone();
    assert!(
        fixes.contains(e["detail"]["eventID"].as_str().unwrap()),
        "{fixes}"
    );
}

// ------------------------------------------------------------- 4. "fixed" claiming too much

#[tokio::test]
async fn published_versions_are_judged_and_a_partial_fix_says_what_is_still_open() {
    let (w, key) = World::remediating("versions").await;
    let a = &w.account;
    let (id, arn) = a.guardrail("versioned", None).await;
    assert_eq!(a.publish_version(&id).await, "1");

    let f = w.run(&event("CreateGuardrail.json", &a.id, &arn)).await;
    assert_eq!(f.action.kind, ActionKind::Remediated);
    let parts: Vec<(&str, Status, ActionKind)> = f
        .protections
        .iter()
        .map(|p| (p.name.as_str(), p.verdict, p.action))
        .collect();
    assert_eq!(
        parts,
        [
            ("DRAFT", Status::NonCompliant, ActionKind::Remediated),
            ("version 1", Status::NonCompliant, ActionKind::Alerted),
        ]
    );
    assert_eq!(
        f.protections[0].key_after.as_ref().unwrap().arn.as_deref(),
        Some(key.as_str())
    );
    assert!(!f.protections[1].fixable);
    let detail = f.action.detail.clone().unwrap();
    assert!(
        detail.contains("Still needs a person: version 1"),
        "{detail}"
    );
    let steps = f.action.steps.join("\n");
    for needle in [
        "create-guardrail-version --guardrail-identifier",
        "Move every application from version 1",
        "delete-guardrail --guardrail-identifier",
        "--guardrail-version 1",
    ] {
        assert!(steps.contains(needle), "{needle}: {steps}");
    }
    let cards = w.chat_cards(0);
    let title = cards[0]["content"]["title"].as_str().unwrap();
    assert_eq!(
        title,
        "Partly fixed: Bedrock guardrail \"versioned\": DRAFT now on a customer-managed KMS key; still open: version 1"
    );
    assert_eq!(w.messages().await.len(), 1);

    // The fix's own event: the same state the fix proved (version 1 still open), so silent.
    let own = w.run(&event("UpdateGuardrail.json", &a.id, &arn)).await;
    assert_eq!(own.status, Status::NonCompliant);
    assert_eq!(own.action.kind, ActionKind::None, "{:?}", own.action);
    assert!(w.messages().await.is_empty());

    // A person follows the steps: a new version from the fixed DRAFT, the old one deleted.
    assert_eq!(a.publish_version(&id).await, "2");
    let mut new_version = event("CreateGuardrailVersion.json", &a.id, &arn);
    new_version["detail"]["responseElements"]["version"] = json!("2");
    let f = w.run(&new_version).await;
    assert_eq!(f.protections.len(), 3);
    assert_eq!(
        f.protections[2].verdict,
        Status::Compliant,
        "version 2 copied the DRAFT's key"
    );
    assert_eq!(
        f.action.kind,
        ActionKind::None,
        "version 1 is still open: no news"
    );
    a.bedrock
        .delete_guardrail()
        .guardrail_identifier(&id)
        .guardrail_version("1")
        .send()
        .await
        .unwrap();
    let published = a.published().len();
    let f = w
        .run(&event("DeleteGuardrail-version.json", &a.id, &arn))
        .await;
    assert_eq!(f.status, Status::Compliant, "{}", f.reason);
    assert_eq!(f.previous_status, Some(Status::NonCompliant));
    let title = w.chat_cards(published)[0]["content"]["title"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        title.starts_with("Resolved: Bedrock guardrail \"versioned\""),
        "{title}"
    );
    assert_eq!(w.messages().await.len(), 1);
}

#[tokio::test]
async fn a_new_version_is_checked_when_it_is_published() {
    let w = World::new("new-version", None).await;
    let a = &w.account;
    let cmk = a.cmk(None).await;
    let (good, _) = a.guardrail("on-a-cmk", Some(&cmk)).await;
    let (bad, _) = a.guardrail("on-a-key-aws-owns", None).await;
    for (id, expected) in [(good, Status::Compliant), (bad, Status::NonCompliant)] {
        let version = a.publish_version(&id).await;
        let mut e = event("CreateGuardrailVersion.json", &a.id, &format!("x/{id}"));
        e["detail"]["responseElements"]["version"] = json!(version);
        let f = w.run(&e).await;
        assert_eq!(f.status, expected, "{}", f.reason);
        assert_eq!(f.protections.len(), 2, "DRAFT and version 1");
        assert!(f.protections.iter().all(|p| p.verdict == expected));
        assert_eq!(
            f.resource.arn.as_deref().map(|a| a.ends_with(&id)),
            Some(true)
        );
    }
    assert_eq!(
        w.messages().await.len(),
        1,
        "only the version on a key AWS owns is news"
    );
}

// --------------------------------------------------------------- 5. alert storms, tugs of war

#[tokio::test]
async fn a_problem_is_told_once_again_when_it_changes_or_lasts_and_once_when_it_ends() {
    // repeatAlertHours 0.001 = 3.6 s (the ledger counts whole seconds).
    let w = World::with_ledger(
        "told-once",
        Some(json!({"defaults": {"repeatAlertHours": 0.001}})),
    )
    .await;
    let a = &w.account;
    let (id, arn) = a.guardrail("nagging", None).await;
    let update = || again(event("UpdateGuardrail.json", &a.id, &arn));

    let first = w
        .run_warm(&event("CreateGuardrail.json", &a.id, &arn))
        .await
        .unwrap();
    assert_eq!(first.action.kind, ActionKind::Alerted);
    assert_eq!(first.previous_status, None);
    let repeat = w.run_warm(&update()).await.unwrap();
    assert_eq!(repeat.status, Status::NonCompliant, "still judged");
    assert_eq!(repeat.action.kind, ActionKind::None);
    assert!(repeat.action.detail.unwrap().contains("not sent again"));
    assert_eq!(repeat.previous_status, Some(Status::NonCompliant));
    assert_eq!(w.messages().await.len(), 1);

    // A different problem is news at once.
    set_key(a, &id, "alias/aws/bedrock").await;
    assert_eq!(
        w.run_warm(&update()).await.unwrap().action.kind,
        ActionKind::Alerted
    );
    assert_eq!(w.messages().await.len(), 1);
    // The same problem, after repeatAlertHours, is told again.
    tokio::time::sleep(Duration::from_millis(4100)).await;
    assert_eq!(
        w.run_warm(&update()).await.unwrap().action.kind,
        ActionKind::Alerted
    );
    assert_eq!(w.messages().await.len(), 1);

    // Someone fixes it by hand: one "resolved", then silence.
    let cmk = a.cmk(None).await;
    set_key(a, &id, &cmk).await;
    let published = a.published().len();
    let resolved = w.run_warm(&update()).await.unwrap();
    assert_eq!(resolved.status, Status::Compliant);
    assert_eq!(resolved.previous_status, Some(Status::NonCompliant));
    let messages = w.messages().await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].status, Status::Compliant);
    assert!(w.chat_cards(published)[0]["content"]["title"]
        .as_str()
        .unwrap()
        .starts_with("Resolved:"));
    assert_eq!(
        w.run_warm(&update()).await.unwrap().action.kind,
        ActionKind::None
    );
    assert!(w.messages().await.is_empty());
}

/// The same event delivered again while its first delivery is still publishing: the second
/// is told the event is in progress (Lambda retries it later, and it then finds it handled),
/// never a second alert.
#[tokio::test]
async fn a_redelivery_while_the_first_is_publishing_is_not_told_again() {
    let w = World::with_ledger("publishing", None).await;
    let a = &w.account;
    let (_, arn) = a.guardrail("being-told", None).await;
    let e = event("CreateGuardrail.json", &a.id, &arn);
    a.emulate(json!({"faults": [{"operation": "sns:Publish", "delaySeconds": 1.0, "count": 1}]}));
    let again = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        w.try_run(&e).await
    };
    let (first, second) = tokio::join!(w.try_run(&e), again);
    assert_eq!(first.expect("told").action.kind, ActionKind::Alerted);
    assert!(
        matches!(second, Err(HandlerError::InProgress(_))),
        "{second:?}"
    );
    assert_eq!(w.messages().await.len(), 1);
    let later = w.run(&e).await;
    assert!(
        later
            .action
            .detail
            .unwrap_or_default()
            .contains("already handled"),
        "the retry finds it handled"
    );
    assert!(w.messages().await.is_empty());
}

/// Two events about one resource handled at the same moment (two Lambda instances) both read
/// a record that has told nothing yet; the ledger lets one of them tell. The same for the
/// end of the problem: one "resolved".
#[tokio::test]
async fn two_runs_at_once_tell_one_alert_and_one_resolved() {
    let w = World::with_ledger("told-once-at-once", None).await;
    let a = &w.account;
    let (id, arn) = a.guardrail("raced", None).await;
    let update = || again(event("UpdateGuardrail.json", &a.id, &arn));
    // Both runs read the record before either has judged: the reads of the guardrail wait.
    let slow_reads =
        json!({"faults": [{"operation": "bedrock:GetGuardrail", "delaySeconds": 1.0, "count": 2}]});

    a.emulate(slow_reads.clone());
    let (first, second) = (update(), update());
    let (one, two) = tokio::join!(w.run(&first), w.run(&second));
    assert_eq!(
        (one.status, two.status),
        (Status::NonCompliant, Status::NonCompliant)
    );
    let mut kinds = [one.action.kind, two.action.kind];
    kinds.sort_by_key(|k| k.as_str());
    assert_eq!(
        kinds,
        [ActionKind::Alerted, ActionKind::None],
        "{one:?}\n{two:?}"
    );
    let quiet = if one.action.kind == ActionKind::None {
        &one
    } else {
        &two
    };
    assert!(
        quiet
            .action
            .detail
            .as_deref()
            .unwrap_or_default()
            .contains("not sent again"),
        "{quiet:?}"
    );
    assert_eq!(w.messages().await.len(), 1, "one alert");

    let cmk = a.cmk(None).await;
    set_key(a, &id, &cmk).await;
    a.emulate(slow_reads);
    let (first, second) = (update(), update());
    let (one, two) = tokio::join!(w.run(&first), w.run(&second));
    assert_eq!(
        (one.status, two.status),
        (Status::Compliant, Status::Compliant)
    );
    let messages = w.messages().await;
    assert_eq!(messages.len(), 1, "one resolved: {messages:?}");
    assert_eq!(messages[0].previous_status, Some(Status::NonCompliant));
}

#[tokio::test]
async fn a_tug_of_war_stops_at_the_fix_budget_and_names_who_keeps_undoing_the_fix() {
    let w = World::with_ledger("tug-of-war", None).await;
    let a = &w.account;
    let key = a.cmk(None).await;
    let mut settings = remediate_with(&key);
    settings["defaults"]["maxFixesPerDay"] = json!(2);
    a.put_settings(SETTINGS, &settings.to_string()).await;
    let (id, arn) = a.guardrail("contested", None).await;

    let mut kinds = Vec::new();
    for round in 0..3 {
        if round > 0 {
            // The pipeline applies its template again: the key is gone.
            update_without_key(a, &id, false).await;
        }
        let e = by(again(event("UpdateGuardrail.json", &a.id, &arn)), TERRAFORM);
        let f = w.run_warm(&e).await.unwrap();
        kinds.push(f.action.kind);
        if round == 2 {
            let detail = f.action.detail.unwrap();
            assert!(detail.contains("2 times in the last 24 hours"), "{detail}");
            assert!(detail.contains(TERRAFORM), "names who: {detail}");
        }
        // The fix's own event is silent.
        let own = w
            .run_warm(&again(event("UpdateGuardrail.json", &a.id, &arn)))
            .await
            .unwrap();
        assert_eq!(
            own.action.kind,
            ActionKind::None,
            "round {round}: {:?}",
            own.action
        );
    }
    assert_eq!(
        kinds,
        [
            ActionKind::Remediated,
            ActionKind::Remediated,
            ActionKind::Alerted
        ]
    );
    assert_eq!(a.draft(&id).await.kms_key_arn(), None, "left for a person");
    let told: Vec<ActionKind> = w.messages().await.iter().map(|f| f.action.kind).collect();
    assert_eq!(told, kinds, "two fixes and one alert, nothing else");
}

// -------------------------------------------------------------- 6. keys that cannot work

#[tokio::test]
async fn keys_that_cannot_encrypt_or_have_no_material_are_never_put_in_place() {
    let a = Account::new("unusable-keys").await;
    use aws_sdk_kms::types::{KeySpec, KeyUsageType, OriginType};
    let key = |spec, usage, origin| {
        a.kms
            .create_key()
            .set_key_spec(spec)
            .set_key_usage(usage)
            .set_origin(origin)
            .send()
    };
    let rsa = key(
        Some(KeySpec::Rsa2048),
        Some(KeyUsageType::EncryptDecrypt),
        None,
    )
    .await
    .unwrap();
    let hmac = key(
        Some(KeySpec::Hmac256),
        Some(KeyUsageType::GenerateVerifyMac),
        None,
    )
    .await
    .unwrap();
    let external = key(None, None, Some(OriginType::External)).await.unwrap();
    let w = World::new_in(a, None).await;
    let a = &w.account;
    let (id, arn) = a.guardrail("unfixable", None).await;
    for (out, reason) in [
        (
            rsa,
            "a RSA_2048 key for ENCRYPT_DECRYPT, which cannot encrypt data",
        ),
        (hmac, "a HMAC_256 key for GENERATE_VERIFY_MAC"),
        (external, "has not been imported"),
    ] {
        let key = out.key_metadata().unwrap().arn().unwrap().to_owned();
        a.put_settings(SETTINGS, &remediate_with(&key).to_string())
            .await;
        let f = w
            .run(&again(event("CreateGuardrail.json", &a.id, &arn)))
            .await;
        assert_eq!(f.action.kind, ActionKind::Alerted, "{key}");
        let detail = f.action.detail.unwrap();
        assert!(detail.contains(reason), "{detail}");
    }
    assert!(a.draft(&id).await.kms_key_arn().is_none());
    assert_eq!(count(&a.calls(), "UpdateGuardrail"), 0);
}

#[tokio::test]
async fn a_key_of_another_region_is_judged_as_foreign_not_as_missing() {
    let a = Account::new("foreign-region").await;
    let eu = aws_sdk_kms::Client::from_conf(
        aws_sdk_kms::config::Builder::from(&a.config)
            .region(aws_sdk_kms::config::Region::new("eu-west-1"))
            .build(),
    );
    let key = eu
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .arn()
        .unwrap()
        .to_owned();
    assert!(key.contains(":eu-west-1:"));
    let w = World::new_in(a, Some(remediate_with(&key))).await;
    let (_, arn) = w.account.guardrail("local", None).await;
    let f = w
        .run(&event("CreateGuardrail.json", &w.account.id, &arn))
        .await;
    let detail = f.action.detail.unwrap();
    assert!(
        detail.contains(&format!("is in {REGION} but its key {key} is in eu-west-1")),
        "{detail}"
    );
}

#[tokio::test]
async fn a_key_of_a_central_key_account_passes_only_when_that_account_is_allowed() {
    let keys = Account::new("key-account").await;
    let central_key = keys.cmk(None).await;
    let w = World::new("key-user", None).await;
    let (_, arn) = w.account.guardrail("central-key", Some(&central_key)).await;
    let f = w
        .run(&event("CreateGuardrail.json", &w.account.id, &arn))
        .await;
    assert_eq!(f.status, Status::NonCompliant);
    assert!(
        f.reason.contains(&format!("of account {}", keys.id)),
        "{}",
        f.reason
    );
    w.account
        .put_settings(
            SETTINGS,
            &json!({"defaults": {"allowedKeyAccounts": [keys.id]}}).to_string(),
        )
        .await;
    let f = w
        .run(&again(event("CreateGuardrail.json", &w.account.id, &arn)))
        .await;
    assert_eq!(f.status, Status::Compliant, "{}", f.reason);
    assert_eq!(f.key.unwrap().account.as_deref(), Some(keys.id.as_str()));
}

// ---------------------------------------------------------------- 7. settings anomalies

#[tokio::test]
async fn a_settings_parameter_that_is_named_but_missing_or_allows_nothing_is_an_error() {
    let a = Account::new("settings-anomalies").await;
    let key = a.cmk(None).await;
    let (_, arn) = a.guardrail("on-a-cmk", Some(&key)).await;
    let (topic, queue) = a.alert_topic().await;
    let env = bedrock_cmk_guard::clients::Env {
        alert_topic_arn: Some(topic),
        config_parameter: Some("/nobody/created/this".to_owned()),
        app: Some("guardrails".to_owned()),
        ..Default::default()
    };
    let ctx = a.context(env.clone());
    let f = handle(
        &guardrails::Guardrails::new(),
        &ctx,
        &event("CreateGuardrail.json", &a.id, &arn),
        &Options::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        f.status,
        Status::Error,
        "never COMPLIANT on settings that are not there"
    );
    assert!(
        f.reason
            .contains("/nobody/created/this (CONFIG_PARAMETER) does not exist"),
        "{}",
        f.reason
    );
    assert_eq!(f.action.kind, ActionKind::Alerted);
    assert_eq!(a.drain(&queue).await.len(), 1, "told, in alert form");

    a.put_settings(
        "/nobody/created/this",
        r#"{"accounts": {"111122223333": {"allowedKeys": []}}}"#,
    )
    .await;
    let ctx = a.context(env);
    let f = handle(
        &guardrails::Guardrails::new(),
        &ctx,
        &event("CreateGuardrail.json", &a.id, &arn),
        &Options::default(),
    )
    .await
    .unwrap();
    assert_eq!(f.status, Status::Error);
    assert!(
        f.reason
            .contains("allowedKeys: an empty list allows no key"),
        "{}",
        f.reason
    );
}

// ------------------------------------------------------ 8. members the SDK does not know

#[tokio::test]
async fn a_member_the_guard_does_not_know_stops_the_fix_and_is_named() {
    let a = Account::new("unknown-members").await;
    let key = a.cmk(None).await;
    let w = World::new_in(a, Some(remediate_with(&key))).await;
    let a = &w.account;
    let (id, arn) = a.guardrail("from-the-future", None).await;
    for (extra, named) in [
        (
            json!({"futureSafetyPolicy": {"enabled": true}}),
            "futureSafetyPolicy",
        ),
        (
            json!({"contentPolicy.filters.0.futureThreshold": 0.5}),
            "contentPolicy.filters[].futureThreshold",
        ),
    ] {
        a.emulate(json!({"getGuardrailExtraMembers": extra}));
        let f = w
            .run(&again(event("CreateGuardrail.json", &a.id, &arn)))
            .await;
        assert_eq!(f.action.kind, ActionKind::Alerted, "{:?}", f.action);
        let detail = f.action.detail.unwrap();
        assert!(
            detail.contains(named) && detail.contains("would drop them"),
            "{detail}"
        );
        assert!(!f.protections[0].fixable);
        a.emulate(json!({"getGuardrailExtraMembers": null}));
    }
    assert_eq!(count(&a.calls(), "UpdateGuardrail"), 0);
    assert!(a.draft(&id).await.kms_key_arn().is_none());
}

// ------------------------------------------------------------ 9. transient errors

#[tokio::test]
async fn a_throttled_read_goes_back_to_be_retried_and_the_retry_decides() {
    let w = World::with_ledger("throttled", None).await;
    let a = &w.account;
    let (_, arn) = a.guardrail("busy-api", None).await;
    let e = event("CreateGuardrail.json", &a.id, &arn);
    a.emulate(json!({"faults": [{"operation": "bedrock:GetGuardrail", "code": "ThrottlingException", "count": 1}]}));
    expect_retry(&w, &e, "ThrottlingException").await;
    assert!(
        w.messages().await.is_empty(),
        "nothing is told before it is decided"
    );
    // The claim was given back: the Lambda retry is handled, not turned away.
    let f = w.run(&e).await;
    assert_eq!(f.action.kind, ActionKind::Alerted);
    assert_eq!(w.messages().await.len(), 1);
}

#[tokio::test]
async fn a_guardrail_still_changing_or_a_conflicting_write_is_retried_not_failed() {
    let (w, key) = World::remediating("conflict").await;
    let a = &w.account;
    a.emulate(json!({"guardrailTransitionSeconds": 1.0}));
    let (id, arn) = a.guardrail("creating", None).await;
    let e = event("CreateGuardrail.json", &a.id, &arn);
    expect_retry(&w, &e, "CREATING").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    a.emulate(json!({"guardrailTransitionSeconds": 0, "faults": [{"operation": "bedrock:UpdateGuardrail", "code": "ConflictException", "count": 1}]}));
    expect_retry(&w, &e, "ConflictException").await;
    assert!(w.messages().await.is_empty());
    // Claim and lock were both given back: the next event about it (here another one, which
    // a lock left behind would turn away) fixes it.
    let f = w.run(&again(e)).await;
    assert_eq!(f.action.kind, ActionKind::Remediated, "{:?}", f.action);
    assert_eq!(a.draft(&id).await.kms_key_arn(), Some(key.as_str()));
    assert_eq!(w.messages().await.len(), 1);
}

#[tokio::test]
async fn access_denied_is_a_final_error_finding() {
    let w = World::new("denied", None).await;
    let a = &w.account;
    let (_, arn) = a.guardrail("forbidden", None).await;
    a.emulate(json!({"faults": [{"operation": "bedrock:GetGuardrail", "code": "AccessDeniedException", "status": 403}]}));
    let f = w.run(&event("CreateGuardrail.json", &a.id, &arn)).await;
    assert_eq!(f.status, Status::Error);
    assert!(
        f.reason
            .contains("bedrock:GetGuardrail failed: AccessDeniedException"),
        "{}",
        f.reason
    );
    assert_eq!(f.action.kind, ActionKind::Alerted);
    assert_eq!(w.messages().await.len(), 1);
}

// ----------------------------------------------------------------- 10. smaller holes

/// Without MEMBER_ROLE_NAME another account's guardrail cannot be read: an error that says
/// so, not an IGNORED "no longer exists" from reading the wrong account.
#[tokio::test]
async fn another_accounts_guardrail_without_a_member_role_is_an_error_not_ignored() {
    let member = Account::new("unreachable-member").await;
    let (_, arn) = member.guardrail("elsewhere", None).await;
    let w = World::new("lonely-central", None).await;
    let f = w
        .run(&event("CreateGuardrail.json", &member.id, &arn))
        .await;
    assert_eq!(f.status, Status::Error, "{}", f.reason);
    assert!(
        f.reason.contains("MEMBER_ROLE_NAME is not set"),
        "{}",
        f.reason
    );
    assert_eq!(f.account, member.id);
}

/// The event claim is per check: another reactor sharing the table never skips this event.
#[tokio::test]
async fn a_redelivered_event_is_fixed_and_told_once() {
    let (w, key) = World::remediating("redelivered").await;
    let a = &w.account;
    let (_, arn) = a.guardrail("twice", None).await;
    let e = event("CreateGuardrail.json", &a.id, &arn);
    let first = w.run(&e).await;
    let second = w.run(&e).await;
    assert_eq!(first.action.kind, ActionKind::Remediated);
    assert_eq!(second.action.kind, ActionKind::None);
    assert!(second.action.detail.unwrap().contains("already handled"));
    assert_eq!(count(&a.calls(), "UpdateGuardrail"), 1);
    assert_eq!(w.messages().await.len(), 1);
    let items = a
        .dynamodb
        .scan()
        .table_name(w.env.state_table.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    let ids: Vec<String> = items
        .items()
        .iter()
        .map(|i| i["id"].as_s().unwrap().clone())
        .collect();
    let event_id = e["detail"]["eventID"].as_str().unwrap();
    assert!(
        ids.contains(&format!("event#bedrock-guardrail-cmk#{event_id}")),
        "{ids:?}"
    );
    assert!(
        ids.contains(&format!("resource#bedrock-guardrail-cmk#{arn}")),
        "{ids:?}"
    );
    let resource = items
        .items()
        .iter()
        .find(|i| i["id"].as_s().unwrap().starts_with("resource#"))
        .unwrap();
    assert_eq!(
        resource["keyArns"].as_ss().unwrap(),
        &[key],
        "what uses this key"
    );
}

/// The ledger is read beside the resource: it adds no sequential round trip to reading. An
/// alert is reserved before it is published (so two runs at once tell it once, and a failed
/// publish is told by the retry) and the claim completes after.
#[tokio::test]
async fn the_ledger_reads_beside_the_resource() {
    let w = World::with_ledger("ledger-calls", None).await;
    let a = &w.account;
    let (_, arn) = a.guardrail("counted", None).await;
    let before = a.calls().len();
    w.run(&event("CreateGuardrail.json", &a.id, &arn)).await;
    let calls: Vec<String> = a.calls()[before..].to_vec();
    // One concurrent round of reads (resource, versions, claim, record, settings), then the
    // reservation, the publish, and the write that completes the claim.
    let mut first_round = calls[..5].to_vec();
    first_round.sort();
    assert_eq!(
        first_round,
        [
            "bedrock:GetGuardrail",
            "bedrock:ListGuardrails",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "ssm:GetParameter"
        ],
        "{calls:?}"
    );
    assert_eq!(
        calls[5..],
        [
            "dynamodb:TransactWriteItems",
            "sns:Publish",
            "dynamodb:UpdateItem"
        ],
        "{calls:?}"
    );
}

/// A warm instance keeps its connections: every AWS client of the process shares one HTTP
/// client, so the second event's calls go out on connections the first one opened. A client
/// made per event (the reactor's service client) would open new ones, and parse the machine's
/// TLS roots again, on every event.
#[tokio::test]
async fn a_warm_instance_reuses_its_connections() {
    let w = World::with_ledger("warm-connections", None).await;
    let a = &w.account;
    let key = a.cmk(None).await;
    let (_, arn) = a.guardrail("reused", Some(&key)).await;
    let before = a.connections().len();
    let f = w
        .run_warm(&event("CreateGuardrail.json", &a.id, &arn))
        .await
        .expect("first event");
    assert_eq!(f.status, Status::Compliant, "{}", f.reason);
    let first = a.connections()[before..].to_vec();
    w.run_warm(&event("CreateGuardrail.json", &a.id, &arn))
        .await
        .expect("second event");
    let second = a.connections()[before + first.len()..].to_vec();
    assert!(
        second
            .iter()
            .any(|(call, _)| call == "bedrock:GetGuardrail"),
        "{second:?}"
    );
    let opened: std::collections::HashSet<&String> = first.iter().map(|(_, c)| c).collect();
    let new: Vec<_> = second.iter().filter(|(_, c)| !opened.contains(c)).collect();
    assert!(
        new.is_empty(),
        "the second event opened connections: {new:?}; the first used {first:?}"
    );
}

/// A finding too large for SNS (here a guardrail with thousands of versions and a long reason)
/// is published shortened, with a pointer to the whole finding in the log, never dropped: the
/// emulator refuses messages over 256 KiB as SNS does.
#[tokio::test]
async fn a_finding_too_large_for_sns_is_delivered_shortened() {
    let w = World::new("huge-finding", None).await;
    let (_, arn) = w.account.guardrail("huge", None).await;
    let mut f = w
        .run(&event("CreateGuardrail.json", &w.account.id, &arn))
        .await;
    w.messages().await;
    let part = f.protections[0].clone();
    f.protections = (0..4000)
        .map(|i| bedrock_cmk_guard::finding::ProtectionSummary {
            name: format!("version {i}"),
            ..part.clone()
        })
        .collect();
    f.reason = "not on a customer-managed key; ".repeat(5000);
    assert!(f.to_json().len() > 256 * 1024);

    let topic = w.env.alert_topic_arn.clone().unwrap();
    bedrock_cmk_guard::notify::publish(&w.account.sns, &topic, &f)
        .await
        .expect("SNS takes the shortened message");
    let delivered = w.messages().await;
    assert_eq!(delivered.len(), 1, "delivered once, not dropped");
    let got = &delivered[0];
    assert_eq!(
        (&got.check, &got.resource, got.status),
        (&f.check, &f.resource, f.status)
    );
    assert!((1..4000).contains(&got.protections.len()));
    let raw = w.account.published();
    let body: serde_json::Value =
        serde_json::from_str(raw.last().unwrap()["Message"].as_str().unwrap()).unwrap();
    let machine: serde_json::Value = serde_json::from_str(body["sqs"].as_str().unwrap()).unwrap();
    assert!(machine["truncated"]
        .as_str()
        .unwrap()
        .contains(&f.trigger.event_id));
}
