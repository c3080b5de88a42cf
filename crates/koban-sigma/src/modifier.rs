//! The modifier chain of a detection key (`CommandLine|utf16le|base64offset|contains`),
//! parsed and checked before any value is compiled.

use crate::error::RuleError;

/// How the (transformed) value is compared with the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compare {
    /// Plain value: whole-value match with wildcards.
    Equals,
    Contains,
    StartsWith,
    EndsWith,
    Regex,
    Cidr,
    Gt,
    Gte,
    Lt,
    Lte,
    Exists,
}

/// A value transformation, applied left to right before comparing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transform {
    Base64,
    Base64Offset,
    Utf16Le,
    Utf16Be,
    /// UTF-16 little endian with a byte-order mark.
    Utf16,
    Windash,
    Expand,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Modifiers {
    pub compare: Compare,
    pub transforms: Vec<Transform>,
    /// `all`: every listed value must match instead of any.
    pub all: bool,
    pub cased: bool,
    /// `fieldref`: the values name other fields of the same event.
    pub fieldref: bool,
    pub re_insensitive: bool,
    pub re_multiline: bool,
    pub re_dotall: bool,
}

impl Modifiers {
    /// Parses the modifiers after the field name. `field` is only used in errors.
    pub(crate) fn parse(field: &str, names: &[&str]) -> Result<Modifiers, RuleError> {
        let mut m = Modifiers {
            compare: Compare::Equals,
            transforms: Vec::new(),
            all: false,
            cased: false,
            fieldref: false,
            re_insensitive: false,
            re_multiline: false,
            re_dotall: false,
        };
        let mut compare_name: Option<&str> = None;
        for &name in names {
            let compare = match name {
                "contains" => Some(Compare::Contains),
                "startswith" => Some(Compare::StartsWith),
                "endswith" => Some(Compare::EndsWith),
                "re" => Some(Compare::Regex),
                "cidr" => Some(Compare::Cidr),
                "gt" => Some(Compare::Gt),
                "gte" => Some(Compare::Gte),
                "lt" => Some(Compare::Lt),
                "lte" => Some(Compare::Lte),
                "exists" => Some(Compare::Exists),
                _ => None,
            };
            if let Some(compare) = compare {
                if let Some(previous) = compare_name {
                    return Err(RuleError::ConflictingModifiers {
                        field: field.into(),
                        a: previous.into(),
                        b: name.into(),
                    });
                }
                compare_name = Some(name);
                m.compare = compare;
                continue;
            }
            match name {
                "all" => m.all = true,
                "cased" => m.cased = true,
                "fieldref" => m.fieldref = true,
                "base64" => m.transforms.push(Transform::Base64),
                "base64offset" => m.transforms.push(Transform::Base64Offset),
                "utf16le" | "wide" => m.transforms.push(Transform::Utf16Le),
                "utf16be" => m.transforms.push(Transform::Utf16Be),
                "utf16" => m.transforms.push(Transform::Utf16),
                "windash" => m.transforms.push(Transform::Windash),
                "expand" => m.transforms.push(Transform::Expand),
                // Regex flags, written as their own modifiers after `re`.
                "i" | "ignorecase" => m.re_insensitive = true,
                "m" | "multiline" => m.re_multiline = true,
                "s" | "dotall" => m.re_dotall = true,
                _ => {
                    return Err(RuleError::UnknownModifier {
                        field: field.into(),
                        modifier: name.into(),
                    })
                }
            }
        }
        let flags = m.re_insensitive || m.re_multiline || m.re_dotall;
        if flags && m.compare != Compare::Regex {
            return Err(RuleError::ConflictingModifiers {
                field: field.into(),
                a: "i/m/s".into(),
                b: compare_name.unwrap_or("(plain value)").into(),
            });
        }
        if m.fieldref
            && !matches!(
                m.compare,
                Compare::Equals | Compare::Contains | Compare::StartsWith | Compare::EndsWith
            )
        {
            return Err(RuleError::ConflictingModifiers {
                field: field.into(),
                a: "fieldref".into(),
                b: compare_name.unwrap_or_default().into(),
            });
        }
        let literal_only = matches!(
            m.compare,
            Compare::Regex
                | Compare::Cidr
                | Compare::Gt
                | Compare::Gte
                | Compare::Lt
                | Compare::Lte
                | Compare::Exists
        );
        if literal_only && !m.transforms.is_empty() {
            return Err(RuleError::ConflictingModifiers {
                field: field.into(),
                a: compare_name.unwrap_or_default().into(),
                b: "a value transformation".into(),
            });
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chains_and_rejects_nonsense() {
        let m = Modifiers::parse("f", &["utf16le", "base64offset", "contains"]).unwrap();
        assert_eq!(m.compare, Compare::Contains);
        assert_eq!(
            m.transforms,
            vec![Transform::Utf16Le, Transform::Base64Offset]
        );
        assert!(Modifiers::parse("f", &["re", "i"]).unwrap().re_insensitive);
        assert!(matches!(
            Modifiers::parse("f", &["contain"]),
            Err(RuleError::UnknownModifier { .. })
        ));
        assert!(Modifiers::parse("f", &["contains", "endswith"]).is_err());
        assert!(Modifiers::parse("f", &["i"]).is_err());
        assert!(Modifiers::parse("f", &["base64", "re"]).is_err());
    }
}
