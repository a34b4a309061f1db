//! KooGallery result codes (spec §7): six-character strings, `000000` alone meaning success.

use serde::{Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResultCode {
    /// `000000` success.
    Success,
    /// `000001` authentication failed.
    InvalidToken,
    /// `000002` invalid request parameter.
    InvalidParam,
    /// `000003` instance does not exist.
    InstanceNotFound,
    /// `000004` accepted, being processed asynchronously.
    Processing,
    /// `000005` other internal error.
    InternalError,
    /// `000100` no instance resource available.
    NoResource,
    /// `000101` mobile number missing or already exists.
    MobileInUse,
    /// `000102` e-mail missing or already exists.
    EmailInUse,
    /// `000103` product already purchased.
    AlreadyPurchased,
    /// `000104` internal service error of the product.
    ProductError,
    /// `000105` the account already subscribed to the benefit.
    AlreadySubscribed,
    /// `000106` product resources sold out.
    SoldOut,
    /// `000107` SaaS e-mail domain already exists.
    EmailDomainInUse,
}

const ALL: [ResultCode; 14] = [
    ResultCode::Success,
    ResultCode::InvalidToken,
    ResultCode::InvalidParam,
    ResultCode::InstanceNotFound,
    ResultCode::Processing,
    ResultCode::InternalError,
    ResultCode::NoResource,
    ResultCode::MobileInUse,
    ResultCode::EmailInUse,
    ResultCode::AlreadyPurchased,
    ResultCode::ProductError,
    ResultCode::AlreadySubscribed,
    ResultCode::SoldOut,
    ResultCode::EmailDomainInUse,
];

impl ResultCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ResultCode::Success => "000000",
            ResultCode::InvalidToken => "000001",
            ResultCode::InvalidParam => "000002",
            ResultCode::InstanceNotFound => "000003",
            ResultCode::Processing => "000004",
            ResultCode::InternalError => "000005",
            ResultCode::NoResource => "000100",
            ResultCode::MobileInUse => "000101",
            ResultCode::EmailInUse => "000102",
            ResultCode::AlreadyPurchased => "000103",
            ResultCode::ProductError => "000104",
            ResultCode::AlreadySubscribed => "000105",
            ResultCode::SoldOut => "000106",
            ResultCode::EmailDomainInUse => "000107",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        ALL.into_iter().find(|c| c.as_str() == code)
    }

    pub fn is_success(self) -> bool {
        self == ResultCode::Success
    }

    /// The `resultMsg` Huawei's demo sends with the code, used when there is nothing more specific to say.
    pub fn default_message(self) -> &'static str {
        match self {
            ResultCode::Success => "success.",
            ResultCode::InvalidToken => "token is invalid",
            ResultCode::InvalidParam => "param is invalid",
            ResultCode::InstanceNotFound => "instance is invalid",
            ResultCode::Processing => "request is processing",
            ResultCode::InternalError => "other inner error",
            ResultCode::NoResource => "no available resource",
            ResultCode::MobileInUse => "mobile phone is empty or already exists",
            ResultCode::EmailInUse => "email is empty or already exists",
            ResultCode::AlreadyPurchased => "product already purchased",
            ResultCode::ProductError => "product internal error",
            ResultCode::AlreadySubscribed => "account already subscribed to the benefit",
            ResultCode::SoldOut => "product resources sold out",
            ResultCode::EmailDomainInUse => "email domain already exists",
        }
    }
}

impl std::fmt::Display for ResultCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ResultCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_and_is_six_digits() {
        for code in ALL {
            assert_eq!(code.as_str().len(), 6);
            assert_eq!(ResultCode::parse(code.as_str()), Some(code));
        }
        assert_eq!(ResultCode::parse("0000004"), None);
    }
}
