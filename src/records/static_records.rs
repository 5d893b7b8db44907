//! The static records file (`staticRecordsFile`): a few fixed names, in `/etc/hosts` format,
//! served beside the cluster's so monitoring and legacy hosts resolve without a second server
//! (mesos-dns#132).
//!
//! Each line is an address followed by one or more names, `#` starts a comment:
//!
//! ```text
//! 10.0.0.5   legacy-db.corp.example  db.mesos
//! 2001:db8::7 monitor.corp.example
//! ```
//!
//! Names are fully qualified whether or not they end with a dot, and matched without regard to
//! case. The first name of a line is the address's name for reverse lookups.

use std::net::IpAddr;
use std::path::Path;

use hickory_proto::rr::Name;

/// Why a static records file was rejected; the message names the line.
#[derive(Debug, thiserror::Error)]
pub enum StaticRecordsError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// File path.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A line does not start with an IP address.
    #[error("line {line}: `{text}` is not an IP address")]
    BadAddress {
        /// Line number, from 1.
        line: usize,
        /// The offending text.
        text: String,
    },
    /// A line has an address and no name.
    #[error("line {line}: an address without a name")]
    NoName {
        /// Line number, from 1.
        line: usize,
    },
    /// A name is not a valid DNS name.
    #[error("line {line}: `{text}` is not a valid host name")]
    BadName {
        /// Line number, from 1.
        line: usize,
        /// The offending text.
        text: String,
    },
}

/// One line of the file: an address and its names (lowercase, with trailing dot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticEntry {
    /// The address.
    pub addr: IpAddr,
    /// Its names, the first one its reverse-lookup name.
    pub names: Vec<String>,
}

/// The parsed file, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StaticRecords {
    /// The lines that carry records.
    pub entries: Vec<StaticEntry>,
}

impl StaticRecords {
    /// Parses the file's text.
    pub fn parse(text: &str) -> Result<StaticRecords, StaticRecordsError> {
        let mut entries = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let content = raw.split('#').next().unwrap_or("");
            let mut words = content.split_whitespace();
            let Some(first) = words.next() else {
                continue;
            };
            let addr: IpAddr = first.parse().map_err(|_| StaticRecordsError::BadAddress {
                line,
                text: first.to_string(),
            })?;
            let mut names = Vec::new();
            for word in words {
                let name = format!("{}.", word.trim_end_matches('.').to_ascii_lowercase());
                let valid = name.len() > 1
                    && Name::from_ascii(&name).is_ok()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
                if !valid {
                    return Err(StaticRecordsError::BadName {
                        line,
                        text: word.to_string(),
                    });
                }
                names.push(name);
            }
            if names.is_empty() {
                return Err(StaticRecordsError::NoName { line });
            }
            entries.push(StaticEntry { addr, names });
        }
        Ok(StaticRecords { entries })
    }

    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> Result<StaticRecords, StaticRecordsError> {
        let text = std::fs::read_to_string(path).map_err(|source| StaticRecordsError::Io {
            path: path.display().to_string(),
            source,
        })?;
        StaticRecords::parse(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_format_with_comments_and_aliases() {
        let r = StaticRecords::parse(
            "# legacy hosts\n\n10.0.0.5  Legacy-DB.corp.example. db.mesos # the old one\n  2001:db8::7\tmonitor\n",
        )
        .unwrap();
        assert_eq!(
            r.entries,
            vec![
                StaticEntry {
                    addr: "10.0.0.5".parse().unwrap(),
                    names: vec!["legacy-db.corp.example.".into(), "db.mesos.".into()],
                },
                StaticEntry {
                    addr: "2001:db8::7".parse().unwrap(),
                    names: vec!["monitor.".into()],
                },
            ]
        );
    }

    #[test]
    fn errors_name_the_line() {
        let e = |t: &str| StaticRecords::parse(t).unwrap_err().to_string();
        assert_eq!(
            e("\nlegacy 10.0.0.1\n"),
            "line 2: `legacy` is not an IP address"
        );
        assert_eq!(e("10.0.0.1\n"), "line 1: an address without a name");
        assert_eq!(
            e("10.0.0.1 bad..name\n"),
            "line 1: `bad..name` is not a valid host name"
        );
        assert!(e("10.0.0.1 sp@ce\n").contains("sp@ce"));
    }
}
