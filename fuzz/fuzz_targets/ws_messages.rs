//! The WebSocket client's messages: any text frame is parsed as the socket
//! parses it, and a subscription's topic checked as the socket checks it
//! before authorising. Never a panic; every refusal a 4xx.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ordertrack_web::streams::ClientMessage;

fuzz_target!(|data: &[u8]| {
    // Text frames are UTF-8 (the WebSocket layer refuses anything else).
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let refusal = match ClientMessage::parse(text) {
        Ok(ClientMessage::Subscribe(subscribe)) => subscribe.topic().err(),
        Ok(ClientMessage::Unsubscribe { .. }) => None,
        Err(error) => Some(error),
    };
    if let Some(error) = refusal {
        assert!(
            error.status().is_client_error(),
            "{text:?}: refused with {}",
            error.status()
        );
    }
});
