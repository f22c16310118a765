//! Field rules and their messages, worded as Django REST framework words them so that the
//! REST shim answers like authentik and GraphQL's fieldErrors say the same thing.
use super::error::{Error, FieldCode, FieldError};

/// The connection serializer's field order.
const FIELD_ORDER: [&str; 6] = [
    "user",
    "source",
    "identifier",
    "access_token",
    "expires",
    super::error::NON_FIELD_ERRORS,
];

pub fn required(field: &'static str) -> FieldError {
    fe(field, FieldCode::Required, "This field is required.")
}

pub fn null(field: &'static str) -> FieldError {
    fe(field, FieldCode::Null, "This field may not be null.")
}

pub fn not_a_string(field: &'static str) -> FieldError {
    fe(field, FieldCode::Invalid, "Not a valid string.")
}

pub fn wrong_pk_type(field: &'static str, got: &str) -> FieldError {
    fe(
        field,
        FieldCode::Invalid,
        format!("Incorrect type. Expected pk value, received {got}."),
    )
}

pub fn invalid_uuid(field: &'static str, value: &str) -> FieldError {
    fe(
        field,
        FieldCode::Invalid,
        format!("\u{201c}{value}\u{201d} is not a valid UUID."),
    )
}

pub fn does_not_exist(field: &'static str, pk: impl std::fmt::Display) -> FieldError {
    fe(
        field,
        FieldCode::DoesNotExist,
        format!("Invalid pk \"{pk}\" - object does not exist."),
    )
}

pub fn null_characters(field: &'static str) -> FieldError {
    fe(
        field,
        FieldCode::Invalid,
        "Null characters are not allowed.",
    )
}

/// django-filter's answer for a model choice it cannot find (or parse).
pub fn invalid_choice(field: &'static str) -> FieldError {
    fe(
        field,
        FieldCode::Invalid,
        "Select a valid choice. That choice is not one of the available choices.",
    )
}

pub fn invalid_datetime(field: &'static str) -> FieldError {
    fe(
        field,
        FieldCode::Invalid,
        "Datetime has wrong format. Use one of these formats instead: \
         YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].",
    )
}

fn fe(field: &'static str, code: FieldCode, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        code,
        message: message.into(),
    }
}

/// Checks a text field like DRF's CharField(trim_whitespace, allow_blank=False, max_length).
/// Returns the value with surrounding whitespace trimmed.
pub fn text(field: &'static str, value: &str, max_chars: usize) -> Result<String, FieldError> {
    if value.contains('\0') {
        return Err(null_characters(field));
    }
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(fe(field, FieldCode::Blank, "This field may not be blank."));
    }
    if trimmed.chars().count() > max_chars {
        return Err(fe(
            field,
            FieldCode::MaxLength,
            format!("Ensure this field has no more than {max_chars} characters."),
        ));
    }
    Ok(trimmed.to_owned())
}

/// Checks a nullable write-only secret: any string (blank included) is accepted, NUL is not.
pub fn secret(field: &'static str, value: &str) -> Result<(), FieldError> {
    if value.contains('\0') {
        return Err(null_characters(field));
    }
    Ok(())
}

/// Collects field errors; turns into `Error::Validation` if any.
#[derive(Default, Debug)]
pub struct Errors(Vec<FieldError>);

impl Errors {
    pub fn push(&mut self, error: FieldError) {
        // One message per field, like DRF: the first failure wins.
        if !self.0.iter().any(|e| e.field == error.field) {
            self.0.push(error);
        }
    }

    pub fn check<T>(&mut self, result: Result<T, FieldError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.push(e);
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The errors in the serializer's field order, as DRF reports them.
    pub fn into_result(mut self) -> Result<(), Error> {
        if self.0.is_empty() {
            return Ok(());
        }
        self.0.sort_by_key(|e| {
            FIELD_ORDER
                .iter()
                .position(|f| *f == e.field)
                .unwrap_or(FIELD_ORDER.len())
        });
        Err(Error::Validation(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_trims_and_measures_in_characters() {
        assert_eq!(text("identifier", "  abc ", 255).unwrap(), "abc");
        assert_eq!(
            text("identifier", &"é".repeat(255), 255)
                .unwrap()
                .chars()
                .count(),
            255
        );
        let too_long = text("identifier", &"a".repeat(256), 255).unwrap_err();
        assert_eq!(too_long.code, FieldCode::MaxLength);
        assert_eq!(
            too_long.message,
            "Ensure this field has no more than 255 characters."
        );
    }

    #[test]
    fn blank_and_nul_are_rejected() {
        assert_eq!(
            text("identifier", " \t", 255).unwrap_err().code,
            FieldCode::Blank
        );
        assert_eq!(
            text("identifier", "a\0b", 255).unwrap_err().message,
            "Null characters are not allowed."
        );
    }

    #[test]
    fn errors_keep_the_first_failure_per_field() {
        let mut errors = Errors::default();
        errors.push(required("identifier"));
        errors.push(null("identifier"));
        errors.push(required("source"));
        let Err(Error::Validation(list)) = errors.into_result() else {
            panic!("expected validation error")
        };
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].code, FieldCode::Required);
    }
}
