//! The one place that decides which result code and message each failure of a basic-interface call
//! gets. Every failure is still an HTTP 200 with a JSON body.

use koogate_protocol::messages::MessageError;
use koogate_protocol::{CallbackResponse, ResultCode, VerifyError};
use koogate_store::StoreError;

use crate::crypto::CryptoError;
use crate::provision::ProvisionError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error(transparent)]
    Message(#[from] MessageError),
    #[error("the nonce was already used")]
    Replay,
    #[error("the body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the instance does not exist")]
    InstanceNotFound,
    #[error("the instance was released")]
    InstanceReleased,
    #[error("provisioning failed: {0}")]
    Provision(#[from] ProvisionError),
    #[error("the instance cannot be changed to the requested specification")]
    ChangeRejected(ResultCode),
    #[error("storage failed")]
    Store(#[from] StoreError),
    #[error("stored credentials are unusable")]
    Credentials(#[from] CryptoError),
    #[error("handling took longer than the callback timeout")]
    Timeout,
}

impl ServiceError {
    pub fn result_code(&self) -> ResultCode {
        match self {
            ServiceError::Verify(e) => e.result_code(),
            ServiceError::Message(e) => e.result_code(),
            ServiceError::Replay | ServiceError::TooLarge { .. } => ResultCode::InvalidParam,
            ServiceError::InstanceNotFound | ServiceError::InstanceReleased => ResultCode::InstanceNotFound,
            ServiceError::Provision(e) => e.code,
            ServiceError::ChangeRejected(code) => *code,
            // Never a false success: KooGallery retries anything that is not 000000.
            ServiceError::Store(_) | ServiceError::Credentials(_) | ServiceError::Timeout => {
                ResultCode::InternalError
            }
        }
    }

    /// The answer sent to KooGallery. Internal failures keep their detail in the log, not the answer.
    pub fn response(&self) -> CallbackResponse {
        let code = self.result_code();
        match self {
            ServiceError::Store(_) | ServiceError::Credentials(_) => CallbackResponse::code(code),
            ServiceError::Provision(e) => CallbackResponse::with_message(code, e.message.clone()),
            _ => CallbackResponse::with_message(code, format!("{}: {self}", code.default_message())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_map_to_the_documented_codes() {
        let cases = [
            (ServiceError::Verify(VerifyError::BadSignature), "000001"),
            (ServiceError::Verify(VerifyError::MissingNonce), "000002"),
            (ServiceError::Replay, "000002"),
            (ServiceError::TooLarge { limit: 1 }, "000002"),
            (ServiceError::Message(MessageError::UnknownActivity("x".into())), "000002"),
            (ServiceError::InstanceNotFound, "000003"),
            (ServiceError::Timeout, "000005"),
        ];
        for (error, code) in cases {
            assert_eq!(error.response().result_code.as_str(), code, "{error}");
        }
    }
}
