//! What the conformance apps share. Each app is a core wasm module built for
//! `wasm32-unknown-unknown` (no WASI 0.1 at all), exporting `wasi:http/incoming-handler@0.2.0`
//! and carrying the `component-type` sections wit-bindgen writes, as the apps of Spin's
//! conformance suite are: a Spin host makes it a component when it loads it.
//!
//! A check that fails is a 500 whose body is the failure's text: for an error of a WIT
//! interface, its debug form (`Error::AccessDenied`), as a guest's `{:?}` prints it.

use std::fmt::Debug;

use wasi::http::types::{Fields, OutgoingBody, OutgoingResponse, ResponseOutparam};

/// Exports an app whose every request runs `$exercise` (`fn() -> Result<(), Failure>`) and
/// answers with its outcome (`answer`). The app must depend on the `wasi` crate.
#[macro_export]
macro_rules! exercise {
    ($exercise:path) => {
        struct App;

        impl wasi::exports::http::incoming_handler::Guest for App {
            fn handle(
                _request: wasi::http::types::IncomingRequest,
                out: wasi::http::types::ResponseOutparam,
            ) {
                $crate::answer(out, $exercise());
            }
        }

        wasi::http::proxy::export!(App);
    };
}

/// Why a check failed: the text of the 500.
#[derive(Debug)]
pub struct Failure(pub String);

impl Failure {
    /// A WIT error, as the guest's debug form prints it.
    pub fn of(err: impl Debug) -> Self {
        Self(format!("{err:?}"))
    }
}

/// `Err` with `text` unless `holds`.
pub fn check(holds: bool, text: impl FnOnce() -> String) -> Result<(), Failure> {
    if holds {
        Ok(())
    } else {
        Err(Failure(text()))
    }
}

/// `Err` unless `actual` is `expected`, saying what each was.
pub fn check_eq<T: PartialEq + Debug>(what: &str, actual: T, expected: T) -> Result<(), Failure> {
    check(actual == expected, || {
        format!("{what}: expected {expected:?}, got {actual:?}")
    })
}

/// Answers with the outcome: 200 with no body, or 500 with the failure's text.
pub fn answer(out: ResponseOutparam, outcome: Result<(), Failure>) {
    match outcome {
        Ok(()) => respond(out, 200, b""),
        Err(Failure(text)) => respond(out, 500, text.as_bytes()),
    }
}

/// A response with `body`, written and finished before the response is set; with an empty
/// body, no body is taken at all (so the host sends `content-length: 0`).
pub fn respond(out: ResponseOutparam, status: u16, body: &[u8]) {
    let response = OutgoingResponse::new(Fields::new());
    let _ = response.set_status_code(status);
    if !body.is_empty() {
        if let Err(err) = write_body(&response, body) {
            eprintln!("the response body could not be written: {err}");
        }
    }
    ResponseOutparam::set(out, Ok(response));
}

fn write_body(response: &OutgoingResponse, body: &[u8]) -> Result<(), String> {
    let outgoing = response
        .body()
        .map_err(|()| "the body was taken".to_owned())?;
    {
        let stream = outgoing
            .write()
            .map_err(|()| "the stream was taken".to_owned())?;
        for chunk in body.chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| format!("{e:?}"))?;
        }
    }
    OutgoingBody::finish(outgoing, None).map_err(|e| format!("{e:?}"))
}
