//! Customer data as agents see it: named values, each marked verified when
//! the site signed it in an identity token, unverified when the customer
//! typed it. Agents rely on the flag (the lock icon), so a typed value must
//! never be able to pass for a signed one.

use super::identity::VerifiedIdentity;
use serde::{Deserialize, Serialize};

/// The site's id for the customer (the token's `sub`).
pub const CUSTOMER_ID: &str = "customer_id";
/// The customer's name.
pub const NAME: &str = "name";
/// The customer's e-mail address.
pub const EMAIL: &str = "email";

/// One piece of customer data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerVariable {
    pub name: String,
    pub value: String,
    /// True only for values taken from a valid identity token.
    pub verified: bool,
}

impl CustomerVariable {
    fn new(name: &str, value: String, verified: bool) -> Self {
        Self {
            name: name.to_owned(),
            value,
            verified,
        }
    }
}

/// What the customer typed into the pre-chat form (already validated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypedDetails {
    pub name: Option<String>,
    pub email: Option<String>,
}

/// Combines typed details with a verified identity, in display order:
/// `customer_id`, `name`, `email`, then the token's extra variables by name.
/// A verified value replaces a typed one of the same name, because an agent
/// must see what the site vouched for, not what someone entered.
pub fn merge(typed: TypedDetails, verified: Option<&VerifiedIdentity>) -> Vec<CustomerVariable> {
    let mut out = Vec::new();
    let signed =
        |pick: fn(&VerifiedIdentity) -> &Option<String>| verified.and_then(|v| pick(v).clone());
    if let Some(id) = signed(|v| &v.customer_id) {
        out.push(CustomerVariable::new(CUSTOMER_ID, id, true));
    }
    for (name, typed_value, signed_value) in [
        (NAME, typed.name, signed(|v| &v.name)),
        (EMAIL, typed.email, signed(|v| &v.email)),
    ] {
        match (signed_value, typed_value) {
            (Some(value), _) => out.push(CustomerVariable::new(name, value, true)),
            (None, Some(value)) => out.push(CustomerVariable::new(name, value, false)),
            (None, None) => {}
        }
    }
    if let Some(v) = verified {
        for (name, value) in &v.variables {
            out.push(CustomerVariable::new(name, value.clone(), true));
        }
    }
    out
}

/// The value of the variable `name`, if any.
pub fn value_of<'a>(variables: &'a [CustomerVariable], name: &str) -> Option<&'a str> {
    variables
        .iter()
        .find(|v| v.name == name)
        .map(|v| v.value.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed() -> TypedDetails {
        TypedDetails {
            name: Some("Typed Name".into()),
            email: Some("typed@example.com".into()),
        }
    }

    #[test]
    fn typed_details_alone_are_unverified() {
        let vars = merge(typed(), None);
        assert_eq!(
            vars,
            vec![
                CustomerVariable::new(NAME, "Typed Name".into(), false),
                CustomerVariable::new(EMAIL, "typed@example.com".into(), false),
            ]
        );
        assert!(merge(TypedDetails::default(), None).is_empty());
    }

    #[test]
    fn verified_values_override_typed_ones_of_the_same_name() {
        let identity = VerifiedIdentity {
            customer_id: Some("c-1".into()),
            name: Some("Signed Name".into()),
            email: None,
            variables: vec![("plan".into(), "gold".into())],
        };
        let vars = merge(typed(), Some(&identity));
        assert_eq!(
            vars,
            vec![
                CustomerVariable::new(CUSTOMER_ID, "c-1".into(), true),
                CustomerVariable::new(NAME, "Signed Name".into(), true),
                // Not in the token: the typed value stays, unverified.
                CustomerVariable::new(EMAIL, "typed@example.com".into(), false),
                CustomerVariable::new("plan", "gold".into(), true),
            ]
        );
        assert_eq!(value_of(&vars, NAME), Some("Signed Name"));
        assert_eq!(value_of(&vars, "missing"), None);
    }
}
