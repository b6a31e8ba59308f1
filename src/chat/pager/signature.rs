//! PagerDuty V3 webhook signatures (PagerDuty/developer-docs `docs/webhooks/04-Signatures.md`):
//! `X-PagerDuty-Signature` holds one `v1=<hex HMAC-SHA256 of the raw body>` per signing secret,
//! comma-separated ("Multiple signatures may be present to allow for a zero-downtime secret
//! rotation"); the delivery is authentic "if at least one of the signatures matches", compared
//! in constant time.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Whether `X-PagerDuty-Signature` (`v1=<hex>` per secret, comma-separated) carries a valid
/// HMAC-SHA256 of `body` under any of `secrets`, compared in constant time.
pub fn webhook_signature_valid(secrets: &[String], header: Option<&str>, body: &[u8]) -> bool {
    let Some(header) = header else {
        return false;
    };
    // Step 1 of the doc: split on `,`, keep only `v1` signatures. Hex case is not specified
    // ("Base16"); decoding first makes the comparison case-blind.
    let signatures: Vec<Vec<u8>> = header
        .split(',')
        .filter_map(|part| part.trim().strip_prefix("v1="))
        .filter_map(|hex_sig| hex::decode(hex_sig.trim()).ok())
        .collect();
    let mut valid = false;
    for secret in secrets.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
            continue;
        };
        mac.update(body);
        for signature in &signatures {
            // `verify_slice` compares in constant time; every pair is tried so the time
            // spent does not say which one matched.
            valid |= mac.clone().verify_slice(signature).is_ok();
        }
    }
    valid
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key");
        mac.update(body);
        format!("v1={}", hex::encode(mac.finalize().into_bytes()))
    }

    fn secrets(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    const BODY: &[u8] = br#"{"event":{"event_type":"incident.acknowledged"}}"#;

    #[test]
    fn one_matching_signature_is_enough() {
        let header = format!("{},{}", sign("other", BODY), sign("current", BODY));
        assert!(webhook_signature_valid(
            &secrets(&["current"]),
            Some(&header),
            BODY
        ));
    }

    #[test]
    fn during_a_rotation_either_secret_may_sign() {
        let header = sign("old", BODY);
        assert!(webhook_signature_valid(
            &secrets(&["new", "old"]),
            Some(&header),
            BODY
        ));
    }

    #[test]
    fn a_changed_body_a_wrong_secret_or_no_header_is_refused() {
        let header = sign("current", BODY);
        assert!(!webhook_signature_valid(
            &secrets(&["current"]),
            Some(&header),
            b"{}"
        ));
        assert!(!webhook_signature_valid(
            &secrets(&["wrong"]),
            Some(&header),
            BODY
        ));
        assert!(!webhook_signature_valid(&secrets(&["current"]), None, BODY));
        assert!(!webhook_signature_valid(&[], Some(&header), BODY));
    }

    #[test]
    fn other_versions_and_garbage_are_ignored() {
        let good = sign("current", BODY);
        let v2 = good.replacen("v1=", "v2=", 1);
        assert!(!webhook_signature_valid(
            &secrets(&["current"]),
            Some(&v2),
            BODY
        ));
        let header = format!("v1=zz-not-hex, {good}");
        assert!(webhook_signature_valid(
            &secrets(&["current"]),
            Some(&header),
            BODY
        ));
        assert!(!webhook_signature_valid(
            &secrets(&["current"]),
            Some(""),
            BODY
        ));
    }
}
