//! Property tests of everything that reads outside input: the two config readers,
//! the exclude matcher and the RPC decoder. Whatever the bytes, they answer with a
//! value or an error: no panic, no hang, no allocation beyond the input's size.

use std::path::Path;
use std::pin::Pin;

use bytes::BytesMut;
use inosync_proto::{ControlRequest, ControlResponse};
use proptest::prelude::*;
use tarpc::tokio_serde::Deserializer;
use tarpc::tokio_serde::formats::Bincode;
use tarpc::{ClientMessage, Response};

use crate::control_codec::ControlCodec;
use crate::exclude::ExcludeSet;

/// Text made mostly of the characters config files are made of, so the parsers get
/// past their first line often enough to be exercised deeply.
fn config_like() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "delay",
        "speed",
        "targets",
        "excludes",
        "[[watch]]",
        "path",
        "wpaths",
        "rnodes",
        "edelay",
        "rspeed",
        "=",
        "\"",
        "'",
        "[",
        "]",
        ",",
        "\n",
        " ",
        "#",
        "1",
        "-1",
        "1e309",
        "0.5",
        "\"/tmp\"",
        "\"x\"",
        "true",
        "{",
        "}",
        "\\",
        "\t",
        "é",
        "\u{0}",
    ]);
    prop::collection::vec(atoms, 0..60).prop_map(|parts| parts.concat())
}

/// Decodes as the control socket does (`control_codec`).
fn decode(bytes: &[u8]) {
    let mut codec = ControlCodec::default();
    let _ = Pin::new(&mut codec).deserialize(&BytesMut::from(bytes));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn toml_reader_never_panics(text in config_like()) {
        let _ = crate::config::toml_format_parse(Path::new("fuzz.toml"), &text);
    }

    #[test]
    fn toml_reader_never_panics_on_any_text(text in ".{0,200}") {
        let _ = crate::config::toml_format_parse(Path::new("fuzz.toml"), &text);
    }

    #[test]
    fn py_reader_never_panics(text in config_like()) {
        let _ = crate::config::py_format_parse(Path::new("fuzz.py"), &text);
    }

    #[test]
    fn py_reader_never_panics_on_any_text(text in ".{0,200}") {
        let _ = crate::config::py_format_parse(Path::new("fuzz.py"), &text);
    }

    #[test]
    fn exclude_matcher_never_panics(
        patterns in prop::collection::vec("[a-z/*?\\[\\]!\\\\.{},-]{0,12}", 0..6),
        path in prop::collection::vec(any::<u8>(), 0..40),
        is_dir in any::<bool>(),
    ) {
        if let Ok(set) = ExcludeSet::new(&patterns) {
            let _ = set.is_excluded(&path, is_dir);
        }
    }

    #[test]
    fn anchored_name_excludes_it_and_what_lies_below(name in "[a-z]{1,8}", rest in "[a-z/]{0,10}") {
        let set = ExcludeSet::new(&[format!("/{name}")]).unwrap();
        prop_assert!(set.is_excluded(name.as_bytes(), true));
        let below = format!("{name}/{rest}");
        prop_assert!(set.is_excluded(below.trim_end_matches('/').as_bytes(), false));
        let sibling = format!("{name}x");
        prop_assert!(!set.is_excluded(sibling.as_bytes(), false));
    }

    #[test]
    fn rpc_decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        decode(&bytes);
    }

    #[test]
    fn rpc_decoder_never_panics_on_any_deadline(
        marker in 250u8..=255,
        rest in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        // A Request (variant 0) whose deadline's seconds start with every varint
        // marker bincode has, then anything.
        let mut bytes = vec![0, marker];
        bytes.extend(rest);
        decode(&bytes);
    }

    #[test]
    fn rpc_decoder_survives_huge_length_fields(tag in 0u8..4, fill in any::<u8>()) {
        // Varint-encoded u64::MAX lengths where strings and vectors are expected.
        let mut bytes = vec![tag, 0, 0xfb];
        bytes.extend_from_slice(&[0xff; 8]);
        bytes.extend(std::iter::repeat_n(fill, 64));
        decode(&bytes);
    }
}

#[test]
fn a_request_whose_deadline_is_past_the_clock_is_no_panic() {
    // A Request whose deadline is 2^63 seconds away: tarpc adds it to the clock.
    decode(&[0, 253, 0, 0, 0, 0, 0, 0, 0, 128, 0]);
    let mut far = vec![0, 253];
    far.extend_from_slice(&u64::MAX.to_le_bytes());
    far.extend_from_slice(&[252, 0xff, 0xff, 0xff, 0xff]);
    decode(&far);
}

#[test]
fn valid_requests_still_decode() {
    use tarpc::tokio_serde::Serializer;
    use tarpc::{Request, context};
    let mut client = Bincode::<Response<ControlResponse>, ClientMessage<ControlRequest>>::default();
    let mut codec = ControlCodec::default();
    let cancel = ClientMessage::Cancel {
        trace_context: Default::default(),
        request_id: 7,
    };
    let bytes = Pin::new(&mut client).serialize(&cancel).unwrap();
    let decoded = Pin::new(&mut codec)
        .deserialize(&BytesMut::from(&bytes[..]))
        .unwrap();
    assert!(matches!(
        decoded,
        ClientMessage::Cancel { request_id: 7, .. }
    ));

    let mut sent = context::current();
    sent.deadline = std::time::Instant::now() + std::time::Duration::from_secs(3600);
    let request = ClientMessage::Request(Request {
        context: sent,
        id: 9,
        message: ControlRequest::Wait {
            path: Some("/srv/blog".into()),
            timeout_secs: 3590.0,
        },
    });
    let bytes = Pin::new(&mut client).serialize(&request).unwrap();
    let decoded = Pin::new(&mut codec)
        .deserialize(&BytesMut::from(&bytes[..]))
        .unwrap();
    let ClientMessage::Request(got) = decoded else {
        panic!("not a request: {decoded:?}");
    };
    assert_eq!(got.id, 9);
    assert_eq!(got.context.trace_context, sent.trace_context);
    let left = got.context.deadline - std::time::Instant::now();
    assert!(left > std::time::Duration::from_secs(3590), "{left:?}");
    assert!(left <= std::time::Duration::from_secs(3600), "{left:?}");
    assert!(
        matches!(&got.message, ControlRequest::Wait { path: Some(p), .. } if p == "/srv/blog"),
        "{:?}",
        got.message
    );
}
