//! Golden vectors from the specification (saas-v2.md §2.7 and §3): the contract every signer must meet.

use koogate_protocol::body_sign;
use koogate_protocol::signature::{sign_payload, verify, MatchedForm, SignatureParams, TimeWindow};
use koogate_protocol::AccessKey;

const KEY: &str = "TestAccessKey1234567890";

fn params(signature: &str, timestamp: &str, nonce: &str) -> SignatureParams {
    SignatureParams {
        signature: Some(signature.into()),
        timestamp: Some(timestamp.into()),
        nonce: Some(nonce.into()),
    }
}

#[test]
fn spec_2_7_first_vector_signs_to_the_published_value() {
    let body = r#"{"activity":"newInstance","businessId":"87b94795-0603-4e24-8ae5-69420d60e3c8","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"1"}"#;
    let nonce = "50D83FDECAED6CCD8EF597F2A577950527928BA287D04E6036E92B2806FD17DA";
    let key = AccessKey::from_text(KEY);
    let expected = "af31f002ec805322f028cca9c32effd5d9787ff3bab0a13dd3a7509e28244565";
    assert_eq!(sign_payload(&key, nonce, "1680508066618", body.as_bytes()), expected);
    // The platform sends upper case; the comparison ignores case.
    let verified = verify(
        &key,
        &params(&expected.to_uppercase(), "1680508066618", nonce),
        body.as_bytes(),
        1_680_508_066_618,
        TimeWindow::default(),
    )
    .unwrap();
    assert_eq!(verified.matched(), MatchedForm::Raw);
}

#[test]
fn spec_2_7_second_vector_matches_raw_and_canonical_forms() {
    let key = AccessKey::from_text(KEY);
    let nonce = "9FB42E04DF4594B1FAA50B304E647AD7154AB9B4F144A65F1168886540A8B24C";
    let raw = r#"{"testFlag":"1", "instanceId":"10e758d0-31ad-4c4b-8f1b-81d03469a10e", "activity":"queryInstance"}"#;
    let raw_sig = "16ef573c0958d9c1f3c55c98c28f7adedbfb5a211ca90d164392162be1a1da7c";
    let canonical_sig = "f3fca93b7b6444aadf9e0dc3e780deaafb8d82e81302ee2e60c5ecbb877298c3";
    assert_eq!(sign_payload(&key, nonce, "1680508237508", raw.as_bytes()), raw_sig);

    let now = 1_680_508_237_508;
    let check = |sig: &str| {
        verify(&key, &params(sig, "1680508237508", nonce), raw.as_bytes(), now, TimeWindow::default())
    };
    assert_eq!(check(raw_sig).unwrap().matched(), MatchedForm::Raw);
    assert_eq!(check(canonical_sig).unwrap().matched(), MatchedForm::Canonical);
    assert!(check(&canonical_sig.replace('f', "e")).is_err());
}

#[test]
fn spec_3_body_sign_vector() {
    let key = AccessKey::from_text(KEY);
    let body = r#"{"instanceId":"87b94795-0603-4e24-8ae5-69420d60e3c8","resultCode":"000000","resultMsg":"success."}"#;
    assert_eq!(
        body_sign::header_value(&key, body.as_bytes()),
        r#"sign_type="HMAC-SHA256", signature= "J5zUkidX+mEVPV8saIigFFPDhhCHxZAF8Q7ZcrlIj2g=""#
    );
}
