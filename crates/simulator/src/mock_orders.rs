//! The debugging orders KooGallery's Query Order serves to every merchant (open-apis §4.3), with
//! plausible contents per order type. Line ids are the order id plus `-000001`.

use koogate_protocol::open_api::{BuyerInfo, ExtendParam, OrderInfo, OrderLine, ProductInfo};

/// `(order id, order type, charging mode, period type)` of each documented mock order.
const MOCKS: [(&str, &str, &str, Option<&str>); 9] = [
    ("MOCKPERIODYEARNEW", "NEW", "PERIOD", Some("year")),
    ("MOCKONETIMENEW", "NEW", "ONE_TIME", None),
    ("MOCKONDEMAND", "NEW", "ON_DEMAND", None),
    ("MOCKONDEMANDPKG", "NEW", "ON_DEMAND_PKG", None),
    ("MOCKPERIODDAYTRIAL", "TRIAL", "PERIOD", Some("day")),
    ("MOCKMONTYTRIALTOFORMAL", "TRIAL_TO_FORMAL", "PERIOD", Some("month")),
    ("MOCKMONTYUNSUBSCRIBE", "UNSUBSCRIBE", "PERIOD", Some("month")),
    ("MOCKMONTYRENEW", "RENEW", "PERIOD", Some("month")),
    ("MOCKMONTYCHANGE", "CHANGE", "PERIOD", Some("month")),
];

/// The documented mock orders.
pub fn mock_orders() -> Vec<OrderInfo> {
    MOCKS
        .iter()
        .map(|&(id, order_type, charging_mode, period)| mock_order(id, order_type, charging_mode, period))
        .collect()
}

fn mock_order(order_id: &str, order_type: &str, charging_mode: &str, period_type: Option<&str>) -> OrderInfo {
    let periodic = period_type.is_some();
    OrderInfo {
        order_id: order_id.into(),
        order_type: Some(order_type.into()),
        create_time: Some("20241121090846".into()),
        order_line: vec![OrderLine {
            order_line_id: format!("{order_id}-000001"),
            charging_mode: Some(charging_mode.into()),
            expire_time: periodic.then(|| "20251121235959".into()),
            period_type: period_type.map(Into::into),
            period_number: periodic.then_some(1),
            product_info: vec![ProductInfo {
                product_id: Some("OFFI846204237451911168".into()),
                sku_code: Some("0a4d1578-7f3c-4c1e-9a55-3b5e2f6c8d01".into()),
                linear_value: Some(50),
                product_name: Some("koogate mock product".into()),
            }],
            extend_params: vec![
                ExtendParam { name: "emailDomainName".into(), value: Some("test.example.com".into()) },
                ExtendParam { name: "ip".into(), value: Some("127.0.0.1".into()) },
            ],
            currency: Some("100".into()),
            currency_after_discount: Some("100".into()),
        }],
        buyer_info: Some(BuyerInfo {
            mobile_phone: Some("138****0000".into()),
            email: Some("buyer@example.com".into()),
            customer_id: Some("0a1b2c3d4e5f".into()),
            customer_name: Some("mock-customer".into()),
            customer_real_name: Some("Mock Customer Ltd.".into()),
            customer_type: Some(0),
            user_id: None,
            user_name: None,
        }),
        extend_params: Vec::new(),
    }
}
