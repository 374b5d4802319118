//! Name servers that misbehave on purpose, so the resolver's retries and
//! server choice can be seen: `demo --fail ns-2 --fault drop`.
//!
//! ```text
//!  drop          the query is read and never answered (a dead server)
//!  servfail      every answer is SERVFAIL (a broken server)
//!  delay=200ms   every answer comes, late (a slow or distant server)
//! ```

use std::str::FromStr;
use std::time::Duration;

use hickory_proto::op::{Metadata, ResponseCode};
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

use crate::serve::{response_edns, send_failed};

/// How a failing server fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Drop,
    ServFail,
    Delay(Duration),
}

impl FromStr for Fault {
    type Err = String;

    fn from_str(text: &str) -> Result<Fault, String> {
        match text {
            "drop" => Ok(Fault::Drop),
            "servfail" => Ok(Fault::ServFail),
            _ => {
                let delay = text.strip_prefix("delay=").ok_or_else(|| {
                    format!("unknown fault `{text}`: expected drop, servfail or delay=DURATION")
                })?;
                parse_duration(delay).map(Fault::Delay)
            }
        }
    }
}

/// `200ms`, `1.5s`, `2s`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not a duration (try 200ms or 1.5s)");
    let (number, unit) = text
        .find(|c: char| c.is_ascii_alphabetic())
        .map_or((text, ""), |i| text.split_at(i));
    let value: f64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "ms" => value / 1e3,
        "s" | "" => value,
        _ => return Err(bad()),
    };
    if !(0.0..=60.0).contains(&seconds) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// A request handler wrapped so that it fails in one way.
#[derive(Clone)]
pub struct Faulty<H> {
    pub inner: H,
    pub fault: Fault,
}

#[async_trait::async_trait]
impl<H: RequestHandler> RequestHandler for Faulty<H> {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        match self.fault {
            Fault::Drop => send_failed(request),
            Fault::Delay(delay) => {
                tokio::time::sleep(delay).await;
                self.inner
                    .handle_request::<R, T>(request, response_handle)
                    .await
            }
            Fault::ServFail => {
                let mut metadata = Metadata::response_from_request(&request.metadata);
                metadata.response_code = ResponseCode::ServFail;
                let edns = response_edns(request);
                let builder = MessageResponseBuilder::new(&request.queries, edns.as_ref());
                response_handle
                    .send_response(builder.build_no_records(metadata))
                    .await
                    .unwrap_or_else(|_| send_failed(request))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_as_written_on_the_command_line() {
        assert_eq!("drop".parse(), Ok(Fault::Drop));
        assert_eq!("servfail".parse(), Ok(Fault::ServFail));
        assert_eq!(
            "delay=200ms".parse(),
            Ok(Fault::Delay(Duration::from_millis(200)))
        );
        assert_eq!(
            "delay=1.5s".parse(),
            Ok(Fault::Delay(Duration::from_millis(1500)))
        );
        assert!("delay=fast".parse::<Fault>().is_err());
        assert!("explode".parse::<Fault>().is_err());
    }
}
