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

mod apig {
    use koogate_protocol::apig::{authorization, canonical_request, ApigRequest, Credentials};

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    #[test]
    fn vector_a_official_huawei_example() {
        let query = pairs(&[("limit", "2"), ("marker", "13551d6b-755d-4757-b956-536f674975c0")]);
        let headers = pairs(&[
            ("Content-Type", "application/json"),
            ("Host", "service.region.example.com"),
            ("X-Sdk-Date", "20191115T033655Z"),
        ]);
        let request = ApigRequest {
            method: "GET",
            path: "/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs",
            query: &query,
            headers: &headers,
            body: b"",
        };
        assert_eq!(
            canonical_request(&request),
            "GET\n/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs/\nlimit=2&marker=13551d6b-755d-4757-b956-536f674975c0\n\
             content-type:application/json\nhost:service.region.example.com\nx-sdk-date:20191115T033655Z\n\n\
             content-type;host;x-sdk-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let credentials =
            Credentials::new("QTWAOYTTINDUT2QVKYUC", "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc");
        assert_eq!(
            authorization(&request, &credentials).unwrap(),
            "SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, SignedHeaders=content-type;host;x-sdk-date, \
             Signature=7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe"
        );
    }

    #[test]
    fn vector_b_query_order() {
        let query = pairs(&[("orderLineId", "MOCKPERIODYEARNEW-000001"), ("orderId", "MOCKPERIODYEARNEW")]);
        let headers = pairs(&[
            ("Content-Type", "application/json"),
            ("Host", "mkt.myhuaweicloud.com"),
            ("X-Sdk-Date", "20240317T144237Z"),
        ]);
        let request = ApigRequest {
            method: "GET",
            path: "/api/mkp-openapi-public/global/v1/order/query",
            query: &query,
            headers: &headers,
            body: b"",
        };
        let credentials =
            Credentials::new("EXAMPLEAK000000000001", "EXAMPLESK0000000000000000000000000000001");
        assert!(authorization(&request, &credentials)
            .unwrap()
            .ends_with("Signature=ebab0adfa1ca5ff2b7d70917a10eddf0acaf1164f33cf6e716ffd48a2154836e"));
    }

    #[test]
    fn vector_c_post_with_and_without_an_extra_header() {
        let mut headers = pairs(&[
            ("Content-Type", "application/json"),
            ("X-Sdk-Date", "20240317T144237Z"),
            ("x-stage", "RELEASE"),
            ("Host", "mkt.myhuaweicloud.com"),
        ]);
        let credentials = Credentials::new("test", "123");
        let sign = |headers: &[(String, String)]| {
            let request = ApigRequest {
                method: "POST",
                path: "/api/mkp-openapi-public/global/v1/license/activate",
                query: &[],
                headers,
                body: b"",
            };
            authorization(&request, &credentials).unwrap()
        };
        let with_stage = sign(&headers);
        assert!(with_stage.contains("SignedHeaders=content-type;host;x-sdk-date;x-stage"));
        assert!(with_stage
            .ends_with("Signature=77595ad624b6e4e49990b8c4e84bf1c287457fca61069c4e60b9b6765b52053d"));
        headers.retain(|(name, _)| name != "x-stage");
        assert!(sign(&headers)
            .ends_with("Signature=6dbe528da4cb33aa976ce22d6262d5c23b46bf9ebba18720c2330b38ac1bd8c5"));
    }
}
