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
    assert!(
        !sdl.contains("accessToken: String\n  source"),
        "no output field exposes the token"
    );
    assert!(
        !sdl.to_lowercase().contains("oauthconnection!")
            || sdl.contains("UserOAuthSourceConnection!")
    );
}
