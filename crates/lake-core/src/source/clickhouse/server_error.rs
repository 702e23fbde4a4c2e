//! Turning ClickHouse's answers and transport failures into coded lake errors without leaking the password.

use super::connection::ClickHouseConfig;
use crate::error::{ErrorCode, LakeError};

/// Server exception codes that mean "who you are" is wrong (UNKNOWN_USER, WRONG_PASSWORD, REQUIRED_PASSWORD,
/// AUTHENTICATION_FAILED, ACCESS_DENIED for the user as a whole).
const AUTH_CODES: [u32; 5] = [192, 193, 194, 516, 195];
/// Server exception codes that mean the table is not what we expect: unknown database/table/column, type mismatch.
const SCHEMA_CODES: [u32; 7] = [81, 60, 47, 16, 10, 53, 386];

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

/// A lake error for a ClickHouse exception text, with advice matching its class.
pub fn exception_error(text: &str, endpoint: &str, password: &str) -> LakeError {
    let code = classify_exception(text);
    let advice = match code {
        ErrorCode::ClickhouseAuth => "check the ClickHouse user and password",
        ErrorCode::ClickhouseSchema => {
            "check clickhouse.database and clickhouse.table, and that the table has the QuantBot candle columns"
        }
        _ => "check the query settings and the server log",
    };
    LakeError::new(
        code,
        redact(
            &format!(
                "ClickHouse at {endpoint} answered with an error: {}; {advice}",
                tidy(text)
            ),
            password,
        ),
    )
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
            None if super::http_client::is_connect_timeout(inner.as_ref()) => LakeError::new(
                ErrorCode::ClickhouseUnreachable,
                format!(
                    "ClickHouse at {endpoint} did not accept a connection within {connect_timeout} s; check that the \
                     server runs and clickhouse.host/port point at its HTTP interface, or raise clickhouse.connect_timeout"
                ),
            ),
            None => unreachable_error(err, endpoint, password, plain_advice),
        },
        E::TimedOut => unreachable_error(err, endpoint, password, plain_advice),
        other => LakeError::new(
            ErrorCode::ClickhouseQuery,
            redact(
                &format!("ClickHouse at {endpoint} failed: {other}; check the server log"),
                password,
            ),
        ),
    }
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
