//! `cmk-guard doctor`: a read-only check of a deployment, with the caller's credentials.
//!
//! The functions' own configuration is the source of truth: each function's environment names
//! the topic, the settings parameter and the member role it uses, and the rules are found by
//! their target. Every check prints one line; anything that could not be read is a failure
//! that says what and why, never a pass.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use aws_config::{Region, SdkConfig};
use aws_sdk_cloudtrail::types::{AdvancedEventSelector, EventSelector, ReadWriteType, Trail};
use aws_sdk_eventbridge::types::RuleState;
use aws_sdk_sts::config::SharedCredentialsProvider;
use bedrock_cmk_guard::aws::AwsError;
use bedrock_cmk_guard::policy::{self, Need};
use bedrock_cmk_guard::settings::Settings;

/// What `doctor` was asked to look at.
#[derive(Debug, Clone)]
pub struct Target {
    /// The central stack's name: its functions are `<stack>-<function>`.
    pub stack: String,
    /// The functions the stack deploys (`guardrails`, `model-jobs`, ...).
    pub functions: Vec<&'static str>,
    /// Regions whose CloudTrail must log management events; empty: the caller's Region.
    pub regions: Vec<String>,
    /// Member accounts whose roles the functions assume.
    pub accounts: Vec<String>,
    /// The bus the rules are on.
    pub bus: String,
}

/// How one check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Fail,
    /// Nothing is known to be wrong, but the check could not be made with these credentials.
    Unknown,
}

/// One printed line: what was checked and what a person should know or do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub verdict: Verdict,
    pub check: String,
    pub detail: String,
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.verdict {
            Verdict::Ok => "ok",
            Verdict::Fail => "FAIL",
            Verdict::Unknown => "UNKNOWN",
        };
        write!(f, "{label:<7} {}: {}", self.check, self.detail)
    }
}

fn ok(check: impl Into<String>, detail: impl Into<String>) -> Line {
    Line {
        verdict: Verdict::Ok,
        check: check.into(),
        detail: detail.into(),
    }
}

fn fail(check: impl Into<String>, detail: impl fmt::Display) -> Line {
    Line {
        verdict: Verdict::Fail,
        check: check.into(),
        detail: detail.to_string(),
    }
}

/// A deployed function as its configuration describes it.
#[derive(Debug, Clone)]
struct Deployed {
    name: String,
    arn: String,
    role: String,
    env: HashMap<String, String>,
}

impl Deployed {
    /// `arn:<partition>:lambda:...`: member roles live in the same partition.
    fn partition(&self) -> &str {
        self.arn.split(':').nth(1).unwrap_or("aws")
    }
}

/// Runs every check and returns the lines in the order a person fixes things: credentials,
/// functions, what feeds them, where their findings go, their settings, their reach.
pub async fn run(config: &SdkConfig, target: &Target) -> Vec<Line> {
    let mut lines = Vec::new();
    let caller = match caller_arn(config).await {
        Ok(arn) => {
            lines.push(ok("credentials", format!("checking as {arn}")));
            arn
        }
        Err(e) => {
            lines.push(fail("credentials", format!("{e}: nothing can be checked")));
            return lines;
        }
    };
    let deployed = functions(config, target, &mut lines).await;
    for region in watched_regions(config, target) {
        lines.push(trail(config, &region).await);
    }
    for f in &deployed {
        lines.push(rules(config, target, f).await);
    }
    match shared_setting(&deployed, "ALERT_TOPIC_ARN") {
        Ok(Some(topic)) => {
            lines.push(topic_key(config, &topic).await);
            lines.push(subscriptions(config, &topic).await);
        }
        Ok(None) if deployed.is_empty() => {}
        Ok(None) => lines.push(fail(
            "alert topic",
            "no function sets ALERT_TOPIC_ARN: findings go nowhere",
        )),
        Err(e) => lines.push(fail("alert topic", e)),
    }
    match shared_setting(&deployed, "CONFIG_PARAMETER") {
        Ok(Some(name)) => lines.push(settings(config, &name).await),
        Ok(None) if deployed.is_empty() => {}
        Ok(None) => lines.push(ok(
            "settings",
            "no CONFIG_PARAMETER: every account uses the defaults (mode alert)",
        )),
        Err(e) => lines.push(fail("settings", e)),
    }
    for account in &target.accounts {
        for f in &deployed {
            lines.push(member_role(config, &caller, f, account).await);
        }
    }
    lines
}

/// The exit status: 0 when every check passed.
pub fn all_ok(lines: &[Line]) -> bool {
    lines.iter().all(|l| l.verdict == Verdict::Ok)
}

/// One line of totals, for the end of the output.
pub fn summary(lines: &[Line]) -> String {
    let count = |v| lines.iter().filter(|l| l.verdict == v).count();
    let (failed, unknown) = (count(Verdict::Fail), count(Verdict::Unknown));
    if failed + unknown == 0 {
        return format!("{} checks passed", lines.len());
    }
    format!(
        "{} checks: {} passed, {failed} failed, {unknown} could not be made",
        lines.len(),
        count(Verdict::Ok)
    )
}

async fn caller_arn(config: &SdkConfig) -> Result<String, AwsError> {
    const CALL: &str = "sts:GetCallerIdentity";
    let identity = aws_sdk_sts::Client::new(config)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| AwsError::from_sdk(CALL, &e))?;
    identity
        .arn()
        .map(str::to_owned)
        .ok_or_else(|| AwsError::new(CALL, "the answer names no caller", false))
}

/// Each function of the stack, with a line saying whether it is there.
async fn functions(config: &SdkConfig, target: &Target, lines: &mut Vec<Line>) -> Vec<Deployed> {
    let lambda = aws_sdk_lambda::Client::new(config);
    let mut deployed = Vec::new();
    for function in &target.functions {
        let name = format!("{}-{function}", target.stack);
        let check = format!("function {name}");
        let answer = match lambda
            .get_function_configuration()
            .function_name(&name)
            .send()
            .await
        {
            Ok(answer) => answer,
            Err(e) => {
                let e = AwsError::from_sdk("lambda:GetFunctionConfiguration", &e);
                lines.push(fail(
                    check,
                    format!("{e}: is the stack deployed in this Region under that name (--stack)?"),
                ));
                continue;
            }
        };
        let env: HashMap<String, String> = answer
            .environment()
            .and_then(|e| e.variables())
            .cloned()
            .unwrap_or_default();
        let (Some(arn), Some(role)) = (answer.function_arn(), answer.role()) else {
            lines.push(fail(check, "the answer names no function ARN or role"));
            continue;
        };
        lines.push(ok(check, format!("deployed, role {role}")));
        deployed.push(Deployed {
            arn: arn.to_owned(),
            role: role.to_owned(),
            name,
            env,
        });
    }
    deployed
}

/// A setting every function must agree on (they share one topic and one settings document).
fn shared_setting(deployed: &[Deployed], variable: &str) -> Result<Option<String>, String> {
    let values: BTreeSet<Option<&String>> = deployed.iter().map(|f| f.env.get(variable)).collect();
    match values.into_iter().collect::<Vec<_>>().as_slice() {
        [] | [None] => Ok(None),
        [Some(value)] => Ok(Some((*value).clone())),
        _ => Err(format!(
            "the functions disagree on {variable} ({}): redeploy them from one stack",
            deployed
                .iter()
                .map(|f| format!(
                    "{}={}",
                    f.name,
                    f.env.get(variable).map_or("unset", String::as_str)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn watched_regions(config: &SdkConfig, target: &Target) -> Vec<String> {
    if !target.regions.is_empty() {
        return target.regions.clone();
    }
    config
        .region()
        .map(|r| vec![r.to_string()])
        .unwrap_or_default()
}

/// CloudTrail delivers API calls to EventBridge only in a Region where a trail logs
/// management events (write ones: the guard reacts to Create/Update/Put calls).
async fn trail(config: &SdkConfig, region: &str) -> Line {
    let check = format!("trail in {region}");
    let in_region = |r: &str| {
        config
            .to_builder()
            .region(Region::new(r.to_owned()))
            .build()
    };
    let cloudtrail = aws_sdk_cloudtrail::Client::new(&in_region(region));
    let trails = match cloudtrail
        .describe_trails()
        .include_shadow_trails(true)
        .send()
        .await
    {
        Ok(answer) => answer.trail_list().to_vec(),
        Err(e) => return fail(check, AwsError::from_sdk("cloudtrail:DescribeTrails", &e)),
    };
    let mut seen = Vec::new();
    for t in &trails {
        // A multi-Region trail answers status and selectors in its home Region.
        let home = t.home_region().unwrap_or(region);
        let client = aws_sdk_cloudtrail::Client::new(&in_region(home));
        match trail_logs_writes(&client, t).await {
            Ok(None) => return ok(check, format!("{} logs management events", trail_name(t))),
            Ok(Some(why)) => seen.push(format!("{} {why}", trail_name(t))),
            Err(e) => seen.push(format!("{}: {e}", trail_name(t))),
        }
    }
    let found = if seen.is_empty() {
        "no trail".to_owned()
    } else {
        seen.join("; ")
    };
    fail(
        check,
        format!(
            "{found}: CloudTrail sends no API calls to EventBridge in {region}, so nothing there is checked; turn on a trail that logs write management events (an organisation trail covers every account)"
        ),
    )
}

fn trail_name(t: &Trail) -> String {
    let name = t.name().or(t.trail_arn()).unwrap_or("a trail");
    format!("trail {name}")
}

/// `None` when the trail is logging write management events; otherwise what it lacks.
async fn trail_logs_writes(
    client: &aws_sdk_cloudtrail::Client,
    trail: &Trail,
) -> Result<Option<&'static str>, AwsError> {
    let Some(id) = trail.trail_arn().or(trail.name()) else {
        return Ok(Some("has no name"));
    };
    let status = client
        .get_trail_status()
        .name(id)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("cloudtrail:GetTrailStatus", &e))?;
    if status.is_logging() != Some(true) {
        return Ok(Some("is not logging"));
    }
    let selectors = client
        .get_event_selectors()
        .trail_name(id)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("cloudtrail:GetEventSelectors", &e))?;
    let basic = selectors
        .event_selectors()
        .iter()
        .any(logs_write_management);
    let advanced = selectors
        .advanced_event_selectors()
        .iter()
        .any(advanced_logs_write_management);
    // A trail without selectors logs all management events (CloudTrail's default).
    let none_set =
        selectors.event_selectors().is_empty() && selectors.advanced_event_selectors().is_empty();
    Ok((!(basic || advanced || none_set)).then_some("logs no write management events"))
}

fn logs_write_management(s: &EventSelector) -> bool {
    s.include_management_events() != Some(false)
        && !matches!(s.read_write_type(), Some(ReadWriteType::ReadOnly))
}

/// An advanced selector for the Management category that does not keep read-only events only.
fn advanced_logs_write_management(s: &AdvancedEventSelector) -> bool {
    let fields = s.field_selectors();
    let equals = |field: &str, value: &str| {
        fields
            .iter()
            .any(|f| f.field() == field && f.equals().iter().any(|v| v == value))
    };
    equals("eventCategory", "Management") && !equals("readOnly", "true")
}

/// The function is fed: an enabled rule on the bus targets it, with a dead-letter queue so an
/// event EventBridge cannot deliver is kept.
async fn rules(config: &SdkConfig, target: &Target, f: &Deployed) -> Line {
    let check = format!("rules for {}", f.name);
    let events = aws_sdk_eventbridge::Client::new(config);
    let mut names = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let answer = match events
            .list_rule_names_by_target()
            .target_arn(&f.arn)
            .event_bus_name(&target.bus)
            .set_next_token(next.take())
            .send()
            .await
        {
            Ok(answer) => answer,
            Err(e) => {
                return fail(
                    check,
                    AwsError::from_sdk("events:ListRuleNamesByTarget", &e),
                )
            }
        };
        names.extend(answer.rule_names().iter().cloned());
        match answer.next_token() {
            Some(token) if !token.is_empty() => next = Some(token.to_owned()),
            _ => break,
        }
    }
    if names.is_empty() {
        return fail(
            check,
            format!(
                "no rule on bus {} targets {}: no event reaches it (is --bus right?)",
                target.bus, f.arn
            ),
        );
    }
    let mut problems = Vec::new();
    for name in &names {
        if let Some(problem) = rule_problem(&events, &target.bus, name, &f.arn).await {
            problems.push(problem);
        }
    }
    if problems.is_empty() {
        ok(
            check,
            format!("{} enabled, with a dead-letter queue", names.join(", ")),
        )
    } else {
        fail(check, problems.join("; "))
    }
}

async fn rule_problem(
    events: &aws_sdk_eventbridge::Client,
    bus: &str,
    name: &str,
    function_arn: &str,
) -> Option<String> {
    let rule = match events
        .describe_rule()
        .name(name)
        .event_bus_name(bus)
        .send()
        .await
    {
        Ok(rule) => rule,
        Err(e) => return Some(AwsError::from_sdk("events:DescribeRule", &e).to_string()),
    };
    if rule.state() != Some(&RuleState::Enabled) {
        let state = rule.state().map_or("no state", |s| s.as_str());
        return Some(format!(
            "rule {name} is {state}: enable it (aws events enable-rule --name {name} --event-bus-name {bus})"
        ));
    }
    let targets = match events
        .list_targets_by_rule()
        .rule(name)
        .event_bus_name(bus)
        .send()
        .await
    {
        Ok(answer) => answer.targets().to_vec(),
        Err(e) => return Some(AwsError::from_sdk("events:ListTargetsByRule", &e).to_string()),
    };
    let to_function = targets.iter().find(|t| t.arn() == function_arn);
    match to_function {
        None => Some(format!("rule {name} no longer targets the function")),
        Some(t) if t.dead_letter_config().and_then(|d| d.arn()).is_none() => Some(format!(
            "rule {name} has no dead-letter queue: an event it cannot deliver is lost"
        )),
        Some(_) => None,
    }
}

/// CloudWatch alarms can publish to an encrypted topic only when the key policy lets
/// `cloudwatch.amazonaws.com` use the key; the AWS-managed `alias/aws/sns` never does.
async fn topic_key(config: &SdkConfig, topic: &str) -> Line {
    let check = format!("alert topic {topic}");
    let sns = aws_sdk_sns::Client::new(config);
    let attributes = match sns.get_topic_attributes().topic_arn(topic).send().await {
        Ok(answer) => answer.attributes().cloned().unwrap_or_default(),
        Err(e) => return fail(check, AwsError::from_sdk("sns:GetTopicAttributes", &e)),
    };
    let Some(key) = attributes
        .get("KmsMasterKeyId")
        .filter(|k| !k.trim().is_empty())
    else {
        return fail(
            check,
            "not encrypted with a KMS key: findings sit in plain text; redeploy with AlertTopicKmsKeyId empty (the stack then creates a CMK)",
        );
    };
    let kms = aws_sdk_kms::Client::new(config);
    let described = match kms.describe_key().key_id(key).send().await {
        Ok(answer) => answer,
        Err(e) => return fail(check, AwsError::from_sdk("kms:DescribeKey", &e)),
    };
    let Some(metadata) = described.key_metadata() else {
        return fail(check, "kms:DescribeKey named no key");
    };
    if metadata.key_manager() == Some(&aws_sdk_kms::types::KeyManagerType::Aws) {
        return fail(
            check,
            format!("on the AWS-managed key {key}, whose policy cannot admit CloudWatch: the error and dead-letter alarms reach nobody; redeploy with AlertTopicKmsKeyId empty"),
        );
    }
    let policy = match kms
        .get_key_policy()
        .key_id(metadata.key_id())
        .policy_name("default")
        .send()
        .await
    {
        Ok(answer) => answer.policy().unwrap_or_default().to_owned(),
        Err(e) => return fail(check, AwsError::from_sdk("kms:GetKeyPolicy", &e)),
    };
    let policy = match serde_json::from_str(&policy) {
        Ok(policy) => policy,
        Err(e) => return fail(check, format!("the key policy is not JSON: {e}")),
    };
    let missing = policy::missing(
        &policy,
        Need {
            principals: &["cloudwatch.amazonaws.com"],
            actions: &["kms:GenerateDataKey", "kms:Decrypt"],
        },
    );
    if missing.is_empty() {
        ok(
            check,
            format!("on key {key}, whose policy lets CloudWatch alarms publish"),
        )
    } else {
        fail(
            check,
            format!(
                "the policy of key {key} does not let cloudwatch.amazonaws.com use {}: the alarms cannot publish",
                missing.join(", ")
            ),
        )
    }
}

/// Somebody hears the alerts: at least one confirmed subscription.
async fn subscriptions(config: &SdkConfig, topic: &str) -> Line {
    let check = "subscriptions";
    let sns = aws_sdk_sns::Client::new(config);
    let subscriptions = match sns
        .list_subscriptions_by_topic()
        .topic_arn(topic)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
    {
        Ok(all) => all,
        Err(e) => {
            return fail(
                check,
                AwsError::from_sdk("sns:ListSubscriptionsByTopic", &e),
            )
        }
    };
    // A subscription awaiting confirmation has "PendingConfirmation" for an ARN.
    let (confirmed, pending): (Vec<_>, Vec<_>) = subscriptions
        .iter()
        .partition(|s| s.subscription_arn().is_some_and(|a| a.starts_with("arn:")));
    let confirmed: Vec<&str> = confirmed
        .iter()
        .map(|s| s.protocol().unwrap_or("?"))
        .collect();
    let pending_note = match pending.len() {
        0 => String::new(),
        n => format!("; {n} awaiting confirmation (open the e-mail SNS sent)"),
    };
    if confirmed.is_empty() {
        return fail(
            check,
            format!("nobody is subscribed to the alert topic: findings and alarms reach no one{pending_note}"),
        );
    }
    ok(
        check,
        format!(
            "{} confirmed ({}){pending_note}",
            confirmed.len(),
            confirmed.join(", ")
        ),
    )
}

/// The settings document the functions read parses, so no account falls back to an error.
async fn settings(config: &SdkConfig, name: &str) -> Line {
    let check = format!("settings {name}");
    let ssm = aws_sdk_ssm::Client::new(config);
    let answer = match ssm
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
    {
        Ok(answer) => answer,
        Err(e) => return fail(check, AwsError::from_sdk("ssm:GetParameter", &e)),
    };
    let text = answer
        .parameter()
        .and_then(|p| p.value())
        .unwrap_or_default();
    match Settings::parse(text) {
        Ok(settings) => ok(check, format!("valid: {}", settings.summary())),
        Err(e) => fail(
            check,
            format!("not a valid settings document, so every event ends as an ERROR: {e}"),
        ),
    }
}

/// The function can reach the account: its member role can be assumed. The member role trusts
/// only the function's own role, so with other credentials a refusal proves nothing either way.
async fn member_role(config: &SdkConfig, caller: &str, f: &Deployed, account: &str) -> Line {
    let Some(role_name) = f.env.get("MEMBER_ROLE_NAME") else {
        return fail(
            format!("member role for {} in {account}", f.name),
            "the function has no MEMBER_ROLE_NAME: it cannot reach other accounts",
        );
    };
    let role = format!("arn:{}:iam::{account}:role/{role_name}", f.partition());
    let check = format!("member role {role}");
    let sts = aws_sdk_sts::Client::new(config);
    let assumed = sts
        .assume_role()
        .role_arn(&role)
        .role_session_name("cmk-guard-doctor")
        .send()
        .await;
    let credentials = match assumed {
        Ok(answer) => answer.credentials().cloned(),
        Err(e) => {
            let e = AwsError::from_sdk("sts:AssumeRole", &e);
            return if is_session_of(caller, &f.role) {
                fail(
                    check,
                    format!("the function's own role cannot assume it: {e}"),
                )
            } else {
                Line {
                    verdict: Verdict::Unknown,
                    check,
                    detail: format!(
                        "not assumable as {caller} ({e}); as deployed, it trusts only the function's role {}: only a session of that role can tell",
                        f.role
                    ),
                }
            };
        }
    };
    let Some(credentials) = credentials else {
        return fail(check, "sts:AssumeRole returned no credentials");
    };
    // The role is only proven when its credentials work and land in that account.
    let provider = aws_sdk_sts::config::Credentials::new(
        credentials.access_key_id(),
        credentials.secret_access_key(),
        Some(credentials.session_token().to_owned()),
        None,
        "cmk-guard-doctor",
    );
    let as_member = config
        .to_builder()
        .credentials_provider(SharedCredentialsProvider::new(provider))
        .build();
    match caller_arn(&as_member).await {
        Ok(arn) if arn.split(':').nth(4) == Some(account) => {
            ok(check, format!("assumable ({arn})"))
        }
        Ok(arn) => fail(
            check,
            format!("its credentials act as {arn}, not in account {account}"),
        ),
        Err(e) => fail(
            check,
            format!("assumed, but its credentials do not work: {e}"),
        ),
    }
}

/// Whether `caller` (an STS identity ARN) is a session of the IAM role `role`.
fn is_session_of(caller: &str, role: &str) -> bool {
    let Some(role_name) = role.rsplit('/').next() else {
        return false;
    };
    let same_account = caller.split(':').nth(4) == role.split(':').nth(4);
    let session_role = caller
        .split(":assumed-role/")
        .nth(1)
        .and_then(|rest| rest.split('/').next());
    same_account && session_role == Some(role_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_of_the_function_role_is_recognised() {
        let role = "arn:aws:iam::111122223333:role/guard-us-east-1-guardrails";
        assert!(is_session_of(
            "arn:aws:sts::111122223333:assumed-role/guard-us-east-1-guardrails/s",
            role
        ));
        assert!(!is_session_of(
            "arn:aws:sts::111122223333:assumed-role/Admin/alice",
            role
        ));
        assert!(!is_session_of(
            "arn:aws:sts::444455556666:assumed-role/guard-us-east-1-guardrails/s",
            role
        ));
        assert!(!is_session_of("arn:aws:iam::111122223333:user/alice", role));
    }

    #[test]
    fn functions_that_disagree_on_the_topic_are_named() {
        let f = |name: &str, topic: Option<&str>| Deployed {
            name: name.to_owned(),
            arn: format!("arn:aws:lambda:us-east-1:1:function:{name}"),
            role: "r".to_owned(),
            env: topic
                .map(|t| HashMap::from([("ALERT_TOPIC_ARN".to_owned(), t.to_owned())]))
                .unwrap_or_default(),
        };
        let same = [f("a", Some("t")), f("b", Some("t"))];
        assert_eq!(
            shared_setting(&same, "ALERT_TOPIC_ARN"),
            Ok(Some("t".into()))
        );
        let differ = [f("a", Some("t")), f("b", None)];
        let e = shared_setting(&differ, "ALERT_TOPIC_ARN").unwrap_err();
        assert!(e.contains("a=t") && e.contains("b=unset"), "{e}");
    }
}
