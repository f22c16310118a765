/// schema.graphql is the exported SDL: regenerate it with `cargo run -- schema > schema.graphql`.
#[test]
fn committed_schema_matches_the_code() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql at the repository root");
    let current = oauthlink::graphql::sdl();
    assert!(
        committed == current,
        "schema.graphql is out of date: run `cargo run -- schema > schema.graphql`"
    );
}

#[test]
fn schema_pins_the_names_clients_use() {
    let sdl = oauthlink::graphql::sdl();
    for needle in [
        "createUserOAuthConnection(input: CreateUserOAuthConnectionInput!): UserOAuthSourceConnection!",
        "userOAuthSourceConnections(",
        "enum ErrorCode",
        "BAD_USER_INPUT",
        "type Source",
    ] {
        assert!(sdl.contains(needle), "schema lacks {needle:?}");
    }
    // Secrets are write-only: input types take them, no output type has a field for them.
    let output = fields(&sdl, &["type", "interface"]);
    // The token vault (issue 15) is the one deliberate exception: a type of its own, returned
    // only by its two root fields, so no ordinary type (and no list) can carry a token.
    let vault = |(ty, field): &(String, String)| {
        ty == "UserOAuthConnectionToken"
            || (matches!(ty.as_str(), "Query" | "Mutation")
                && field.ends_with("OAuthConnectionToken"))
    };
    assert!(output.contains(&("UserOAuthConnectionToken".into(), "accessToken".into())));
    let exposed: Vec<_> = secrets(&output).into_iter().filter(|f| !vault(f)).collect();
    assert!(
        exposed.is_empty(),
        "output fields expose secrets: {exposed:?}"
    );
    // The check finds one when there is one.
    let leaky = format!("{sdl}\ntype Leak {{\n\tconsumerSecret: String\n}}\n");
    let leaked = fields(&leaky, &["type"]);
    let expected = ("Leak".to_owned(), "consumerSecret".to_owned());
    let leaks: Vec<_> = secrets(&leaked).into_iter().filter(|f| !vault(f)).collect();
    assert_eq!(leaks, [&expected]);
    // The parse sees fields at all: the token is an input field, pk an output one.
    let input = fields(&sdl, &["input"]);
    assert!(input.contains(&(
        "CreateUserOAuthConnectionInput".into(),
        "accessToken".into()
    )));
    assert!(output.contains(&("UserOAuthSourceConnection".into(), "pk".into())));
}

/// The fields whose names say they hold a secret.
fn secrets(fields: &[(String, String)]) -> Vec<&(String, String)> {
    fields
        .iter()
        .filter(|(_, field)| {
            let field = field.to_lowercase();
            field.contains("token") || field.contains("secret")
        })
        .collect()
}

/// (type, field) for every field of the SDL's definitions of the given kinds, descriptions
/// skipped.
fn fields(sdl: &str, kinds: &[&str]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut current: Option<String> = None;
    let mut in_description = false;
    for line in sdl.lines() {
        let line = line.trim();
        if line.starts_with("\"\"\"") {
            // A one-line block opens and closes on the same line.
            if !(line.len() > 3 && line.ends_with("\"\"\"")) {
                in_description = !in_description;
            }
            continue;
        }
        if in_description || line.starts_with('"') || line.is_empty() {
            continue;
        }
        if line == "}" {
            current = None;
            continue;
        }
        let mut words = line.split_whitespace();
        if let (Some(kind), Some(name)) = (words.next(), words.next())
            && line.ends_with('{')
        {
            current = kinds.contains(&kind).then(|| name.to_owned());
            continue;
        }
        if let Some(ty) = &current {
            let end = line.find(['(', ':']).unwrap_or(line.len());
            found.push((ty.clone(), line[..end].trim().to_owned()));
        }
    }
    found
}
