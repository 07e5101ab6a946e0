//! The control socket's message codec: tarpc's bincode, except that a request's
//! deadline is read by us. tarpc turns the deadline on the wire into an instant by
//! adding it to the clock, which panics when a client sends one past the clock's
//! range, and its server panics on one past its timer queue's; a local client
//! must not be able to crash the connection's task that way (README "The
//! control socket").

use std::io;
use std::pin::Pin;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use inosync_proto::{ControlRequest, ControlResponse};
use serde::Deserialize;
use tarpc::tokio_serde::formats::Bincode;
use tarpc::tokio_serde::{Deserializer, Serializer};
use tarpc::{ClientMessage, Request, Response, context, trace};

/// The longest deadline kept: a year. tarpc's server puts every deadline in
/// tokio's timer queue, which panics past 2^36 ms (about 795 days); a longer
/// call (only a hand-made client asks one: `inosyncctl` at most about 116
/// days) is answered at a year.
const LONGEST_DEADLINE: Duration = Duration::from_secs(365 * 24 * 3600);

/// tarpc's `ClientMessage` as it lies on the wire: bincode writes variants by
/// their index and fields in order, so this reads the same bytes.
#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
enum WireMessage {
    Request(WireRequest),
    Cancel {
        #[serde(default)]
        trace_context: trace::Context,
        request_id: u64,
    },
}

/// tarpc's `Request` as it lies on the wire.
#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
struct WireRequest {
    context: WireContext,
    id: u64,
    message: ControlRequest,
}

/// tarpc's `Context` as it lies on the wire: the deadline is the time left.
#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
struct WireContext {
    #[serde(default = "ten_seconds")]
    deadline: Duration,
    trace_context: trace::Context,
}

/// tarpc's own default for a request without a deadline.
fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}

impl WireMessage {
    /// The message tarpc's server takes, with the deadline kept within
    /// [`LONGEST_DEADLINE`] from now.
    fn into_client_message(self) -> ClientMessage<ControlRequest> {
        match self {
            WireMessage::Request(WireRequest {
                context: wire,
                id,
                message,
            }) => {
                let mut context = context::current();
                context.deadline = Instant::now() + wire.deadline.min(LONGEST_DEADLINE);
                context.trace_context = wire.trace_context;
                ClientMessage::Request(Request {
                    context,
                    id,
                    message,
                })
            }
            WireMessage::Cancel {
                trace_context,
                request_id,
            } => ClientMessage::Cancel {
                trace_context,
                request_id,
            },
        }
    }
}

/// Reads requests and writes responses in tarpc's bincode form.
#[derive(Default)]
pub struct ControlCodec {
    inner: Bincode<WireMessage, Response<ControlResponse>>,
}

impl Deserializer<ClientMessage<ControlRequest>> for ControlCodec {
    type Error = io::Error;

    fn deserialize(
        self: Pin<&mut Self>,
        src: &BytesMut,
    ) -> Result<ClientMessage<ControlRequest>, io::Error> {
        Pin::new(&mut self.get_mut().inner)
            .deserialize(src)
            .map(WireMessage::into_client_message)
    }
}

impl Serializer<Response<ControlResponse>> for ControlCodec {
    type Error = io::Error;

    fn serialize(
        self: Pin<&mut Self>,
        item: &Response<ControlResponse>,
    ) -> Result<Bytes, io::Error> {
        Pin::new(&mut self.get_mut().inner).serialize(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A whole request whose deadline is as far as the wire can say, written
    /// with the same field order tarpc's client uses.
    fn request_with_deadline(deadline: Duration) -> BytesMut {
        let message = WireMessage::Request(WireRequest {
            context: WireContext {
                deadline,
                trace_context: trace::Context::default(),
            },
            id: 41,
            message: ControlRequest::Status {},
        });
        let mut writer = Bincode::<Response<ControlResponse>, WireMessage>::default();
        BytesMut::from(&Pin::new(&mut writer).serialize(&message).unwrap()[..])
    }

    #[test]
    fn a_deadline_past_the_clock_is_served_with_the_longest_deadline() {
        let mut codec = ControlCodec::default();
        let decoded = Pin::new(&mut codec)
            .deserialize(&request_with_deadline(Duration::MAX))
            .unwrap();
        let ClientMessage::Request(request) = decoded else {
            panic!("not a request: {decoded:?}");
        };
        assert_eq!(request.id, 41);
        assert!(matches!(request.message, ControlRequest::Status {}));
        let left = request.context.deadline - Instant::now();
        assert!(left <= LONGEST_DEADLINE, "{left:?}");
        assert!(
            left > LONGEST_DEADLINE - Duration::from_secs(60),
            "{left:?}"
        );
    }
}
