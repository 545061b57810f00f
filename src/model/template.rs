//! `{name}` substitution in suite host templates.

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    /// A variable that exists but has no value in this run (a context flag was not given).
    Missing(String),
    /// A name that is neither a context nor a cloud variable.
    Unknown(String),
    /// Unbalanced braces or an empty name.
    Malformed(String),
}

/// What a lookup knows about a variable.
pub enum Lookup {
    /// The variable's value.
    Value(String),
    /// A known variable without a value.
    Missing,
    /// Not a variable at all.
    Unknown,
}

/// A variable a renderer knows, with how it reads the renderer's values `V`. A renderer's list
/// of them is the one it looks names up in and its tests render every template with.
pub type Variable<V> = (&'static str, fn(&V) -> String);

/// A lookup over `variables`, reading `values`; a name not in the list is [`Lookup::Unknown`].
pub fn lookup_in<'a, V>(variables: &'a [Variable<V>], values: &'a V) -> impl Fn(&str) -> Lookup + 'a {
    move |name| {
        variables
            .iter()
            .find(|(known, _)| *known == name)
            .map_or(Lookup::Unknown, |(_, read)| Lookup::Value(read(values)))
    }
}

/// Replaces each `{name}` in `template` using `lookup`. Collects every missing variable so the
/// user is told all the flags a flow needs at once.
pub fn render(template: &str, lookup: impl Fn(&str) -> Lookup) -> Result<String, Vec<TemplateError>> {
    let mut out = String::with_capacity(template.len());
    let mut errors = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        out.push_str(&rest[..open]);
        if rest[open..].starts_with('}') {
            errors.push(TemplateError::Malformed(template.to_string()));
            break;
        }
        let Some(close) = rest[open..].find('}') else {
            errors.push(TemplateError::Malformed(template.to_string()));
            break;
        };
        let name = &rest[open + 1..open + close];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            errors.push(TemplateError::Malformed(template.to_string()));
            break;
        }
        match lookup(name) {
            Lookup::Value(v) => out.push_str(&v),
            Lookup::Missing => errors.push(TemplateError::Missing(name.to_string())),
            Lookup::Unknown => errors.push(TemplateError::Unknown(name.to_string())),
        }
        rest = &rest[open + close + 1..];
    }
    if errors.is_empty() {
        out.push_str(rest);
        Ok(out)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Lookup {
        match name {
            "region" => Lookup::Value("eastus".into()),
            "storage_account" => Lookup::Missing,
            _ => Lookup::Unknown,
        }
    }

    #[test]
    fn substitutes_and_reports_problems() {
        assert_eq!(
            render("{region}.tundra.azureml.ms", lookup).unwrap(),
            "eastus.tundra.azureml.ms"
        );
        assert_eq!(render("plain.example", lookup).unwrap(), "plain.example");
        assert_eq!(
            render("{storage_account}.blob.{nope}", lookup).unwrap_err(),
            vec![
                TemplateError::Missing("storage_account".into()),
                TemplateError::Unknown("nope".into())
            ]
        );
        assert!(matches!(
            render("{region", lookup).unwrap_err()[0],
            TemplateError::Malformed(_)
        ));
        assert!(matches!(
            render("region}", lookup).unwrap_err()[0],
            TemplateError::Malformed(_)
        ));
        assert!(matches!(
            render("{}", lookup).unwrap_err()[0],
            TemplateError::Malformed(_)
        ));
    }
}
