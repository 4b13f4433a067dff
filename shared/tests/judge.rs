//! The judge as a table: key evidence + account settings -> verdict. No I/O.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bedrock_cmk_guard::finding::Severity;
use bedrock_cmk_guard::keys::{KeyEvidence, KeyInfo, KeyManager, KeyRef};
use bedrock_cmk_guard::settings::AccountSettings;
use bedrock_cmk_guard::verdict::{judge_key, KeyProblem, Location, Verdict};

const ACCOUNT: &str = "111122223333";
const KEY_ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";

fn arn(account: &str, region: &str) -> String {
    format!("arn:aws:kms:{region}:{account}:key/{KEY_ID}")
}

fn key(manager: KeyManager, state: &str, account: &str, region: &str) -> KeyEvidence {
    shaped(
        manager,
        state,
        account,
        region,
        "SYMMETRIC_DEFAULT",
        "ENCRYPT_DECRYPT",
    )
}

fn shaped(
    manager: KeyManager,
    state: &str,
    account: &str,
    region: &str,
    spec: &str,
    usage: &str,
) -> KeyEvidence {
    KeyEvidence::Described {
        reference: KeyRef::parse("alias/some-alias").unwrap(),
        info: KeyInfo {
            arn: arn(account, region),
            key_id: KEY_ID.to_owned(),
            account: account.to_owned(),
            region: region.to_owned(),
            manager,
            state: state.to_owned(),
            deletion_date: (state == "PendingDeletion").then(|| "2026-12-01T00:00:00Z".to_owned()),
            spec: (!spec.is_empty()).then(|| spec.to_owned()),
            usage: (!usage.is_empty()).then(|| usage.to_owned()),
        },
    }
}

fn cmk(state: &str) -> KeyEvidence {
    key(KeyManager::Customer, state, ACCOUNT, "us-east-1")
}

fn settings(f: impl FnOnce(&mut AccountSettings)) -> AccountSettings {
    let mut s = AccountSettings::default();
    f(&mut s);
    s
}

#[test]
fn each_key_case_has_its_own_verdict_reason_and_severity() {
    let at = Location {
        account: ACCOUNT.to_owned(),
        region: "us-east-1".to_owned(),
        partition: "aws".to_owned(),
    };
    let other_id = "arn:aws:kms:us-east-1:111122223333:key/99999999-12ab-34cd-56ef-1234567890ab";
    let reference = KeyRef::parse(&arn(ACCOUNT, "us-east-1")).unwrap();
    type Case = (
        &'static str,
        KeyEvidence,
        AccountSettings,
        Option<KeyProblem>,
        Severity,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "enabled CMK",
            cmk("Enabled"),
            settings(|_| {}),
            None,
            Severity::Info,
            "customer-managed key",
        ),
        (
            "no key at all",
            KeyEvidence::AwsOwned,
            settings(|_| {}),
            Some(KeyProblem::AwsOwned),
            Severity::Medium,
            "key AWS owns",
        ),
        (
            "AWS-managed key",
            key(KeyManager::Aws, "Enabled", ACCOUNT, "us-east-1"),
            settings(|_| {}),
            Some(KeyProblem::AwsManaged),
            Severity::Medium,
            "AWS-managed key",
        ),
        (
            "disabled CMK",
            cmk("Disabled"),
            settings(|_| {}),
            Some(KeyProblem::Disabled),
            Severity::High,
            "disabled",
        ),
        (
            "CMK pending deletion",
            cmk("PendingDeletion"),
            settings(|_| {}),
            Some(KeyProblem::PendingDeletion),
            Severity::Critical,
            "scheduled for deletion on 2026-12-01",
        ),
        (
            "replica pending deletion",
            cmk("PendingReplicaDeletion"),
            settings(|_| {}),
            Some(KeyProblem::PendingDeletion),
            Severity::Critical,
            "scheduled for deletion",
        ),
        (
            "CMK pending import",
            cmk("PendingImport"),
            settings(|_| {}),
            Some(KeyProblem::PendingImport),
            Severity::High,
            "not been imported",
        ),
        (
            "CMK unavailable",
            cmk("Unavailable"),
            settings(|_| {}),
            Some(KeyProblem::NotEnabled),
            Severity::High,
            "Unavailable, not Enabled",
        ),
        (
            "deleted key",
            KeyEvidence::NotFound {
                reference: reference.clone(),
            },
            settings(|_| {}),
            Some(KeyProblem::NotFound),
            Severity::High,
            "does not exist",
        ),
        (
            "key of another account",
            key(KeyManager::Customer, "Enabled", "444455556666", "us-east-1"),
            settings(|_| {}),
            Some(KeyProblem::ForeignAccount),
            Severity::Medium,
            "account 444455556666",
        ),
        (
            "key of an allowed account",
            key(KeyManager::Customer, "Enabled", "444455556666", "us-east-1"),
            settings(|s| s.allowed_key_accounts = vec!["444455556666".into()]),
            None,
            Severity::Info,
            "Enabled, allowed",
        ),
        (
            "key in another region",
            key(KeyManager::Customer, "Enabled", ACCOUNT, "eu-west-1"),
            settings(|_| {}),
            Some(KeyProblem::ForeignRegion),
            Severity::Medium,
            "is in eu-west-1",
        ),
        (
            "CMK not on the allow-list",
            cmk("Enabled"),
            settings(|s| s.allowed_keys = vec![KeyRef::parse(other_id).unwrap()]),
            Some(KeyProblem::NotAllowed),
            Severity::Medium,
            "allowedKeys",
        ),
        (
            "CMK allowed by ARN",
            cmk("Enabled"),
            settings(|s| s.allowed_keys = vec![reference.clone()]),
            None,
            Severity::Info,
            "allowed",
        ),
        (
            "asymmetric signing key",
            shaped(
                KeyManager::Customer,
                "Enabled",
                ACCOUNT,
                "us-east-1",
                "RSA_2048",
                "SIGN_VERIFY",
            ),
            settings(|_| {}),
            Some(KeyProblem::CannotEncrypt),
            Severity::High,
            "cannot encrypt data",
        ),
        (
            "asymmetric encryption key",
            shaped(
                KeyManager::Customer,
                "Enabled",
                ACCOUNT,
                "us-east-1",
                "RSA_2048",
                "ENCRYPT_DECRYPT",
            ),
            settings(|_| {}),
            Some(KeyProblem::CannotEncrypt),
            Severity::High,
            "a RSA_2048 key for ENCRYPT_DECRYPT",
        ),
        (
            "HMAC key",
            shaped(
                KeyManager::Customer,
                "Enabled",
                ACCOUNT,
                "us-east-1",
                "HMAC_256",
                "GENERATE_VERIFY_MAC",
            ),
            settings(|_| {}),
            Some(KeyProblem::CannotEncrypt),
            Severity::High,
            "symmetric encryption key",
        ),
        (
            "CMK allowed by key id",
            cmk("Enabled"),
            settings(|s| s.allowed_keys = vec![KeyRef::parse(KEY_ID).unwrap()]),
            None,
            Severity::Info,
            "allowed",
        ),
    ];
    for (name, evidence, settings, problem, severity, reason) in cases {
        let verdict = judge_key(&evidence, &settings, &at, "the guardrail");
        match (&verdict, problem) {
            (Verdict::Compliant { .. }, None) => {}
            (Verdict::NonCompliant { problem: got, .. }, Some(want)) => {
                assert_eq!(*got, want, "{name}")
            }
            _ => panic!("{name}: expected {problem:?}, got {verdict:?}"),
        }
        assert_eq!(verdict.severity(), severity, "{name}");
        assert!(
            verdict.reason().contains(reason),
            "{name}: {:?} lacks {reason:?}",
            verdict.reason()
        );
        assert!(
            verdict.reason().starts_with("the guardrail"),
            "{name}: {}",
            verdict.reason()
        );
    }
}

#[test]
fn a_key_that_could_not_be_described_is_an_error_never_compliant() {
    let at = Location {
        account: ACCOUNT.to_owned(),
        region: "us-east-1".to_owned(),
        partition: "aws".to_owned(),
    };
    let evidence = KeyEvidence::Unverified {
        reference: KeyRef::parse(&arn(ACCOUNT, "us-east-1")).unwrap(),
        error: "DescribeKey AccessDeniedException: not authorized".to_owned(),
        retryable: false,
    };
    let verdict = judge_key(&evidence, &AccountSettings::default(), &at, "the guardrail");
    assert!(matches!(verdict, Verdict::Error { .. }), "{verdict:?}");
    assert!(verdict.reason().contains("AccessDeniedException"));

    // A DescribeKey answer that does not say what kind of key it is proves nothing either.
    let silent = shaped(
        KeyManager::Customer,
        "Enabled",
        ACCOUNT,
        "us-east-1",
        "",
        "",
    );
    let verdict = judge_key(&silent, &AccountSettings::default(), &at, "the guardrail");
    assert!(matches!(verdict, Verdict::Error { .. }), "{verdict:?}");
    assert!(verdict.reason().contains("KeySpec"), "{}", verdict.reason());
}
