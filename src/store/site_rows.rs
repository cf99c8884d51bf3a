//! Row mapping for sites and customer variables, used by the SQL in
//! [`super::sql`]. Booleans travel as integers 0/1 in both stores.

use crate::domain::customer::CustomerVariable;
use crate::domain::ids::{QueueId, SiteId};
use crate::domain::site::Site;

pub(super) const SITE_COLUMNS: &str = "id, name, site_key, allowed_origins, default_queue_id, \
     identity_secret, require_verified, allow_customer_attachments, transcript_email, created_at";

#[derive(sqlx::FromRow)]
pub(super) struct SiteRow {
    id: i64,
    name: String,
    site_key: String,
    allowed_origins: String,
    default_queue_id: i64,
    identity_secret: String,
    require_verified: i32,
    allow_customer_attachments: i32,
    transcript_email: i32,
    created_at: i64,
}

impl SiteRow {
    pub(super) fn into_site(self) -> Site {
        Site {
            id: SiteId(self.id),
            name: self.name,
            key: self.site_key,
            allowed_origins: split_origins(&self.allowed_origins),
            default_queue_id: QueueId(self.default_queue_id),
            identity_secret: self.identity_secret,
            require_verified: self.require_verified != 0,
            allow_customer_attachments: self.allow_customer_attachments != 0,
            transcript_email: self.transcript_email != 0,
            created_at: self.created_at,
        }
    }
}

/// Origins are validated (`domain::site::parse_origin`), so they never
/// contain a comma.
pub(super) fn join_origins(origins: &[String]) -> String {
    origins.join(",")
}

pub(super) fn split_origins(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(super) fn flag(value: bool) -> i32 {
    i32::from(value)
}

#[derive(sqlx::FromRow)]
pub(super) struct VariableRow {
    name: String,
    value: String,
    verified: i32,
}

impl VariableRow {
    pub(super) fn into_variable(self) -> CustomerVariable {
        CustomerVariable {
            name: self.name,
            value: self.value,
            verified: self.verified != 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_round_trip() {
        let origins = vec!["https://a.example".to_owned(), "http://b:8080".into()];
        assert_eq!(split_origins(&join_origins(&origins)), origins);
        assert!(split_origins("").is_empty());
    }
}
