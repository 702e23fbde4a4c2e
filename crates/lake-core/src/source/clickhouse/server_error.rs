//! Turning ClickHouse's answers and transport failures into coded lake errors without leaking the password.

use super::connection::ClickHouseConfig;
use crate::error::{ErrorCode, LakeError, Transient};

/// Server exception codes that mean "who you are" is wrong (UNKNOWN_USER, WRONG_PASSWORD, REQUIRED_PASSWORD,
/// AUTHENTICATION_FAILED, ACCESS_DENIED for the user as a whole).
const AUTH_CODES: [u32; 5] = [192, 193, 194, 516, 195];
/// Server exception codes that mean the table is not what we expect: unknown database/table/column, type mismatch.
const SCHEMA_CODES: [u32; 7] = [81, 60, 47, 16, 10, 53, 386];
/// Server exception codes that mean "try again" (docs/lake-format.md, "Retries"): TOO_MANY_SIMULTANEOUS_QUERIES
/// (202), NO_FREE_CONNECTION (203), SOCKET_TIMEOUT (209), NETWORK_ERROR (210), ABORTED (236),
/// ALL_CONNECTION_TRIES_FAILED (279), TOO_FEW_LIVE_REPLICAS (285), QUERY_WAS_CANCELLED (394: a server shutting
/// down cancels its queries), CANNOT_SCHEDULE_TASK (439: no free thread).
pub(crate) const TRANSIENT_CODES: [u32; 9] = [202, 203, 209, 210, 236, 279, 285, 394, 439];

/// The `Code: N` number at the start of a ClickHouse exception text, if any.
pub fn exception_code(text: &str) -> Option<u32> {
    let start = text.find("Code: ")? + "Code: ".len();
    let digits: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// Classifies a server exception text into a lake error code.
pub fn classify_exception(text: &str) -> ErrorCode {
    match exception_code(text) {
        Some(code) if AUTH_CODES.contains(&code) => ErrorCode::ClickhouseAuth,
        Some(code) if SCHEMA_CODES.contains(&code) => ErrorCode::ClickhouseSchema,
        _ => ErrorCode::ClickhouseQuery,
    }
}

/// Replaces every occurrence of the password in a message, so that no error, log or file ever carries it.
pub fn redact(message: &str, password: &str) -> String {
    if password.is_empty() {
        message.to_owned()
    } else {
        message.replace(password, "***")
    }
}

/// One line of server text, trimmed and bounded so that errors stay readable.
pub fn tidy(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = one_line.chars().take(1000).collect();
    if out.len() < one_line.len() {
        out.push('…');
    }
    out
}

/// A lake error for a ClickHouse exception text, with advice matching its class. An error page without a
/// ClickHouse code saying 502, 503 or 504 comes from a proxy or load balancer in front of the server.
pub fn exception_error(text: &str, endpoint: &str, password: &str) -> LakeError {
    let server_code = exception_code(text);
    if server_code.is_none() && is_gateway_error(text) {
        return LakeError::transient(
            Transient::Gateway,
            ErrorCode::ClickhouseUnreachable,
            redact(
                &format!(
                    "the proxy in front of ClickHouse at {endpoint} answered {}: the server behind it is down, \
                     restarting or overloaded",
                    tidy(text)
                ),
                password,
            ),
        );
    }
    let code = classify_exception(text);
    let transient = server_code.is_some_and(|c| TRANSIENT_CODES.contains(&c));
    let advice = match code {
        ErrorCode::ClickhouseAuth => "check the ClickHouse user and password",
        ErrorCode::ClickhouseSchema => {
            "check clickhouse.database and clickhouse.table, and that the table has the QuantBot candle columns"
        }
        _ if transient => "the server is busy or restarting",
        _ => "check the query settings and the server log",
    };
    let message = redact(
        &format!(
            "ClickHouse at {endpoint} answered with an error: {}; {advice}",
            tidy(text)
        ),
        password,
    );
    if transient {
        LakeError::transient(Transient::Busy, code, message)
    } else {
        LakeError::new(code, message)
    }
}

/// An HTTP gateway error page (502 Bad Gateway, 503 Service Unavailable, 504 Gateway Timeout), as proxies send
/// them, or the bare status line the client library reports for an empty body.
fn is_gateway_error(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    ["502", "503", "504"].iter().any(|s| {
        lower.match_indices(s).any(|(i, _)| {
            !lower[..i].ends_with(|c: char| c.is_ascii_digit())
                && !lower[i + 3..].starts_with(|c: char| c.is_ascii_digit())
        })
    }) || [
        "bad gateway",
        "service unavailable",
        "gateway timeout",
        "gateway time-out",
    ]
    .iter()
    .any(|s| lower.contains(s))
}

/// A lake error for a failure of the client library (network, TLS, bad response); `connect_timeout` is named
/// when the connection was not set up in time.
pub fn client_error(
    err: &::clickhouse::error::Error,
    endpoint: &str,
    config: &ClickHouseConfig,
) -> LakeError {
    use ::clickhouse::error::Error as E;
    let (password, connect_timeout) = (config.password.as_str(), config.connect_timeout);
    let plain_advice = if config.secure {
        ""
    } else {
        " (if that port serves HTTPS, use https:// or clickhouse.secure)"
    };
    match err {
        E::BadResponse(text) => exception_error(text, endpoint, password),
        E::Network(inner) => match super::tls::tls_error(inner.as_ref()) {
            Some(tls) => super::tls::handshake_error(tls, endpoint, &config.host),
            None if super::http_client::is_handshake_timeout(inner.as_ref()) => LakeError::new(
                ErrorCode::ClickhouseTls,
                format!(
                    "ClickHouse at {endpoint} accepted the connection but no TLS handshake came back within \
                     {connect_timeout} s: that port does not seem to speak HTTPS. Point clickhouse.port at the \
                     server's https_port (usually 8443; 8123 is plain HTTP), or drop secure for plain HTTP"
                ),
            ),
            None if super::http_client::is_connect_timeout(inner.as_ref()) => LakeError::transient(
                Transient::Unreachable,
                ErrorCode::ClickhouseUnreachable,
                format!(
                    "ClickHouse at {endpoint} did not accept a connection within {connect_timeout} s; check that the \
                     server runs and clickhouse.host/port point at its HTTP interface, or raise clickhouse.connect_timeout"
                ),
            ),
            // A name that does not resolve will not resolve on the next try either.
            None if is_connect_failure(inner.as_ref()) && mentions(inner.as_ref(), "dns error") => {
                unreachable_error(err, endpoint, password, plain_advice)
            }
            None if is_connect_failure(inner.as_ref()) => {
                let e = unreachable_error(err, endpoint, password, plain_advice);
                LakeError::transient(Transient::Unreachable, e.code(), e.message())
            }
            // Something answered that does not speak HTTP: asking again changes nothing.
            None if is_protocol_error(inner.as_ref()) => {
                unreachable_error(err, endpoint, password, plain_advice)
            }
            // The request went out (on a new or a kept-alive connection) and the connection broke before the
            // answer was whole: the server was reached.
            None => LakeError::transient(
                Transient::ConnectionLost,
                ErrorCode::ClickhouseUnreachable,
                redact(
                    &format!(
                        "the connection to ClickHouse at {endpoint} was lost before the answer was complete ({err}); \
                         the server restarted, or a proxy or the network dropped it{plain_advice}"
                    ),
                    password,
                ),
            ),
        },
        E::TimedOut => {
            let e = unreachable_error(err, endpoint, password, plain_advice);
            LakeError::transient(Transient::Unreachable, e.code(), e.message())
        }
        other => LakeError::new(
            ErrorCode::ClickhouseQuery,
            redact(
                &format!("ClickHouse at {endpoint} failed: {other}; check the server log"),
                password,
            ),
        ),
    }
}

/// True when the client failed while setting up a connection (refused, unresolvable), before sending anything.
fn is_connect_failure(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(legacy) = e.downcast_ref::<hyper_util::client::legacy::Error>() {
            return legacy.is_connect();
        }
        cur = e.source();
    }
    false
}

/// True when the answer was not HTTP (hyper could not parse it).
fn is_protocol_error(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(hyper) = e.downcast_ref::<hyper::Error>() {
            return hyper.is_parse() || hyper.is_parse_status();
        }
        cur = e.source();
    }
    false
}

/// True when any error in the chain says `needle`.
fn mentions(err: &(dyn std::error::Error + 'static), needle: &str) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if e.to_string().contains(needle) {
            return true;
        }
        cur = e.source();
    }
    false
}

fn unreachable_error(
    err: &::clickhouse::error::Error,
    endpoint: &str,
    password: &str,
    advice: &str,
) -> LakeError {
    LakeError::new(
        ErrorCode::ClickhouseUnreachable,
        redact(
            &format!(
                "cannot reach ClickHouse at {endpoint}: {err}; check that the server runs and clickhouse.host/port \
                 point at its HTTP interface{advice}"
            ),
            password,
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_server_code() {
        assert_eq!(
            classify_exception(
                "Code: 193, e.displayText() = DB::Exception: Wrong password for user tester"
            ),
            ErrorCode::ClickhouseAuth
        );
        assert_eq!(
            classify_exception(
                "Code: 60, e.displayText() = DB::Exception: Table x.y doesn't exist."
            ),
            ErrorCode::ClickhouseSchema
        );
        assert_eq!(
            classify_exception(
                "Code: 395, e.displayText() = DB::Exception: Value passed to 'throwIf'"
            ),
            ErrorCode::ClickhouseQuery
        );
        assert_eq!(classify_exception("garbage"), ErrorCode::ClickhouseQuery);
    }

    #[test]
    fn busy_and_restarting_servers_and_gateway_pages_are_transient_and_nothing_else() {
        let endpoint = "http://h:1";
        for text in [
            "Code: 202, e.displayText() = DB::Exception: Too many simultaneous queries. Maximum: 100",
            "Code: 394, e.displayText() = DB::Exception: Query was cancelled",
            "Code: 210, e.displayText() = DB::NetException: Connection reset by peer",
            "503 Service Unavailable",
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
            "504 Gateway Time-out",
        ] {
            assert!(exception_error(text, endpoint, "").transient_kind().is_some(), "{text}");
        }
        for text in [
            "Code: 193, e.displayText() = DB::Exception: Wrong password for user tester",
            "Code: 60, e.displayText() = DB::Exception: Table x.y doesn't exist.",
            "Code: 62, e.displayText() = DB::Exception: Syntax error",
            "Code: 241, e.displayText() = DB::Exception: Memory limit (for query) exceeded",
            "Code: 168, e.displayText() = DB::Exception: AST is too big. Maximum: 50000",
            "Code: 159, e.displayText() = DB::Exception: Timeout exceeded: elapsed 5030 seconds",
            "404 Not Found",
            "Code: 503, e.displayText() = DB::Exception: a server code that is not a gateway status",
        ] {
            assert!(exception_error(text, endpoint, "").transient_kind().is_none(), "{text}");
        }
        let gateway = exception_error("503 Service Unavailable", endpoint, "");
        assert_eq!(gateway.code(), ErrorCode::ClickhouseUnreachable);
        assert!(gateway.message().contains("proxy"), "{gateway}");
    }

    #[test]
    fn redacts_the_password() {
        let err = exception_error("Code: 193, Wrong password hunter2", "http://h:1", "hunter2");
        assert!(!err.message().contains("hunter2"));
        assert!(err.message().contains("***"));
        assert_eq!(redact("abc", ""), "abc");
    }

    #[test]
    fn tidy_bounds_length() {
        let long = "x ".repeat(5000);
        assert!(tidy(&long).chars().count() <= 1001);
        assert_eq!(tidy("a\n  b"), "a b");
    }
}
