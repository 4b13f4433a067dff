//! The guardrails reactor against the emulator: every mode, every key case, the remediation
//! loop, broken settings, cross-account. Each test has an account of its own. What makes the
//! guard trustworthy at night (the ledger, proven fixes, versions, retries) is in trust.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bedrock_cmk_guard::clients::Env;
use bedrock_cmk_guard::finding::{ActionKind, Finding, Severity, Status};
use bedrock_cmk_guard::pipeline::{handle, HandlerError, Options};
use bedrock_cmk_guard::settings::Mode;
use cmk_guard_tests::{event, remediate_with, Account, World, REGION};
use guardrails::Guardrails;
use serde_json::{json, Value};

#[tokio::test]
async fn alert_mode_sends_one_message_with_three_renderings_and_filter_attributes() {
    let w = World::new("alert", None).await;
    let (_, arn) = w.account.guardrail("support-bot", None).await;
    let finding = w
        .run(&event("CreateGuardrail.json", &w.account.id, &arn))
        .await;

    assert_eq!(finding.status, Status::NonCompliant);
    assert_eq!(finding.severity, Severity::Medium);
    assert_eq!(finding.mode, Some(Mode::Alert));
    assert_eq!(finding.action.kind, ActionKind::Alerted);
    assert_eq!(finding.resource.arn.as_deref(), Some(arn.as_str()));
    assert_eq!(finding.resource.name.as_deref(), Some("support-bot"));
    assert!(finding.key.is_none(), "AWS-owned: no key");
    assert!(
        finding.reason.contains("key AWS owns"),
        "{}",
        finding.reason
    );

    let delivered = w.account.drain(&w.queue_url).await;
    assert_eq!(delivered.len(), 1, "exactly one message");
    let m = &delivered[0];
    let sqs_finding: Finding = serde_json::from_str(m.body().unwrap()).unwrap();
    assert_eq!(
        sqs_finding, finding,
        "the sqs rendering is the Finding the Lambda returns"
    );
    let attrs = m.message_attributes().unwrap();
    for (name, value) in [
        ("check", "bedrock-guardrail-cmk"),
        ("status", "NON_COMPLIANT"),
        ("severity", "MEDIUM"),
        ("account", w.account.id.as_str()),
        ("region", REGION),
        ("action", "alerted"),
    ] {
        assert_eq!(attrs[name].string_value(), Some(value), "attribute {name}");
    }

    let published = w.account.published();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0]["MessageStructure"], "json");
    let body: Value = serde_json::from_str(published[0]["Message"].as_str().unwrap()).unwrap();
    let text = body["email"].as_str().unwrap();
    for needle in [
        "support-bot",
        &arn,
        &w.account.id,
        REGION,
        "assumed-role/MLPlatformAdmin/alice",
        "key AWS owns",
        "To fix:",
        "update-guardrail",
    ] {
        assert!(
            text.contains(needle),
            "e-mail text lacks {needle:?}:\n{text}"
        );
    }
    let chat: Value = serde_json::from_str(body["https"].as_str().unwrap()).unwrap();
    assert_eq!(
        (chat["version"].as_str(), chat["source"].as_str()),
        (Some("1.0"), Some("custom"))
    );
    assert_eq!(chat["content"]["textType"], "client-markdown");
    assert_eq!(chat["metadata"]["threadId"], arn.as_str());
    assert!(chat["content"]["title"]
        .as_str()
        .unwrap()
        .contains("support-bot"));
    let lambda: Finding = serde_json::from_str(body["lambda"].as_str().unwrap()).unwrap();
    assert_eq!(lambda, finding);
}

#[tokio::test]
async fn each_key_case_is_judged_and_reported_with_its_reason() {
    let w = World::new("key-cases", None).await;
    let a = &w.account;
    let good = a.cmk(Some("alias/guardrails")).await;
    let disabled = a.cmk(None).await;
    a.kms.disable_key().key_id(&disabled).send().await.unwrap();
    let doomed = a.cmk(None).await;
    a.kms
        .schedule_key_deletion()
        .key_id(&doomed)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    let managed = a.aws_managed_key().await;

    let cases: Vec<(&str, Option<String>, Status, &str)> = vec![
        ("aws-owned", None, Status::NonCompliant, "key AWS owns"),
        (
            "aws-managed",
            Some("alias/aws/bedrock".to_owned()),
            Status::NonCompliant,
            "AWS-managed key",
        ),
        (
            "disabled",
            Some(disabled.clone()),
            Status::NonCompliant,
            "disabled",
        ),
        (
            "pending-deletion",
            Some(doomed.clone()),
            Status::NonCompliant,
            "scheduled for deletion",
        ),
        (
            "cmk-by-alias",
            Some("alias/guardrails".to_owned()),
            Status::Compliant,
            "Enabled, allowed",
        ),
        (
            "cmk-by-arn",
            Some(good.clone()),
            Status::Compliant,
            "Enabled, allowed",
        ),
    ];
    for (name, key, status, reason) in cases {
        let (_, arn) = a.guardrail(name, key.as_deref()).await;
        let f = w.run(&event("UpdateGuardrail.json", &a.id, &arn)).await;
        assert_eq!(f.status, status, "{name}: {}", f.reason);
        assert!(f.reason.contains(reason), "{name}: {}", f.reason);
        let expected_key_arn = match name {
            "aws-managed" => Some(managed.clone()),
            "aws-owned" => None,
            "cmk-by-alias" => Some(good.clone()),
            _ => key.clone(),
        };
        assert_eq!(
            f.key.as_ref().and_then(|k| k.arn.clone()),
            expected_key_arn,
            "{name}: GetGuardrail names the key by ARN"
        );
        let messages = w.messages().await;
        match status {
            Status::Compliant => assert!(
                messages.is_empty(),
                "{name}: a compliant guardrail is silent"
            ),
            _ => assert_eq!(messages.len(), 1, "{name}"),
        }
    }
}

#[tokio::test]
async fn a_cmk_not_on_the_allow_list_fails_and_one_on_it_passes() {
    let a = Account::new("allow-list").await;
    let listed = a.cmk(None).await;
    let unlisted = a.cmk(None).await;
    let w = World::new_in(a, Some(json!({"defaults": {"allowedKeys": [listed]}}))).await;
    let (_, on) = w.account.guardrail("on-list", Some(&listed)).await;
    let (_, off) = w.account.guardrail("off-list", Some(&unlisted)).await;
    let f = w
        .run(&event("CreateGuardrail.json", &w.account.id, &on))
        .await;
    assert_eq!(f.status, Status::Compliant, "{}", f.reason);
    let f = w
        .run(&event("CreateGuardrail.json", &w.account.id, &off))
        .await;
    assert_eq!(f.status, Status::NonCompliant);
    assert!(f.reason.contains("allowedKeys"), "{}", f.reason);
    assert_eq!(w.messages().await.len(), 1, "only the unlisted one is news");
}

#[tokio::test]
async fn off_mode_judges_but_publishes_and_changes_nothing() {
    let w = World::new("off", Some(json!({"defaults": {"mode": "off"}}))).await;
    let (id, arn) = w.account.guardrail("quiet", None).await;
    let f = w
        .run(&event("CreateGuardrail.json", &w.account.id, &arn))
        .await;
    assert_eq!(
        f.status,
        Status::NonCompliant,
        "the verdict is computed in every mode"
    );
    assert_eq!(f.mode, Some(Mode::Off));
    assert_eq!(f.action.kind, ActionKind::None);
    assert!(w.messages().await.is_empty());
    assert!(w.account.draft(&id).await.kms_key_arn().is_none());
}

#[tokio::test]
async fn dry_run_says_exactly_what_it_would_change_and_changes_nothing() {
    let a = Account::new("dry-run").await;
    let key = a.cmk(None).await;
    let w = World::new_in(
        a,
        Some(json!({"defaults": {"mode": "dry-run", "remediationKeys": {REGION: key}}})),
    )
    .await;
    let (id, arn) = w.account.guardrail("dry", Some("alias/aws/bedrock")).await;
    let before = w.account.draft(&id).await;
    let f = w
        .run(&event("UpdateGuardrail.json", &w.account.id, &arn))
        .await;
    assert_eq!(f.status, Status::NonCompliant);
    assert_eq!(f.action.kind, ActionKind::WouldRemediate);
    let detail = f.action.detail.clone().unwrap();
    for needle in [
        "UpdateGuardrail",
        &arn,
        &key,
        "topic policy",
        "content policy",
        "cross-Region config",
        "tags",
    ] {
        assert!(
            detail.contains(needle),
            "dry-run detail lacks {needle:?}: {detail}"
        );
    }
    assert_eq!(
        w.account.draft(&id).await.kms_key_arn(),
        before.kms_key_arn(),
        "nothing changed"
    );
    assert!(!w
        .account
        .calls()
        .iter()
        .any(|c| c.ends_with("UpdateGuardrail")));
    let messages = w.messages().await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].action.kind, ActionKind::WouldRemediate);
}

#[tokio::test]
async fn remediation_rekeys_keeps_everything_else_and_its_own_event_is_silent() {
    let a = Account::new("remediate").await;
    let key = a.cmk(Some("alias/guardrails")).await;
    let w = World::new_in(a, Some(remediate_with(&key))).await;
    let (id, arn) = w.account.guardrail("support-bot", None).await;
    let tags_before = w.account.tags(&arn).await;
    let before = w.account.draft(&id).await;

    let f = w
        .run(&event("CreateGuardrail.json", &w.account.id, &arn))
        .await;
    assert_eq!(
        f.status,
        Status::NonCompliant,
        "the finding reports what was found"
    );
    assert_eq!(f.action.kind, ActionKind::Remediated, "{:?}", f.action);
    assert!(
        f.action.detail.as_deref().unwrap().contains("read back"),
        "{:?}",
        f.action.detail
    );

    let after = w.account.draft(&id).await;
    assert_eq!(
        after.kms_key_arn(),
        Some(key.as_str()),
        "re-keyed with the remediation key"
    );
    // Everything but the key and the update time is exactly as it was.
    assert_eq!(after.name(), before.name());
    assert_eq!(after.description(), before.description());
    assert_eq!(
        after.blocked_input_messaging(),
        before.blocked_input_messaging()
    );
    assert_eq!(
        after.blocked_outputs_messaging(),
        before.blocked_outputs_messaging()
    );
    assert_eq!(after.topic_policy(), before.topic_policy());
    assert_eq!(after.content_policy(), before.content_policy());
    assert_eq!(after.word_policy(), before.word_policy());
    assert_eq!(
        after.sensitive_information_policy(),
        before.sensitive_information_policy()
    );
    assert_eq!(
        after.contextual_grounding_policy(),
        before.contextual_grounding_policy()
    );
    assert_eq!(
        after.automated_reasoning_policy(),
        before.automated_reasoning_policy()
    );
    assert_eq!(after.cross_region_details(), before.cross_region_details());
    assert!(
        before.topic_policy().is_some() && before.cross_region_details().is_some(),
        "the fixture has them all"
    );
    assert_eq!(w.account.tags(&arn).await, tags_before);
    assert_eq!(tags_before.len(), 2);

    let messages = w.messages().await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].action.kind, ActionKind::Remediated);

    // The fix emits its own UpdateGuardrail: it re-checks to COMPLIANT and says nothing.
    let mut own = event("UpdateGuardrail.json", &w.account.id, &arn);
    own["detail"]["userIdentity"]["arn"] = json!(format!(
        "arn:aws:sts::{}:assumed-role/bedrock-cmk-guard/guardrails",
        w.account.id
    ));
    let f = w.run(&own).await;
    assert_eq!(f.status, Status::Compliant, "{}", f.reason);
    assert_eq!(f.action.kind, ActionKind::None);
    assert!(w.messages().await.is_empty(), "no alert storm");
}

#[tokio::test]
async fn remediate_without_a_remediation_key_alerts_with_the_manual_fix() {
    let w = World::new(
        "no-remediation-key",
        Some(json!({"defaults": {"mode": "remediate"}})),
    )
    .await;
    let (id, arn) = w.account.guardrail("unfixable", None).await;
    let f = w
        .run(&event("CreateGuardrail.json", &w.account.id, &arn))
        .await;
    assert_eq!(
        f.action.kind,
        ActionKind::Alerted,
        "never claims a fix it cannot make"
    );
    let detail = f.action.detail.unwrap();
    assert!(
        detail.contains("no remediationKeys entry for us-east-1"),
        "{detail}"
    );
    let steps = f.action.steps.join("\n");
    assert!(steps.contains("update-guardrail"), "{steps}");
    assert!(w.account.draft(&id).await.kms_key_arn().is_none());
}

#[tokio::test]
async fn a_remediation_key_that_is_not_a_good_cmk_is_never_put_in_place() {
    let a = Account::new("bad-remediation-key").await;
    let key = a.cmk(None).await;
    a.kms.disable_key().key_id(&key).send().await.unwrap();
    let w = World::new_in(a, Some(remediate_with(&key))).await;
    let (id, arn) = w.account.guardrail("still-unfixed", None).await;
    let f = w
        .run(&event("CreateGuardrail.json", &w.account.id, &arn))
        .await;
    assert_eq!(f.action.kind, ActionKind::Alerted);
    assert!(
        f.action
            .detail
            .unwrap()
            .contains("the remediation key is encrypted with"),
        "says why"
    );
    assert!(w.account.draft(&id).await.kms_key_arn().is_none());
}

#[tokio::test]
async fn a_failed_call_is_ignored_without_a_single_aws_call() {
    let w = World::new("failed-call", None).await;
    let (_, arn) = w.account.guardrail("x", None).await;
    let before = w.account.calls().len();
    let mut e = event("UpdateGuardrail-failed.json", &w.account.id, &arn);
    e["detail"]["responseElements"] = Value::Null;
    let f = w.run(&e).await;
    assert_eq!(f.status, Status::Ignored);
    assert!(f.reason.contains("AccessDeniedException"));
    assert_eq!(f.action.kind, ActionKind::None);
    assert_eq!(
        w.account.calls().len(),
        before,
        "nothing read, nothing published"
    );
}

#[tokio::test]
async fn malformed_events_are_errors_not_findings() {
    let w = World::new("malformed", None).await;
    let ctx = w.account.context(w.env.clone());
    for bad in [
        json!("nope"),
        json!({"detail-type": "AWS API Call via CloudTrail", "source": "aws.bedrock"}),
        json!({"eventName": "InvokeModel", "eventSource": "bedrock.amazonaws.com"}),
    ] {
        match handle(&Guardrails::new(), &ctx, &bad, &Options::default()).await {
            Err(HandlerError::Intake(e)) => assert!(!e.to_string().is_empty()),
            other => panic!("{bad}: expected an intake error, got {other:?}"),
        }
    }
    assert!(w.messages().await.is_empty());
}

#[tokio::test]
async fn a_broken_settings_document_never_remediates_and_says_why() {
    let a = Account::new("broken-settings").await;
    let key = a.cmk(None).await;
    // "remediationKey" is misspelt: the document is refused as a whole.
    let doc = json!({"defaults": {"mode": "remediate", "remediationKey": {REGION: key}}});
    let w = World::new_in(a, Some(doc)).await;
    let (id, arn) = w.account.guardrail("misconfigured", None).await;
    let f = w
        .run(&event("CreateGuardrail.json", &w.account.id, &arn))
        .await;
    assert_eq!(f.status, Status::Error);
    assert_eq!(f.mode, Some(Mode::Alert));
    assert!(
        f.reason.contains("not a valid settings document") && f.reason.contains("remediationKey"),
        "{}",
        f.reason
    );
    assert!(
        f.reason.contains("key AWS owns"),
        "still reports the guardrail: {}",
        f.reason
    );
    assert!(
        w.account.draft(&id).await.kms_key_arn().is_none(),
        "not remediated"
    );
    let messages = w.messages().await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].status, Status::Error);
}

#[tokio::test]
async fn a_deleted_guardrail_is_ignored() {
    let w = World::new("deleted", None).await;
    let (id, arn) = w.account.guardrail("short-lived", None).await;
    w.account
        .bedrock
        .delete_guardrail()
        .guardrail_identifier(&id)
        .send()
        .await
        .unwrap();
    let f = w
        .run(&event("CreateGuardrail.json", &w.account.id, &arn))
        .await;
    assert_eq!(f.status, Status::Ignored);
    assert!(f.reason.contains("no longer exists"));
    assert!(w.messages().await.is_empty());
}

#[tokio::test]
async fn unreachable_aws_is_never_compliant_and_goes_back_to_be_retried() {
    let a = Account::new("unreachable").await;
    let (_, arn) = a.guardrail("x", None).await;
    // The same account, but every call goes to a port nobody listens on.
    let dead = a
        .config
        .to_builder()
        .endpoint_url("http://127.0.0.1:9")
        .build();
    let ctx = bedrock_cmk_guard::Context::new(dead, Env::default());
    ctx.set_home(bedrock_cmk_guard::clients::Home {
        account: a.id.clone(),
        partition: "aws".into(),
    });
    let result = handle(
        &Guardrails::new(),
        &ctx,
        &event("CreateGuardrail.json", &a.id, &arn),
        &Options::default(),
    )
    .await;
    // A network failure may pass: nothing is decided, the Lambda error path retries it (then
    // the DLQ keeps it). Never a COMPLIANT finding on missing evidence.
    match result {
        Err(HandlerError::Retry { reason, .. }) => {
            assert!(reason.contains("bedrock:GetGuardrail"), "{reason}")
        }
        other => panic!("expected a retry, got {other:?}"),
    }
}

#[tokio::test]
async fn another_accounts_guardrail_is_read_and_fixed_through_the_member_role() {
    let central = Account::new("central").await;
    let member = Account::new("member").await;
    let key = member.cmk(None).await;
    let (id, arn) = member.guardrail("member-guardrail", None).await;
    let doc = json!({"accounts": {member.id.clone(): {"mode": "remediate", "remediationKeys": {REGION: key}}}});
    let mut w = World::new_in(central, Some(doc)).await;
    w.env.member_role_name = Some("bedrock-cmk-guard-member".to_owned());

    let f = w
        .run(&event("CreateGuardrail.json", &member.id, &arn))
        .await;
    assert_eq!(f.account, member.id);
    assert_eq!(
        f.action.kind,
        ActionKind::Remediated,
        "{:?} / {}",
        f.action,
        f.reason
    );
    assert_eq!(member.draft(&id).await.kms_key_arn(), Some(key.as_str()));
    assert!(
        w.account.calls().iter().any(|c| c == "sts:AssumeRole"),
        "{:?}",
        w.account.calls()
    );
    assert!(
        member
            .calls()
            .iter()
            .any(|c| c.ends_with("UpdateGuardrail")),
        "the fix happened in the member account"
    );
    assert_eq!(
        w.messages().await.len(),
        1,
        "published to the central topic"
    );
}

#[tokio::test]
async fn an_alert_costs_three_sequential_round_trips_and_lists_only_its_own_versions() {
    let w = World::new("calls", None).await;
    let key = w.account.cmk(None).await;
    w.account
        .kms
        .disable_key()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    let (_, arn) = w.account.guardrail("counted", Some(&key)).await;
    let before = w.account.calls().len();
    w.run(&event("CreateGuardrail.json", &w.account.id, &arn))
        .await;
    let mut calls: Vec<String> = w.account.calls()[before..].to_vec();
    calls.sort();
    assert_eq!(
        calls,
        [
            "bedrock:GetGuardrail",
            "bedrock:ListGuardrails",
            "kms:DescribeKey",
            "sns:Publish",
            "ssm:GetParameter"
        ]
    );
}

#[tokio::test]
async fn the_key_named_in_the_request_is_described_early_but_never_believed() {
    let w = World::new("key-hint", None).await;
    let cmk = w.account.cmk(None).await;
    let (_, honest) = w.account.guardrail("honest", Some(&cmk)).await;
    let mut e = event("CreateGuardrail.json", &w.account.id, &honest);
    e["detail"]["requestParameters"]["kmsKeyId"] = json!(cmk);
    let before = w.account.calls().len();
    let f = w.run(&e).await;
    assert_eq!(f.status, Status::Compliant);
    let describes = w.account.calls()[before..]
        .iter()
        .filter(|c| c.ends_with("DescribeKey"))
        .count();
    assert_eq!(describes, 1, "the early DescribeKey serves the verdict");

    // The record says one key, the guardrail has another: the guardrail's own answer wins.
    let (_, liar) = w.account.guardrail("liar", Some("alias/aws/bedrock")).await;
    let mut e = event("CreateGuardrail.json", &w.account.id, &liar);
    e["detail"]["requestParameters"]["kmsKeyId"] = json!(cmk);
    let f = w.run(&e).await;
    assert_eq!(f.status, Status::NonCompliant, "{}", f.reason);
    assert!(f.reason.contains("AWS-managed key"), "{}", f.reason);
    assert_ne!(f.key.unwrap().arn.as_deref(), Some(cmk.as_str()));
    assert_eq!(w.messages().await.len(), 1);
}
